"""Peak memory of the ingest handler for growing files: it must not grow with them.

``python -m benchmarks.memory [ROWS ...]`` starts a moto server, uploads a
generated file of each size, and runs the ingest handler on it in a fresh
child process of its own, against that server. The child reports its resident
size when idle (imports done, nothing called yet, as a Lambda sandbox before
its first invocation) and its peak resident size during the invocation, both
from the kernel's accounting of that process alone (``VmRSS``, ``VmHWM``).

How not to measure it: ``getrusage``'s ``ru_maxrss``. Python starts a child
with ``vfork`` and ``exec``; at the ``exec`` Linux folds the high-water mark
of the address space being left (the parent's, which ``vfork`` shares) into
the child's ``ru_maxrss``. So a child's ``ru_maxrss`` is at least the parent's
own peak, and the parent here held every generated file: read that way, the
handler appeared to grow with the file (128 MiB above idle at 600k rows, 206
MiB at 1M) while its own memory was flat. ``VmHWM`` belongs to the address
space made at ``exec``, and the child resets it once idle, so the peak is the
invocation's own. The parent also writes each file to disk and uploads it
from there, so it holds no copy either.

:func:`measure` is the entry point for the bench report.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DEFAULT_SIZES = (10_000, 100_000, 300_000, 600_000, 1_000_000)
# Every thousandth row is rejected, so the rejects report is exercised too.
BAD_EVERY = 1000


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def peak_rss_mib() -> float:
    """This process's own peak resident size, in MiB (``VmHWM``; see the module docstring)."""
    return _status_mib("VmHWM")


def rss_mib() -> float:
    """This process's resident size now, in MiB."""
    return _status_mib("VmRSS")


def _reset_peak() -> bool:
    """Start the peak afresh from the current size (Linux 4.0 and later)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def child(key: str, etag: str) -> int:
    """Run the ingest handler once on ``key`` and print its memory figures (in the child)."""
    from chalicelib.aws import Clients
    from chalicelib.readings.handlers import ingest_from_s3
    from chalicelib.services import Services
    from infra.stageconfig import StageConfig

    services = Services(StageConfig.load("local").settings(), clients=Clients())
    event = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": services.settings.uploads_bucket},
                    "object": {"key": key, "eTag": etag},
                },
            }
        ]
    }
    idle = rss_mib()
    reset = _reset_peak()
    started = time.perf_counter()
    ingest_from_s3(event, None, services)
    seconds = time.perf_counter() - started
    job = services.jobs.get(_ingest_id(services.settings.uploads_bucket, key, etag))
    peak = peak_rss_mib()
    print(
        json.dumps(
            {
                "rows_seen": job["rows_seen"] if job else None,
                "state": job["state"] if job else None,
                "seconds": round(seconds, 2),
                "idle_rss_mib": idle,
                "peak_rss_mib": peak,
                # Without the reset the peak could predate the invocation (imports).
                "peak_is_invocations_own": reset,
                "peak_above_idle_mib": round(peak - idle, 1),
            }
        )
    )
    return 0


def _ingest_id(bucket: str, key: str, etag: str) -> str:
    from chalicelib.readings.jobs import job_id

    return job_id(bucket, key, etag)


def _generate(rows: int, directory: str) -> Path:
    from sample_data.generate import write_rows

    path = Path(directory) / f"{rows}.csv"
    with path.open("w", newline="") as out:
        write_rows(out, rows, bad_every=BAD_EVERY)
    return path


def measure(sizes: tuple[int, ...] | list[int] = DEFAULT_SIZES) -> dict[str, Any]:
    """Ingest a generated file of each size in a child process; returns the figures.

    Returns ``{"method": str, "sizes": [...], "results": [{"rows", "file_mib",
    "rows_seen", "state", "seconds", "idle_rss_mib", "peak_rss_mib",
    "peak_is_invocations_own", "peak_above_idle_mib"}, ...],
    "max_peak_above_idle_mib": float, "spread_mib": float}``, where
    ``spread_mib`` is the largest minus the smallest ``peak_above_idle_mib``
    (flat memory: a spread of a few MiB).
    """
    from moto.server import ThreadedMotoServer

    from benchmarks.calls import offline_env
    from chalicelib.aws import Clients
    from infra.provision import Provisioner
    from infra.stack import declare
    from infra.stageconfig import StageConfig

    saved = dict(os.environ)
    offline_env()
    os.environ["POWERTOOLS_LOG_LEVEL"] = "ERROR"
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    results = []
    try:
        host, port = server.get_host_and_port()
        os.environ["AWS_ENDPOINT_URL"] = f"http://{host}:{port}"
        clients = Clients()
        stage = StageConfig.load("local")
        Provisioner(clients).apply(declare(stage))
        bucket = stage.settings().uploads_bucket
        for rows in sizes:
            with tempfile.TemporaryDirectory() as directory:
                path = _generate(rows, directory)
                key = f"incoming/memory/{rows}.csv"
                clients.s3.upload_file(str(path), bucket, key)
                etag = clients.s3.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')
                file_mib = round(path.stat().st_size / 2**20, 1)
            done = subprocess.run(
                [sys.executable, "-m", "benchmarks.memory", "--child", key, etag],
                capture_output=True,
                text=True,
                check=True,
                env=os.environ,
            )
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            results.append({"rows": rows, "file_mib": file_mib, **figures})
    finally:
        server.stop()
        os.environ.clear()
        os.environ.update(saved)
    above = [r["peak_above_idle_mib"] for r in results]
    return {
        "method": "VmRSS before and VmHWM during one ingest_from_s3 invocation, "
        "in a child process per file; moto serves the file from the parent",
        "sizes": list(sizes),
        "results": results,
        "max_peak_above_idle_mib": max(above, default=0.0),
        "spread_mib": round(max(above, default=0.0) - min(above, default=0.0), 1),
    }


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if args and args[0] == "--child":
        return child(args[1], args[2])
    sizes = [int(a) for a in args] or list(DEFAULT_SIZES)
    print(json.dumps(measure(sizes), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
