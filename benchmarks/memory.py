"""Peak memory of the ingest for growing files: it should not grow with them.

``python -m benchmarks.memory [ROWS ...]`` starts a moto server, uploads a
generated file of each size, and runs the ingest of each in a fresh child
process against that server, so the figures are the ingest's own (moto keeps
objects and queues in its own memory, in the parent). The child reports its
``tracemalloc`` peak (every Python allocation) and its peak resident size.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

from moto.server import ThreadedMotoServer

from benchmarks.calls import offline_env
from chalicelib.aws import Clients
from chalicelib.readings.ingest import ingest_object
from chalicelib.readings.jobs import ObjectRef
from chalicelib.services import Services
from infra.declaration import declare
from infra.provision import Provisioner
from infra.stageconfig import StageConfig
from sample_data.generate import write_rows


def peak_rss_mib() -> float:
    """This process's own peak resident size.

    Not ``getrusage``: Linux carries ``ru_maxrss`` over from the parent at
    fork, and the parent holds moto's copy of every file. ``VmHWM`` starts
    afresh at exec.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def child(key: str, etag: str) -> int:
    """Run one ingest and print its memory figures (in the child process)."""
    services = Services(StageConfig.load("local").settings(), clients=Clients())
    ref = ObjectRef(bucket=services.settings.uploads_bucket, key=key, etag=etag)
    traced = os.environ.get("EVENTFLOW_TRACEMALLOC") != "0"
    if traced:
        tracemalloc.start()
    job = ingest_object(ref, services, owner="benchmark")
    peak = tracemalloc.get_traced_memory()[1] if traced else 0
    print(
        json.dumps(
            {
                "rows_seen": job["rows_seen"],
                "python_peak_mib": round(peak / 2**20, 2),
                "peak_rss_mib": peak_rss_mib(),
            }
        )
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if args and args[0] == "--child":
        return child(args[1], args[2])
    offline_env()
    os.environ["POWERTOOLS_LOG_LEVEL"] = "ERROR"
    sizes = [int(a) for a in args] or [10_000, 100_000, 300_000]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    results = []
    try:
        host, port = server.get_host_and_port()
        os.environ["AWS_ENDPOINT_URL"] = f"http://{host}:{port}"
        clients = Clients()
        Provisioner(clients).apply(declare(StageConfig.load("local")))
        bucket = StageConfig.load("local").settings().uploads_bucket
        for rows in sizes:
            out = io.StringIO()
            write_rows(out, rows, bad_every=1000)
            body = out.getvalue().encode()
            key = f"incoming/memory/{rows}.csv"
            etag = clients.s3.put_object(Bucket=bucket, Key=key, Body=body)["ETag"].strip('"')
            done = subprocess.run(
                [sys.executable, "-m", "benchmarks.memory", "--child", key, etag],
                capture_output=True,
                text=True,
                check=True,
                env=os.environ,
            )
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            results.append({"rows": rows, "file_mib": round(len(body) / 2**20, 1), **figures})
    finally:
        server.stop()
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
