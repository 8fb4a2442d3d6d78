"""``upload FILE``: put a CSV where the ingest trigger sees it, and follow its job.

The job id is derived, not looked up: ``chalicelib.readings.jobs.job_id`` is a function
of bucket, key and object version (the ETag when the bucket is unversioned),
exactly as the ingest handler computes it. So the CLI can follow the job
before the handler has even created it, and uploading the same file again
follows the same job.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import re
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from chalicelib.clock import Clock
from chalicelib.config import DEFAULT_UPLOAD_MAX_BYTES, UPLOADS_PREFIX
from chalicelib.readings.jobs import FINAL_STATES, IngestJobs, job_id
from chalicelib.readings.uploads import CONTENT_TYPE, presigned_post
from infra.resources import Stack
from ops.target import Target

DEFAULT_TIMEOUT = 300.0
# For the whole POST of one file: generous, as the file may be 100 MB.
POST_TIMEOUT = 600.0


class JobTimeout(TimeoutError):
    pass


def upload_key(path: Path) -> str:
    return f"{UPLOADS_PREFIX}{path.name}"


@dataclass(frozen=True)
class Upload:
    bucket: str
    key: str
    etag: str
    version_id: str | None

    @property
    def ingest_ids(self) -> tuple[str, ...]:
        """The ids the object's ingest job may have, most likely first.

        The handler's rule: the version id from the S3 event, else the ETag.
        AWS puts ``versionId`` in every event of a versioned bucket, but moto's
        notifications omit it, so on the local cloud the handler falls back to
        the ETag. Watching both ids keeps this CLI right on either; in AWS the
        second id simply never appears.
        """
        ids = [job_id(self.bucket, self.key, v) for v in (self.version_id, self.etag) if v]
        return tuple(dict.fromkeys(ids))


class UploadRefused(ValueError):
    """The file is over the stage's maximum, or S3 refused the form."""


def upload_file(
    s3: Any,
    bucket: str,
    path: Path,
    key: str | None = None,
    *,
    max_bytes: int = DEFAULT_UPLOAD_MAX_BYTES,
) -> Upload:
    """Upload ``path`` through a presigned POST, as an API client would.

    The form carries the same policy ``POST /uploads`` hands out
    (:func:`chalicelib.readings.uploads.presigned_post`): this key, ``text/csv``,
    at most ``max_bytes``. One request, not a multipart upload: multipart
    objects make S3 emit two ObjectCreated events, and their ETag is not the
    content's MD5. Raises :class:`UploadRefused` for a file over ``max_bytes``
    (before sending it) or a form S3 refuses.
    """
    key = key or upload_key(path)
    size = path.stat().st_size
    if size > max_bytes:
        raise UploadRefused(
            f"{path} is {size:,} bytes, over this stage's upload maximum of {max_bytes:,}"
        )
    post = presigned_post(s3, bucket, key, max_bytes)
    headers = post_form(post["url"], post["fields"], path)
    etag, version_id = headers.get("ETag"), headers.get("x-amz-version-id")
    if not etag:  # moto's answer to a POST carries neither
        head = s3.head_object(Bucket=bucket, Key=key)
        etag, version_id = head["ETag"], head.get("VersionId")
    return Upload(bucket, key, etag.strip('"'), version_id)


def post_form(url: str, fields: dict[str, str], path: Path) -> dict[str, str]:
    """POST ``fields`` and the file ``path`` as multipart/form-data; returns the headers.

    The file is streamed from disk a MiB at a time, never read whole.
    """
    boundary = uuid.uuid4().hex
    head = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    )
    # S3 takes the key from the form's fields; the part's file name is not used.
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="upload.csv"'
        f"\r\nContent-Type: {CONTENT_TYPE}\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    length = len(head) + path.stat().st_size + len(tail)
    with path.open("rb") as file:
        body = itertools.chain([head], iter(functools.partial(file.read, 1 << 20), b""), [tail])
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={
                "Content-Type": f"multipart/form-data; boundary={boundary}",
                "Content-Length": str(length),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=POST_TIMEOUT) as response:
                return dict(response.headers)
        except urllib.error.HTTPError as error:
            raise UploadRefused(f"S3 refused the upload: {_s3_error(error)}") from None


def _s3_error(error: urllib.error.HTTPError) -> str:
    text = error.read().decode("utf-8", errors="replace")
    code = re.search(r"<Code>([^<]*)</Code>", text)
    message = re.search(r"<Message>([^<]*)</Message>", text)
    found = [m.group(1) for m in (code, message) if m]
    return ": ".join(found) or f"HTTP {error.code}"


def uploads_bucket(stack: Stack) -> str:
    return stack.bucket("uploads").name


def _find_job(jobs: Any, ingest_ids: Sequence[str]) -> dict[str, Any] | None:
    for ingest_id in ingest_ids:
        job = jobs.get(ingest_id)
        if job is not None:
            return job
    return None


def follow_job(
    jobs: Any,
    ingest_ids: Sequence[str],
    console: Console,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    poll_interval: float = 0.25,
    should_stop: Callable[[], bool] = lambda: False,
) -> dict[str, Any] | None:
    """Show a progress bar until the job reaches a final state; returns the job.

    ``ingest_ids`` are the ids the job may have (see :attr:`Upload.ingest_ids`);
    the first that appears is followed. Returns None when ``should_stop``
    turns true first (Ctrl-C in the local cloud); raises :class:`JobTimeout`
    after ``timeout`` seconds. The bar counts rows written against rows
    accepted: the total is unknown until the ingest handler has read the
    whole file, so until then it pulses.
    """
    deadline = time.monotonic() + timeout
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        TimeElapsedColumn(),
    )
    candidates = list(ingest_ids)
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("ingest: waiting for the handler", total=None)
        while True:
            job = _find_job(jobs, candidates)
            if job is not None:
                candidates = [job["ingest_id"]]  # Found: stop asking for the others.
                accepted = int(job.get("rows_accepted") or 0)
                written = int(job.get("rows_written") or 0)
                state = job.get("state", "?")
                total = accepted if accepted or state in FINAL_STATES else None
                description = f"ingest {job['ingest_id'][:12]}: {state}"
                progress.update(task, total=total, completed=written, description=description)
                if state in FINAL_STATES:
                    return job
            if should_stop():
                return None
            if time.monotonic() > deadline:
                raise JobTimeout(f"ingest {candidates[0]} did not finish within {timeout:.0f} s")
            time.sleep(poll_interval)


def describe_job(job: dict[str, Any]) -> str:
    text = (
        f"ingest {job['ingest_id']} {job['state']}: {job.get('rows_seen', 0)} rows seen, "
        f"{job.get('rows_accepted', 0)} accepted, {job.get('rows_rejected', 0)} rejected, "
        f"{job.get('rows_written', 0)} written"
    )
    took = job_seconds(job)
    if took is not None:
        text += f" in {took:.1f} s"
        if took > 0 and job.get("rows_written"):
            text += f" ({int(job['rows_written']) / took:,.0f} rows/s)"
    if job.get("rejects_key"):
        text += f"; rejects report s3://{job['bucket']}/{job['rejects_key']}"
        if job.get("rejects_truncated"):
            text += " (truncated at the stage's bound: it lists the first rejected rows only)"
    if job.get("reason"):
        text += f"; reason: {job['reason']}"
    return text


def job_seconds(job: dict[str, Any]) -> float | None:
    """Seconds from the ingest handler's start to the job's end, for a job's first run
    (a replay keeps the first run's start); None while it runs."""
    if job.get("run", 1) != 1 or not job.get("started_at") or not job.get("finished_at"):
        return None
    started = datetime.fromisoformat(job["started_at"])
    return (datetime.fromisoformat(job["finished_at"]) - started).total_seconds()


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("upload", help="upload a CSV of readings and follow its ingest")
    parser.add_argument("file", type=Path)
    parser.add_argument("--key", help=f"object key (default: {UPLOADS_PREFIX}<file name>)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds to wait")
    parser.add_argument("--no-follow", action="store_true", help="upload and print the job id only")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, target: Target, console: Console) -> int:
    if not args.file.is_file():
        console.print(f"[red]error:[/] {args.file} is not a file")
        return 2
    if args.key and not args.key.startswith(UPLOADS_PREFIX):
        # Only the uploads prefix is wired to the ingest trigger.
        console.print(f"[red]error:[/] --key must start with {UPLOADS_PREFIX}")
        return 2
    bucket = uploads_bucket(target.stack)
    maximum = target.stack.settings.upload_max_bytes
    try:
        upload = upload_file(target.clients("s3"), bucket, args.file, args.key, max_bytes=maximum)
    except UploadRefused as error:
        console.print(f"[red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
        return 2
    say = functools.partial(console.print, markup=False, highlight=False, soft_wrap=True)
    say(f"uploaded s3://{bucket}/{upload.key}")
    if args.no_follow:
        say("ingest id: " + " or ".join(upload.ingest_ids))
        return 0
    jobs = IngestJobs(target.clients("dynamodb"), target.stack.settings.ingests_table, Clock())
    try:
        job = follow_job(jobs, upload.ingest_ids, console, timeout=args.timeout)
    except JobTimeout as error:
        console.print(f"[red]error:[/] {error}")
        return 1
    assert job is not None  # follow_job only returns None when asked to stop.
    say(describe_job(job))
    return 1 if job["state"] == "FAILED" else 0
