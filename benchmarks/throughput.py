"""Rows per second through the local cloud, against moto's raw BatchWriteItem rate.

``python -m benchmarks.throughput [ROWS ...]`` starts a local cloud on free
ports, as ``make run`` does (moto in a process of its own; the handlers and
their pollers in this one), and for each size, against the same moto server:

1. raw rate: the fastest moto can store these rows. The very items the
   pipeline writes for a file of that size (built by the same code) go into a
   scratch table shaped like the readings table (same keys, same index) with
   BatchWriteItem, 25 at a time, from one thread, with nothing else going on;
2. pipeline: uploads a generated file and times it from the upload to the
   job's completed state: S3 notification, ingest, SQS, writer, counters;
3. the raw rate again, so that both sides of the ratio see the same machine
   load (the machine is shared); the two raw runs are averaged.

Each row must be written once, so the raw rate is the ceiling, and the ratio
pipeline/raw is the figure to compare across machines. A second, smaller
baseline is reported beside it for comparison with earlier figures: moto's
rate for six-attribute items in a table without an index
(:func:`baseline_rate`), which is cheaper per item than a reading is, so
it flatters the ceiling.

:func:`measure` is the entry point for the bench report.
"""

from __future__ import annotations

import io
import json
import os
import resource
import statistics
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

from chalicelib.aws import Clients
from chalicelib.clock import Clock
from chalicelib.readings.csvstream import CsvRecords
from chalicelib.readings.jobs import DONE_STATES, FINAL_STATES, IngestJobs, job_id
from chalicelib.readings.model import CSV_COLUMNS, Reading
from chalicelib.readings.store import reading_item
from infra.provision import Provisioner
from localcloud.cloud import LocalCloud
from sample_data.generate import write_rows

BATCH = 25
DEFAULT_SIZES = (20_000, 100_000)
# The raw rate is steady after a few thousand items; more only costs time.
MAX_RAW_ROWS = 20_000
# How often the job is read while waiting for it, like a user's progress display.
JOB_POLL_SECONDS = 0.1


def process_cpu(moto_pid: int | None) -> tuple[float, float]:
    """CPU seconds so far (user and system, every thread) of moto's process, when it
    has one (else 0), and of this one (the handlers, the pollers and the bench)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    moto = 0.0
    if moto_pid is not None:
        # /proc/PID/stat: utime and stime are fields 14 and 15, in clock ticks.
        fields = Path(f"/proc/{moto_pid}/stat").read_text().rsplit(")", 1)[1].split()
        moto = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return moto, usage.ru_utime + usage.ru_stime


def _cpu_seconds(moto_pid: int | None = None) -> float:
    return sum(process_cpu(moto_pid))


def _generated(rows: int) -> bytes:
    out = io.StringIO()
    write_rows(out, rows)
    return out.getvalue().encode()


def _write_all(clients: Clients, table: str, items: list[dict[str, Any]]) -> float:
    ddb = clients.dynamodb
    start = time.perf_counter()
    for i in range(0, len(items), BATCH):
        batch = [{"PutRequest": {"Item": item}} for item in items[i : i + BATCH]]
        ddb.batch_write_item(RequestItems={table: batch})
    return len(items) / (time.perf_counter() - start)


def create_plain_table(ddb: Any, name: str) -> None:
    """A table keyed like the readings table (location, reading_id), with no index."""
    ddb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "location", "AttributeType": "S"},
            {"AttributeName": "reading_id", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "location", "KeyType": "HASH"},
            {"AttributeName": "reading_id", "KeyType": "RANGE"},
        ],
    )


def baseline_rate(clients: Clients, rows: int) -> float:
    """moto's rate for small items (six attributes) in a table with no index, items/s."""
    ddb = clients.dynamodb
    table = f"bench-{uuid.uuid4().hex[:8]}"
    create_plain_table(ddb, table)
    items = [
        {
            "location": {"S": f"site-{n % 50:03d}"},
            "reading_id": {"S": f"20240601T{n:06d}.000000Z~wired"},
            "local_avg": {"N": "1.25"},
            "remote_avg": {"N": "20.5"},
            "local_dest": {"S": "router"},
            "remote_dest": {"S": "probe"},
        }
        for n in range(rows)
    ]
    try:
        return _write_all(clients, table, items)
    finally:
        ddb.delete_table(TableName=table)


def reading_items(rows: int) -> list[dict[str, Any]]:
    """The items the pipeline writes for a generated file of ``rows`` rows."""
    records = CsvRecords(io.BytesIO(_generated(rows)), CSV_COLUMNS)
    ingest_id = "0" * 32
    return [
        reading_item(
            Reading.model_validate(dict(zip(CSV_COLUMNS, r.fields, strict=True))), ingest_id
        )
        for r in records
    ]


def raw_rate(cloud: LocalCloud, rows: int) -> float:
    """moto's rate for the pipeline's own items, in a table shaped like the readings table."""
    assert cloud.stack is not None and cloud.clients is not None
    items = reading_items(rows)
    table = replace(cloud.stack.table("readings"), name=f"bench-{uuid.uuid4().hex[:8]}")
    # The provisioner's own table arguments: the same keys and index as the real table.
    cloud.clients.dynamodb.create_table(**Provisioner._create_table_args(table))
    try:
        return _write_all(cloud.clients, table.name, items)
    finally:
        cloud.clients.dynamodb.delete_table(TableName=table.name)


def pipeline_rate(cloud: LocalCloud, rows: int, timeout: float) -> tuple[float, dict]:
    """Rows/s from the upload of a generated file to its job's completion."""
    body = _generated(rows)
    clients = cloud.clients
    bucket = cloud.stack.settings.uploads_bucket
    # A new key each time: the same bytes at the same key are the same job, already done.
    key = f"incoming/bench/{rows}-{uuid.uuid4().hex[:8]}.csv"
    jobs = IngestJobs(clients.dynamodb, cloud.stack.settings.ingests_table, Clock())
    start = time.perf_counter()
    etag = clients.s3.put_object(Bucket=bucket, Key=key, Body=body)["ETag"]
    ingest_id = job_id(bucket, key, etag)
    deadline = start + timeout
    job = None
    while time.perf_counter() < deadline:
        job = jobs.get(ingest_id)
        if job and job["state"] in FINAL_STATES:
            break
        time.sleep(JOB_POLL_SECONDS)
    elapsed = time.perf_counter() - start
    if not job or job["state"] not in DONE_STATES:
        raise RuntimeError(f"ingest did not complete in {timeout}s: {job}")
    return rows / elapsed, {"seconds": round(elapsed, 2), "job": job}


def _timed(run: Any, moto_pid: int | None) -> tuple[float, float]:
    """``run()``'s result and the CPU seconds it took (raw runs have no other load)."""
    cpu = _cpu_seconds(moto_pid)
    result = run()
    return result, _cpu_seconds(moto_pid) - cpu


def measure(
    sizes: tuple[int, ...] | list[int] = DEFAULT_SIZES, *, moto_process: bool = True
) -> dict[str, Any]:
    """Pipeline and raw rates for each size, in one local cloud; returns the figures.

    Returns ``{"sizes": [...], "results": [{"rows", "raw_items_per_s",
    "raw_small_items_per_s", "pipeline_rows_per_s", "pipeline_over_raw",
    "pipeline_over_raw_small", "pipeline_seconds", "raw_cpu_ms_per_item",
    "pipeline_cpu_ms_per_row", "raw_over_pipeline_cpu", "job_state",
    "invocations"}, ...]}``. ``pipeline_over_raw`` is the headline ratio;
    ``raw_*`` are the means of the runs before and after the pipeline's, on
    up to :data:`MAX_RAW_ROWS` items. The CPU figures are the CPU time per row
    of this process and moto's (all threads: moto, pollers, handlers): on a
    shared machine they move less with other processes' load than the rates
    do; ``raw_over_pipeline_cpu`` is the ratio the rates would show if
    everything ran on one core.
    """
    saved = {k: os.environ.get(k) for k in ("POWERTOOLS_LOG_LEVEL", "POWERTOOLS_METRICS_DISABLED")}
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    results = []
    try:
        with LocalCloud(
            aws_port=0, api_port=0, serve_api=False, moto_process=moto_process
        ) as cloud:
            assert cloud.clients is not None
            for rows in sizes:
                raw_rows = min(rows, MAX_RAW_ROWS)
                raw, raw_cpu = _timed(lambda n=raw_rows: raw_rate(cloud, n), cloud.moto_pid)
                small = [baseline_rate(cloud.clients, raw_rows)]
                cpu = _cpu_seconds(cloud.moto_pid)
                rate, detail = pipeline_rate(cloud, rows, timeout=max(120.0, rows / 100))
                pipeline_cpu = _cpu_seconds(cloud.moto_pid) - cpu
                small.append(baseline_rate(cloud.clients, raw_rows))
                raw_again, raw_cpu_again = _timed(
                    lambda n=raw_rows: raw_rate(cloud, n), cloud.moto_pid
                )
                raw = [raw, raw_again]
                raw_mean, small_mean = statistics.mean(raw), statistics.mean(small)
                raw_cpu_per_row = (raw_cpu + raw_cpu_again) / (2 * raw_rows)
                results.append(
                    {
                        "rows": rows,
                        "raw_items_per_s": round(raw_mean),
                        "raw_small_items_per_s": round(small_mean),
                        "pipeline_rows_per_s": round(rate),
                        "pipeline_over_raw": round(rate / raw_mean, 3),
                        "pipeline_over_raw_small": round(rate / small_mean, 3),
                        "pipeline_seconds": detail["seconds"],
                        "raw_cpu_ms_per_item": round(1000 * raw_cpu_per_row, 4),
                        "pipeline_cpu_ms_per_row": round(1000 * pipeline_cpu / rows, 4),
                        "raw_over_pipeline_cpu": round(raw_cpu_per_row * rows / pipeline_cpu, 3),
                        "job_state": detail["job"]["state"],
                        "invocations": {
                            name: s["invocations"]
                            for name, s in cloud.runtime.stats().items()
                            if s["invocations"]
                        },
                    }
                )
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return {"sizes": list(sizes), "results": results}


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    sizes = [int(a) for a in args] or list(DEFAULT_SIZES)
    print(json.dumps(measure(sizes), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
