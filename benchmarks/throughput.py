"""Rows per second through the local cloud, against moto's raw BatchWriteItem rate.

``python -m benchmarks.throughput [ROWS]`` starts a local cloud on free ports
and, in the same run and against the same moto server:

1. baseline: writes ROWS items straight into a scratch table with
   BatchWriteItem, 25 at a time, from one thread: the fastest moto can store;
2. pipeline: uploads a generated ROWS-row CSV and times it from the upload to
   the job's COMPLETED state: S3 notification, ingest, SQS, writer, counters.

The ratio pipeline/baseline is the figure to compare across machines; the
absolute rates depend on the machine and its load.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
import uuid

from chalicelib.aws import Clients
from chalicelib.clock import Clock
from chalicelib.readings.jobs import DONE_STATES, FINAL_STATES, IngestJobs, job_id
from localcloud.cloud import LocalCloud
from sample_data.generate import write_rows

BATCH = 25


def baseline_rate(clients: Clients, rows: int) -> float:
    ddb = clients.dynamodb
    table = f"bench-{uuid.uuid4().hex[:8]}"
    ddb.create_table(
        TableName=table,
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
    start = time.perf_counter()
    for i in range(0, rows, BATCH):
        batch = [{"PutRequest": {"Item": item}} for item in items[i : i + BATCH]]
        ddb.batch_write_item(RequestItems={table: batch})
    elapsed = time.perf_counter() - start
    ddb.delete_table(TableName=table)
    return rows / elapsed


def pipeline_rate(cloud: LocalCloud, rows: int, timeout: float) -> tuple[float, dict]:
    out = io.StringIO()
    write_rows(out, rows)
    body = out.getvalue().encode()
    clients = cloud.clients
    bucket = cloud.stack.settings.uploads_bucket
    key = f"incoming/bench/{rows}.csv"
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
        time.sleep(0.2)
    elapsed = time.perf_counter() - start
    if not job or job["state"] not in DONE_STATES:
        raise RuntimeError(f"ingest did not complete in {timeout}s: {job}")
    return rows / elapsed, {"seconds": round(elapsed, 2), "job": job}


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    rows = int(args[0]) if args else 100_000
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    with LocalCloud(aws_port=0, api_port=0) as cloud:
        baseline = baseline_rate(cloud.clients, min(rows, 20_000))
        rate, detail = pipeline_rate(cloud, rows, timeout=max(120.0, rows / 100))
        stats = cloud.runtime.stats()
    print(
        json.dumps(
            {
                "rows": rows,
                "baseline_batchwriteitem_items_per_s": round(baseline),
                "pipeline_rows_per_s": round(rate),
                "pipeline_over_baseline": round(rate / baseline, 3),
                "pipeline_seconds": detail["seconds"],
                "job_state": detail["job"]["state"],
                "invocations": stats,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
