"""The demo that ``make run`` plays: upload the clean sample file and follow its ingest.

It goes through the same path as a user's upload (a PutObject into the
uploads bucket under ``incoming/``, then S3's notification), so a completed
demo shows that every part of the pipeline works.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from rich.console import Console

from chalicelib.clock import Clock
from chalicelib.readings.jobs import IngestJobs
from infra.stageconfig import PROJECT_DIR
from ops.upload import JobTimeout, describe_job, follow_job, upload_file, uploads_bucket

SAMPLE_FILE = PROJECT_DIR / "sample_data" / "readings_clean.csv"
DEMO_TIMEOUT = 120.0


def first_location(path: Path) -> str | None:
    """The location of the file's first reading, to suggest a query that finds it."""
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row.get("location"):
                return row["location"]
    return None


def run_demo(
    cloud: Any,
    console: Console,
    should_stop: Callable[[], bool],
    sample: Path = SAMPLE_FILE,
) -> dict[str, Any] | None:
    """Upload ``sample`` and follow its job; returns the final job, or None."""
    # Plain text: paths and ids must not be wrapped, highlighted or read as markup.
    say = functools.partial(console.print, markup=False, highlight=False, soft_wrap=True)
    if not sample.is_file():
        say(f"demo skipped: {sample} not found")
        return None
    bucket = uploads_bucket(cloud.stack)
    upload = upload_file(cloud.clients("s3"), bucket, sample)
    say(f"demo: uploaded s3://{bucket}/{upload.key}")
    jobs = IngestJobs(cloud.clients("dynamodb"), cloud.stack.settings.ingests_table, Clock())
    try:
        job = follow_job(
            jobs, upload.ingest_ids, console, timeout=DEMO_TIMEOUT, should_stop=should_stop
        )
    except JobTimeout as error:
        # The cloud stays up: the status view below shows where the rows are stuck.
        say(f"demo: {error}", style="red")
        return None
    if job is None:
        return None
    say(f"demo: {describe_job(job)}")
    location = first_location(sample)
    if job["state"] != "FAILED" and location and cloud.api_endpoint:
        say("try:", style="bold")
        say(f"  curl {cloud.api_endpoint}/readings/{quote(location, safe='')}")
        say(f"  curl {cloud.api_endpoint}/ingests/{job['ingest_id']}")
    return job
