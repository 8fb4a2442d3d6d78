"""AWS API calls per ingest, by service and operation, against the design floor.

``python -m benchmarks.calls [ROWS ...]`` ingests the 20-row sample and
generated files under moto (in-process, ``mock_aws``), counting every API
call the handlers make through a botocore event hook. The floor for N rows is
what no design can go below: ceil(N / 25) BatchWriteItem calls, plus the SQS
send calls that the bytes need at 256 KiB per SendMessageBatch. A naive design
(one SendMessage and one PutItem per row) makes about 2N calls.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import sys
from collections import Counter
from pathlib import Path

import boto3
from moto import mock_aws

from chalicelib.aws import Clients
from chalicelib.readings import handlers
from chalicelib.readings.jobs import DONE_STATES
from chalicelib.services import Services
from infra.declaration import declare
from infra.provision import Provisioner
from infra.stageconfig import StageConfig
from sample_data.generate import write_rows

ROOT = Path(__file__).resolve().parent.parent


def offline_env() -> None:
    """Fake credentials and quiet handlers: the run must never reach a real account."""
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        EVENTFLOW_STAGE="local",
        POWERTOOLS_METRICS_DISABLED="true",
        POWERTOOLS_LOG_LEVEL="WARNING",
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)


class CallCounter:
    """Counts API calls made through one boto3 session, by 'service:Operation'."""

    def __init__(self, session: boto3.session.Session):
        self.calls: Counter[str] = Counter()
        session.events.register("before-call", self._count)

    def _count(self, model, **_: object) -> None:
        self.calls[f"{model.service_model.service_name}:{model.name}"] += 1


def drain(services: Services, url: str, handler) -> None:
    """Lambda's poller does these receives and deletes; they are not counted."""
    sqs = boto3.client("sqs")
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return
        event = {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": {},
                    "messageAttributes": {},
                    "eventSource": "aws:sqs",
                }
                for m in messages
            ]
        }
        response = handler(event, None, services)
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        if failed:
            raise RuntimeError(f"{len(failed)} message(s) failed: {response}")
        for m in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def measure(body: bytes) -> dict:
    with mock_aws():
        admin = Clients()
        outputs = Provisioner(admin).apply(declare(StageConfig.load("local")))
        session = boto3.session.Session()
        counter = CallCounter(session)
        services = Services(StageConfig.load("local").settings(), clients=Clients(session))
        bucket = services.settings.uploads_bucket
        admin.s3.put_object(Bucket=bucket, Key="incoming/bench.csv", Body=body)
        drain(services, outputs.queues["s3-events"]["url"], handlers.ingest_from_queue)
        drain(services, outputs.queues["ingest"]["url"], handlers.write_readings)
        # Read the result through the uncounted client: it is not part of the ingest.
        job = Services(services.settings, clients=admin).jobs.list(1)[0][0]
        assert job["state"] in DONE_STATES, job
        rows = job["rows_accepted"]
        floor = math.ceil(rows / 25) + math.ceil(len(body) / (256 * 1024))
        total = sum(counter.calls.values())
        return {
            "rows": rows,
            "calls": dict(sorted(counter.calls.items())),
            "total": total,
            "floor": floor,
            "ratio_to_floor": round(total / floor, 3) if floor else None,
            "naive_estimate": 2 * rows,
        }


def main(argv: list[str] | None = None) -> int:
    offline_env()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("rows", nargs="*", type=int, default=[10_000])
    args = parser.parse_args(argv)
    results = {
        "sample (readings_clean.csv)": measure(
            (ROOT / "sample_data/readings_clean.csv").read_bytes()
        )
    }
    for rows in args.rows:
        out = io.StringIO()
        write_rows(out, rows)
        results[f"generated {rows} rows"] = measure(out.getvalue().encode())
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
