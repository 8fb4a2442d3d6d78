"""AWS API calls per ingest, by service and operation, against the design floor.

``python -m benchmarks.calls [ROWS ...]`` ingests the 20-row sample and
generated files under moto (in-process, ``mock_aws``), counting every API
call the handlers make through a botocore event hook. The floor for N rows is
what no design can go below: ceil(N / 25) BatchWriteItem calls, plus the SQS
send calls that the bytes need at 256 KiB per SendMessageBatch. A naive design
(one SendMessage and one PutItem per row) makes about 2N calls.

Each call is also priced as AWS bills it (:mod:`benchmarks.billing`): the
``billed`` units feed the cost model (:mod:`benchmarks.cost`), together with
what Lambda itself does per batch it delivers (``esm``: a receive and a
delete; the empty receives of idle pollers cost by the hour, not by the row)
and the number of function invocations.

Calls per order over its whole life are counted on a running local cloud by
:mod:`benchmarks.order_calls`, with the same :class:`CallCounter`.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import sys
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import boto3
from moto import mock_aws

from benchmarks.billing import esm_sqs_units, units
from chalicelib.aws import Clients
from chalicelib.readings import handlers
from chalicelib.readings.jobs import DONE_STATES
from chalicelib.services import Services
from infra.provision import Provisioner
from infra.stack import declare
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
    """Counts API calls made through one boto3 session, by 'service:Operation',
    and the units AWS bills for them.

    ``attribute`` names who made a call (a function, the API), when the
    session is shared by several; its counts are then also kept per name.
    """

    def __init__(
        self,
        session: boto3.session.Session,
        attribute: Callable[[], str] | None = None,
    ):
        self.calls: Counter[str] = Counter()
        self.billed: Counter[str] = Counter()
        self.by_caller: dict[str, Counter[str]] = {}
        self._attribute = attribute
        self._lock = threading.Lock()
        # The operation's own parameters, once per call (not per retry).
        session.events.register("before-parameter-build", self._count)

    def _count(self, model, params, **_: object) -> None:
        service = model.service_model.service_name
        name = f"{service}:{model.name}"
        billed = units(service, model.name, params)
        with self._lock:
            self.calls[name] += 1
            self.billed.update(billed)
            if self._attribute is not None:
                self.by_caller.setdefault(self._attribute(), Counter())[name] += 1

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()
            self.billed.clear()
            self.by_caller.clear()


def batch_size(function: str) -> int:
    """The batch size that app.py gives the function's SQS event source."""
    import app

    [size] = [c.batch_size for c in app.app.event_sources if c.name == function]
    return size


def drain(services: Services, url: str, handler, esm: Counter[str]) -> int:
    """Deliver every message of the queue to ``handler``, in batches of the size app.py
    gives it, as Lambda's poller would; returns the invocations.

    The poller's receives and deletes are not the function's calls: they are
    not counted, but what Lambda is billed for them is added to ``esm``.
    """
    sqs = boto3.client("sqs")
    size = batch_size(handler.__name__)
    invocations = 0
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=size).get("Messages", [])
        if not messages:
            return invocations
        esm.update(esm_sqs_units(messages, fifo=url.endswith(".fifo")))
        invocations += 1
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
        esm: Counter[str] = Counter()
        invocations = {
            "ingest_from_queue": drain(
                services, outputs.queues["s3-events"]["url"], handlers.ingest_from_queue, esm
            ),
            "write_readings": drain(
                services, outputs.queues["ingest"]["url"], handlers.write_readings, esm
            ),
        }
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
            "file_bytes": len(body),
            "billed": dict(sorted(counter.billed.items())),
            "esm_billed": dict(sorted(esm.items())),
            "invocations": invocations,
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
