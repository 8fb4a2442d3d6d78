"""One reliability scenario's world: moto, the provisioned local stage, the app's
handlers, and a driver that plays Lambda's part.

The driver receives from the stage's queues and invokes the app's own handlers
(``app.app.handler_map``, the functions Chalice registered), the way Lambda's
SQS event-source mapping does: a batch per invocation, the partial batch
response honoured, failed messages left on the queue. Where Lambda would wait
out the visibility timeout before a failed message comes back, the driver
makes it visible at once and moves the world's clock (:class:`SteppingClock`)
on by that timeout, so a redelivery costs no wall-clock time but leases age
as they would; the receive count still grows, and moto still moves a message
to its DLQ after ``maxReceiveCount`` receives.

Each invocation runs in a fresh "process": new boto3 clients (from one shared
session, so botocore's models load once) behind the scenario's
:class:`~tests.reliability.faults.FaultInjector`, and new ``Services``. So a
crashed invocation leaves nothing cached behind, as a dead Lambda container
would not. The driver's own calls (receive, delete, the invariant's reads) go
through separate, fault-free clients.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import boto3

from chalicelib.aws import Clients
from chalicelib.readings import handlers as readings_handlers
from chalicelib.readings.jobs import DONE_STATES, ObjectRef
from chalicelib.readings.model import CSV_COLUMNS, Reading
from chalicelib.readings.store import reading_item
from chalicelib.services import Services
from infra.outputs import Outputs
from infra.provision import Provisioner
from infra.resources import Stack
from infra.stack import declare
from infra.stageconfig import StageConfig
from localcloud.runtime.context import LambdaContext
from localcloud.runtime.sqs import lambda_record
from tests.conftest import InstantClock
from tests.reliability.faults import FaultInjector, SimulatedCrash

_SESSION: boto3.session.Session | None = None


def shared_session() -> boto3.session.Session:
    """One session for every world: botocore loads each service model once."""
    global _SESSION
    if _SESSION is None:
        _SESSION = boto3.session.Session()
    return _SESSION


class FaultyClients(Clients):
    """The app's clients, each with the injector in front of moto."""

    def __init__(self, session: boto3.session.Session, injector: FaultInjector):
        super().__init__(session)
        self._injector = injector

    def __call__(self, service: str) -> Any:
        fresh = service not in self._clients
        client = super().__call__(service)
        if fresh:
            self._injector.attach(client)
        return client


class SteppingClock(InstantClock):
    """Real time plus what the world has waited out: a failed message comes back
    only after its queue's visibility timeout, and leases age meanwhile."""

    def __init__(self) -> None:
        super().__init__()
        self.waited = timedelta()

    def now(self) -> datetime:
        return super().now() + self.waited

    def advance(self, seconds: float) -> None:
        self.waited += timedelta(seconds=seconds)


# -- test files --------------------------------------------------------------------


@dataclass(frozen=True)
class TestFile:
    """A CSV upload and what ingesting it must give."""

    body: bytes
    accepted: list[dict[str, str]]
    rejected: int

    @property
    def seen(self) -> int:
        return len(self.accepted) + self.rejected


def csv_file(
    valid: int,
    invalid: int = 0,
    location: str = "lab-01",
    start: int = 0,
    location_of: Callable[[int], str] | None = None,
) -> TestFile:
    """``valid`` distinct readings, then ``invalid`` rows that fail validation.

    Row ``n`` is at ``location``, or at ``location_of(n)`` when given.
    """
    rows = [
        {
            "timestamp": f"{1717200000 + start + n}.25",
            "location": location_of(n) if location_of else location,
            "source": "wired" if n % 2 else "wireless",
            "local_dest": "gw-1",
            "local_avg": f"{1 + n % 7}.5",
            "remote_dest": "probe-eu",
            "remote_avg": f"{20 + n % 11}.25",
        }
        for n in range(valid)
    ]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow([row[c] for c in CSV_COLUMNS])
    for n in range(invalid):
        writer.writerow(["not-a-time", location, "wired", "gw-1", f"{n}", "probe", "1"])
    return TestFile(out.getvalue().encode(), rows, invalid)


# -- the world ---------------------------------------------------------------------


@dataclass
class Upload:
    ref: ObjectRef
    file: TestFile
    # The job's id, as the app derived it from the notification (see World.job).
    ingest_id: str | None = None


@dataclass
class Delivery:
    """What one invocation did with one batch."""

    messages: int
    failed: int
    crashed: bool


@dataclass
class World:
    stage_config: StageConfig
    stack: Stack
    outputs: Outputs
    admin: Clients
    injector: FaultInjector
    clock: SteppingClock
    app: Any
    uploads: list[Upload] = field(default_factory=list)
    current: Services | None = None

    @property
    def settings(self):
        return self.stage_config.settings()

    # -- processes and invocations ----------------------------------------------

    def process(self) -> Services:
        """A fresh function process: new clients behind the injector, new services."""
        clients = FaultyClients(shared_session(), self.injector)
        return Services(self.settings, clients=clients, clock=self.clock)

    def context(self, function: str) -> LambdaContext:
        return LambdaContext(
            function_name=self.settings.name(function),
            memory_limit_in_mb=self.stage_config.lambda_memory_size(function),
            timeout_seconds=self.stage_config.lambda_timeout(function),
            region=self.outputs.region,
        )

    def invoke(
        self,
        function: str,
        event: dict[str, Any],
        context: LambdaContext | None = None,
        process: Services | None = None,
    ) -> tuple[Any, bool]:
        """Run one invocation in ``process``, or a new one; returns (response, crashed).

        The handler is the app's; a function that the app registers only in
        another stage (dev's ingest_from_s3) runs its body in chalicelib.
        """
        self.current = process or self.process()
        context = context or self.context(function)
        handler = self.app.handler_map.get(function)
        try:
            if handler is not None:
                response = handler(event, context)
            else:
                response = getattr(readings_handlers, function)(event, context, self.current)
        except SimulatedCrash:
            response = None
        crashed = self.injector.crashed
        # Whatever happened, the next invocation is a new, healthy process.
        self.injector.revive()
        return response, crashed

    # -- the event-source mapping -------------------------------------------------

    def consumer(self, queue_key: str) -> tuple[str, int]:
        """The function consuming a queue, and its batch size, from the app's own registrations."""
        for config in self.app.event_sources:
            # The app was imported for the local stage; the names' stage part differs.
            queue = getattr(config, "queue", None) or ""
            if queue.endswith(f"-{queue_key}"):
                return config.name, config.batch_size
        raise KeyError(f"no function consumes {queue_key}")

    def deliver(self, queue_key: str) -> Delivery | None:
        """Receive one batch from a queue and invoke its consumer, as Lambda would."""
        function, batch_size = self.consumer(queue_key)
        sqs = self.admin.sqs
        queue = self.outputs.queues[queue_key]
        messages = sqs.receive_message(
            QueueUrl=queue["url"],
            MaxNumberOfMessages=min(10, batch_size),
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return None
        records = [lambda_record(m, queue["arn"], self.outputs.region) for m in messages]
        response, crashed = self.invoke(function, {"Records": records})
        if crashed:
            failed = {r["messageId"] for r in records}
        else:
            failed = {f["itemIdentifier"] for f in (response or {}).get("batchItemFailures", [])}
        if failed:
            back = [r for r in records if r["messageId"] in failed]
            self.clock.advance(self.returns_after(queue_key, back, crashed))
        for record in records:
            if record["messageId"] in failed:
                # The visibility timeout has passed: the message is back.
                sqs.change_message_visibility(
                    QueueUrl=queue["url"],
                    ReceiptHandle=record["receiptHandle"],
                    VisibilityTimeout=0,
                )
            else:
                sqs.delete_message(QueueUrl=queue["url"], ReceiptHandle=record["receiptHandle"])
        return Delivery(len(records), len(failed), crashed)

    def returns_after(self, queue_key: str, back: list[dict[str, Any]], crashed: bool) -> float:
        """Seconds until the first of the failed messages ``back`` is visible again."""
        return self.stack.queue(queue_key).visibility_timeout

    def drain(self, order: tuple[str, ...] = ("s3-events", "ingest"), rounds: int = 60) -> int:
        """Deliver until every source queue is empty; returns the invocations made.

        Each round empties the queues in ``order``; messages that fail come
        back at once and are delivered again in a later round, until moto
        moves them to their DLQ.
        """
        invocations = 0
        for _ in range(rounds):
            busy = False
            for key in order:
                while (delivery := self.deliver(key)) is not None:
                    invocations += 1
                    busy = True
                    if delivery.failed:
                        break  # the others go first; this one comes back next round
            if not busy:
                return invocations
        raise AssertionError(f"queues still busy after {rounds} rounds")

    def api(self):
        """Chalice's test client over the app, served by a fresh process."""
        from chalice.test import Client

        self.current = self.process()
        return Client(self.app, stage_name=self.stage_config.stage)

    def notify_again(self, upload: Upload) -> None:
        """Another S3 notification of the same object (S3 may send one twice)."""
        from tests import events

        record = events.s3_record(upload.ref.bucket, upload.ref.key, upload.ref.etag or "")
        self.admin.sqs.send_message(
            QueueUrl=self.outputs.queues["s3-events"]["url"],
            MessageBody=events.s3_notification_body(record),
        )

    # -- uploads ------------------------------------------------------------------

    def upload(self, file: TestFile, key: str = "incoming/reliability/file.csv") -> Upload:
        """Put a file into the uploads bucket; S3 notifies the s3-events queue."""
        bucket = self.settings.uploads_bucket
        put = self.admin.s3.put_object(Bucket=bucket, Key=key, Body=file.body)
        ref = ObjectRef(bucket=bucket, key=key, version_id=put.get("VersionId"), etag=put["ETag"])
        upload = Upload(ref, file)
        self.uploads.append(upload)
        return upload

    def jobs(self):
        return Services(self.settings, clients=self.admin, clock=self.clock).jobs

    def job(self, upload: Upload) -> dict[str, Any]:
        """The upload's job, found by object: the notification decides whether the
        job id derives from the version id or the ETag, not the test."""
        if upload.ingest_id is None:
            found = [
                job
                for job in self.jobs().list(100)[0]
                if (job["bucket"], job["key"]) == (upload.ref.bucket, upload.ref.key)
            ]
            assert len(found) == 1, f"expected one job for {upload.ref.key}, found {found}"
            upload.ingest_id = found[0]["ingest_id"]
        job = self.jobs().get(upload.ingest_id)
        assert job is not None
        return job

    def readings(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        args: dict[str, Any] = {"TableName": self.settings.readings_table, "ConsistentRead": True}
        while True:
            page = self.admin.dynamodb.scan(**args)
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                return items
            args["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def queue_depths(self) -> dict[str, tuple[int, int]]:
        depths = {}
        for key, queue in self.outputs.queues.items():
            attributes = self.admin.sqs.get_queue_attributes(
                QueueUrl=queue["url"],
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )["Attributes"]
            depths[key] = (
                int(attributes["ApproximateNumberOfMessages"]),
                int(attributes["ApproximateNumberOfMessagesNotVisible"]),
            )
        return depths


Key = tuple[str, str]


def expected_items(world: World) -> dict[Key, dict[str, Any]]:
    """The readings table the uploads must produce, by key (a later upload wins)."""
    items: dict[Key, dict[str, Any]] = {}
    for upload in world.uploads:
        ingest_id = world.job(upload)["ingest_id"]
        for row in upload.file.accepted:
            item = reading_item(Reading.model_validate(row), ingest_id)
            items[(item["location"]["S"], item["reading_id"]["S"])] = item
    return items


def assert_invariant(
    world: World, *, dlqs_empty: bool = True, edits: dict[Key, dict[str, Any]] | None = None
) -> None:
    """Nothing lost, nothing doubled, every job final with consistent counts.

    ``edits`` are readings written through the API after the ingest: they must
    be stored as the API left them.
    """
    for upload in world.uploads:
        job = world.job(upload)
        file = upload.file
        assert job["state"] in DONE_STATES, f"job not final: {job}"
        assert job["state"] == ("COMPLETED_WITH_REJECTS" if file.rejected else "COMPLETED")
        assert (job["rows_seen"], job["rows_accepted"], job["rows_rejected"]) == (
            file.seen,
            len(file.accepted),
            file.rejected,
        ), job
        assert job["rows_seen"] == job["rows_accepted"] + job["rows_rejected"]
        assert job["rows_written"] == job["rows_accepted"], job
        assert job["chunks_written"] == job["chunks_total"], job
    stored = world.readings()
    by_key = {(i["location"]["S"], i["reading_id"]["S"]): i for i in stored}
    assert len(by_key) == len(stored)
    want = {**expected_items(world), **(edits or {})}
    assert sorted(by_key) == sorted(want), "readings missing or extra"
    assert by_key == want, "a stored reading differs from the file"
    depths = world.queue_depths()
    for key, depth in depths.items():
        if key.endswith("-dlq") and not dlqs_empty:
            continue
        assert depth == (0, 0), f"queue {key} is not empty: {depths}"


def build_world(stage: str, injector: FaultInjector, clock: SteppingClock, app: Any) -> World:
    """Provision the stage's queues, tables and bucket on the active moto mock."""
    config = StageConfig.load(stage)
    declared = declare(config)
    # Alarms, the dashboard and the topics (with their subscriptions) play no
    # part in the readings pipeline;
    # moto denies every request under a TLS-only bucket policy (deployed stages').
    stack = replace(
        declared,
        alarms=(),
        dashboards=(),
        topics=(),
        subscriptions=(),
        buckets=tuple(replace(b, tls_only=False) for b in declared.buckets),
    )
    admin = Clients(shared_session())
    outputs = Provisioner(admin).apply(stack)
    if "s3-events" in outputs.queues:
        # Saving the bucket's notification made S3 send an s3:TestEvent, which
        # the handler skips; drop it so each scenario's first message is its own.
        admin.sqs.purge_queue(QueueUrl=outputs.queues["s3-events"]["url"])
    return World(config, stack, outputs, admin, injector, clock, app)
