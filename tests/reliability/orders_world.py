"""The orders half of a reliability world: the topic, its consumers, the stream, the API.

:class:`OrdersWorld` is a :class:`~tests.reliability.world.World` provisioned
with the order-events topic and its subscriptions (so SNS fans each published
event out to the inventory, notifications and analytics queues, as deployed),
the SES sender, and a *tap*: one more queue on the topic, with no filter, that
keeps every event published, for the invariant's reading.

It plays Lambda's part for each of the orders' triggers:

* the SQS mappings (:meth:`deliver`), as the readings world does, except that
  a failed message comes back when the function's own backoff
  (``ChangeMessageVisibilityBatch``, :mod:`chalicelib.batch`) says, not after
  the full visibility timeout: a delivery that fails because a claim is held
  must meet that claim's lease as it would on AWS. A crashed invocation sets
  no backoff, so its messages come back after the visibility timeout. The
  jitter is always the shortest one allowed (:func:`orders_world`), so
  retries come as early as they ever would;
* the stream mapping (:meth:`publish`): the records since the checkpoint,
  those the mapping's filter passes; a crash retries the same records, a
  partial failure retries from the lowest one reported;
* the API (:meth:`request`): one request, served by a fresh process.

Every invocation runs in a fresh process behind the world's fault injector.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qs

from chalicelib.aws import Clients
from chalicelib.services import Services
from infra.provision import Provisioner
from infra.stack import declare
from infra.stageconfig import StageConfig
from localcloud import mototransactions
from localcloud.motopatch import applied
from localcloud.runtime.streams import lambda_record as lambda_stream_record
from tests.reliability.faults import Call, Execute, Rule, SimulatedCrash
from tests.reliability.world import Delivery, SteppingClock, World, shared_session

STREAM_FUNCTION = "publish_order_events"
STREAM_BATCH = 100  # the mapping's batch size (app.py)
# The mapping's filter criteria (infra/stack/orders.py): REMOVE never reaches the function.
STREAM_EVENTS = ("INSERT", "MODIFY")
# The consumers, in the order a drain first visits them.
ORDER_QUEUES = ("order-intake", "inventory", "notifications", "analytics")
# The queues subscribed to the order-events topic.
FANOUT = ("inventory", "notifications", "analytics")
# The consumers that write orders, so that the stream has new records after them.
WRITERS = ("order-intake", "inventory")
READINGS = ("readings", "ingests", "ingest", "s3-events")
# Lambda's MaximumRetryAttempts for the stream (infra/stack/orders.py): past it a
# batch is discarded, so a scenario that needs more retries has lost events.
STREAM_RETRIES = 5


class Visibilities(Rule):
    """Notes the visibility each ChangeMessageVisibility(Batch) sets, by receipt handle;
    never answers a call itself."""

    def __init__(self) -> None:
        super().__init__()
        self.set: dict[str, int] = {}

    def apply(self, call: Call, execute: Execute) -> None:
        if call.name == "sqs:ChangeMessageVisibilityBatch":
            for entry in call.json_body()["Entries"]:
                self.set[entry["ReceiptHandle"]] = int(entry["VisibilityTimeout"])
        elif call.name == "sqs:ChangeMessageVisibility":
            body = call.json_body()
            self.set[body["ReceiptHandle"]] = int(body["VisibilityTimeout"])
        return None


class Mails(Rule):
    """Notes each SendEmail's (recipient, subject), by call position; never answers itself."""

    def __init__(self) -> None:
        super().__init__()
        self.at: dict[int, tuple[str, str]] = {}

    def apply(self, call: Call, execute: Execute) -> None:
        if call.name == "ses:SendEmail":
            body = call.request.body
            form = parse_qs(body.decode() if isinstance(body, bytes) else body)
            mail = (form["Destination.ToAddresses.member.1"][0], form["Message.Subject.Data"][0])
            self.at[call.position] = mail
        return None


@dataclass
class Response:
    """What the API answered, or ``None`` fields when the process died."""

    status: int | None
    body: Any
    headers: dict[str, str]
    crashed: bool


@dataclass
class OrdersWorld(World):
    tap_url: str = ""
    visibilities: Visibilities = field(default_factory=Visibilities)
    mails: Mails = field(default_factory=Mails)
    checkpoint: str | None = None
    stream: tuple[str, str] | None = None  # (stream ARN, shard id)
    stream_attempts: int = 0

    warm: dict[str, Services] = field(default_factory=dict)

    def services(self) -> Services:
        """Fault-free services for setting scenarios up and reading what they left."""
        return Services(self.settings, clients=self.admin, clock=self.clock)

    def invoke(self, function: str, event: dict[str, Any], context=None) -> tuple[Any, bool]:
        """Run one invocation: in a fresh process when a crash is armed (so its calls
        are a cold start's), else in the function's warm one, as Lambda reuses a
        container; a process that crashed is never used again."""
        armed = self.injector.armed
        process = None if armed else self.warm.get(function)
        if process is None:
            process = self.process()
        self.current = process
        response, crashed = super().invoke(function, event, context, process=process)
        if crashed:
            self.warm.pop(function, None)
        elif not armed:
            self.warm[function] = process
        return response, crashed

    # -- the SQS mappings -----------------------------------------------------------

    def consumer(self, queue_key: str) -> tuple[str, int]:
        for config in self.app.event_sources:
            queue = (getattr(config, "queue", None) or "").removesuffix(".fifo")
            if queue.endswith(f"-{queue_key}"):
                return config.name, config.batch_size
        raise KeyError(f"no function consumes {queue_key}")

    def returns_after(self, queue_key: str, back: list[dict[str, Any]], crashed: bool) -> float:
        """A failed message comes back after the visibility the function gave it (its
        backoff), or the queue's timeout when the invocation crashed or set none."""
        timeout = super().returns_after(queue_key, back, crashed)
        # Receipt handles are new on every receive: earlier deliveries' entries never match.
        set_by_function = dict(self.visibilities.set)
        self.visibilities.set.clear()
        if crashed:
            return timeout
        return min(set_by_function.get(r["receiptHandle"], timeout) for r in back)

    def send_intake(self, body: dict[str, Any], group: str) -> None:
        """A partner's message on the intake FIFO queue."""
        self.admin.sqs.send_message(
            QueueUrl=self.outputs.queues["order-intake"]["url"],
            MessageBody=json.dumps(body),
            MessageGroupId=group,
            MessageDeduplicationId=uuid.uuid4().hex,
        )

    # -- the stream mapping ---------------------------------------------------------

    def publish(self) -> Delivery | None:
        """Invoke the publisher with the stream's records since the checkpoint."""
        records = [r for r in self._stream_records() if r["eventName"] in STREAM_EVENTS]
        if not records:
            return None
        response, crashed = self.invoke(STREAM_FUNCTION, {"Records": records})
        failures = [] if crashed else (response or {}).get("batchItemFailures", [])
        sequences = [r["dynamodb"]["SequenceNumber"] for r in records]
        if crashed:
            retry_from = 0
        elif failures:
            retry_from = sequences.index(min((f["itemIdentifier"] for f in failures), key=int))
        else:
            retry_from = len(records)
        if retry_from:
            self.checkpoint = sequences[retry_from - 1]
            self.stream_attempts = 0
        if retry_from < len(records):
            self.stream_attempts += 1
            assert self.stream_attempts <= STREAM_RETRIES, "the mapping would discard the batch"
        return Delivery(len(records), len(records) - retry_from, crashed)

    def _stream_records(self) -> list[dict[str, Any]]:
        """The orders stream's records after the checkpoint, as Lambda delivers them.

        moto's stream has one shard, never split; a new iterator each time
        (AFTER_SEQUENCE_NUMBER), as a restarted mapping resumes.
        """
        streams = self.admin("dynamodbstreams")
        if self.stream is None:
            table = self.admin.dynamodb.describe_table(TableName=self.settings.orders_table)
            arn = table["Table"]["LatestStreamArn"]
            [shard] = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
            self.stream = (arn, shard["ShardId"])
        arn, shard_id = self.stream
        where: dict[str, Any] = {"ShardIteratorType": "TRIM_HORIZON"}
        if self.checkpoint is not None:
            where = {
                "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                "SequenceNumber": self.checkpoint,
            }
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard_id, **where)
        got = streams.get_records(ShardIterator=iterator["ShardIterator"], Limit=STREAM_BATCH)
        return [lambda_stream_record(r, arn) for r in got["Records"]]

    # -- everything -----------------------------------------------------------------

    def drain(self, rounds: int = 60) -> int:
        """Publish and deliver until the stream and every queue are quiet; returns the
        invocations made.

        A queue is visited again only when something may have reached it: the
        publisher fans out to the three consumers, and the intake and the
        inventory write orders (new stream records). A delivery that failed
        comes back in a later round, after the others.
        """
        invocations, pending, written = 0, list(ORDER_QUEUES), True
        for _ in range(rounds):
            while written and (delivery := self.publish()) is not None:
                invocations += 1
                # Whatever it published (a crash may come after a PublishBatch).
                pending += [q for q in FANOUT if q not in pending]
            if not pending:
                return invocations
            key = pending.pop(0)
            written = False
            while (delivery := self.deliver(key)) is not None:
                invocations += 1
                written = key in WRITERS
                if delivery.failed:
                    pending.append(key)  # back after the others
                    break
        raise AssertionError(f"orders still moving after {rounds} rounds")

    # -- the API --------------------------------------------------------------------

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Response:
        """One API request, served by a fresh process (which may die)."""
        client = self.api()
        try:
            answer = getattr(client.http, method.lower())(
                path,
                body=json.dumps(body).encode() if body is not None else b"",
                headers={"Content-Type": "application/json", **(headers or {})},
            )
        except SimulatedCrash:
            answer = None
        crashed = self.injector.crashed
        self.injector.revive()
        if answer is None:
            return Response(None, None, {}, crashed)
        return Response(
            answer.status_code,
            json.loads(answer.body) if answer.body else None,
            dict(answer.headers),
            crashed,
        )

    # -- the tap --------------------------------------------------------------------

    def published(self) -> list[dict[str, Any]]:
        """Every event the topic carried since the last call (copies included)."""
        sqs, found = self.admin.sqs, []
        while got := sqs.receive_message(QueueUrl=self.tap_url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            found += [json.loads(message["Body"]) for message in got]
            sqs.delete_message_batch(
                QueueUrl=self.tap_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)
                ],
            )
        return found


def build_orders_world(stage: str, injector, clock: SteppingClock, app: Any) -> OrdersWorld:
    """Provision the stage with its topics, subscriptions and SES sender on the active mock."""
    config = StageConfig.load(stage)
    declared = declare(config)
    # Alarms, dashboards and the readings' resources play no part.
    stack = replace(
        declared,
        alarms=(),
        dashboards=(),
        buckets=(),
        tables=tuple(t for t in declared.tables if t.key not in READINGS),
        queues=tuple(q for q in declared.queues if q.key not in READINGS),
        topics=tuple(t for t in declared.topics if t.key == "order-events"),
    )
    admin = Clients(shared_session())
    outputs = Provisioner(admin).apply(stack)
    world = OrdersWorld(config, stack, outputs, admin, injector, clock, app)
    injector.rules[:0] = [world.visibilities, world.mails]
    world.tap_url = _tap(admin, outputs.topics["order-events"]["arn"])
    return world


def _tap(admin: Clients, topic_arn: str) -> str:
    url = admin.sqs.create_queue(QueueName="order-events-tap")["QueueUrl"]
    arn = admin.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    admin.sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=arn["Attributes"]["QueueArn"],
        Attributes={"RawMessageDelivery": "true"},
    )
    return url


@contextmanager
def orders_world(worlds, *rules: Rule) -> Iterator[OrdersWorld]:
    """A new orders world; backoff jitter always takes its shortest delay."""
    worlds.clock.uniform = lambda low, high: low
    # DynamoDB's transactions, not moto's: a cancelled one changes nothing, instead
    # of restoring deep copies of every table it touched (streams included).
    with (
        applied(mototransactions.TRANSACTIONS),
        worlds.new(*rules, build=build_orders_world) as world,
    ):
        assert isinstance(world, OrdersWorld)
        yield world
