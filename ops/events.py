"""``events failed | replay | republish``: recover order events the stream handler gave up on.

When ``publish_order_events`` fails on a batch of stream records past its
retry bounds, Lambda sends a description of the batch (shard, first and last
sequence number, stream ARN; not the records) to the on-failure queue
``order-events-failed`` and moves on. After the cause is fixed:

* ``events failed`` shows those descriptions without consuming them;
* ``events replay`` re-reads each described range from the stream, runs the
  same code as the handler (:func:`chalicelib.orders.handlers.publish_order_events`)
  on it, and deletes the description only when every record's event went
  out; a description it keeps is visible again as soon as it ends.
  Repeating it is safe: events keep their ids, and consumers deduplicate on
  them;
* ``events republish ORDER_ID`` rebuilds the event of an order's latest
  change from the table (orders record their ``previous_status``) for when
  the stream no longer has the records: DynamoDB keeps them 24 hours.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field
from typing import Any

from rich.console import Console

from chalicelib.dynamo import from_item, to_item
from chalicelib.errors import NotFound
from chalicelib.orders import events as order_events
from chalicelib.orders import handlers
from chalicelib.orders.store import ORDER_PK
from chalicelib.services import Services
from chalicelib.streamrecords import lambda_record
from ops.decode import json_object
from ops.peek import peek
from ops.queues import queue_url, work_through
from ops.target import Target

FAILED_QUEUE_KEY = "order-events-failed"
# Long enough for one described range to be re-read and published; a kept
# description is released when the command ends, not after this.
REPLAY_VISIBILITY_SECONDS = 120


@dataclass
class EventReplayResult:
    replayed: list[dict[str, Any]] = field(default_factory=list)
    # Descriptions kept on the queue, with why (records gone, a publish failure).
    kept: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.kept


def _services(target: Target) -> Services:
    return Services(target.stage_config.settings(), clients=target.clients)


def batch_info(body: str) -> dict[str, Any]:
    """The ``DDBStreamBatchInfo`` of an on-failure record; ValueError if it has none."""
    return record_batch_info(json_object(body))


def record_batch_info(record: dict[str, Any]) -> dict[str, Any]:
    """:func:`batch_info` of a record already read."""
    info = record.get("DDBStreamBatchInfo")
    if not isinstance(info, dict) or not {"shardId", "startSequenceNumber", "streamArn"} <= set(
        info
    ):
        raise ValueError("not a DynamoDB stream on-failure record")
    return info


def described_records(streams: Any, info: dict[str, Any]) -> list[dict[str, Any]]:
    """The records from the first to the last sequence number a description names."""
    iterator = streams.get_shard_iterator(
        StreamArn=info["streamArn"],
        ShardId=info["shardId"],
        ShardIteratorType="AT_SEQUENCE_NUMBER",
        SequenceNumber=info["startSequenceNumber"],
    )["ShardIterator"]
    last = int(info.get("endSequenceNumber") or info["startSequenceNumber"])
    records: list[dict[str, Any]] = []
    while iterator:
        response = streams.get_records(ShardIterator=iterator, Limit=1000)
        for raw in response["Records"]:
            if int(raw["dynamodb"]["SequenceNumber"]) > last:
                return records
            records.append(lambda_record(raw, info["streamArn"]))
        if not response["Records"]:
            break
        iterator = response.get("NextShardIterator")
    return records


def replay(target: Target, max_messages: int) -> EventReplayResult:
    services = _services(target)
    sqs = target.clients.sqs
    streams = target.clients("dynamodbstreams")
    url = queue_url(sqs, target.stack.failure_queue(FAILED_QUEUE_KEY).name)
    result = EventReplayResult()

    def handle(message: dict[str, Any]) -> bool:
        outcome = _replay_one(message, streams, services)
        done = outcome.pop("done")
        (result.replayed if done else result.kept).append(outcome)
        return done

    work_through(sqs, url, max_messages, handle, visibility_timeout=REPLAY_VISIBILITY_SECONDS)
    return result


def _replay_one(message: dict[str, Any], streams: Any, services: Services) -> dict[str, Any]:
    """Publish the events of one description's records; ``done`` says whether all went out."""
    entry = {"message_id": message["MessageId"]}
    try:
        info = batch_info(message["Body"])
        records = described_records(streams, info)
    except (ValueError, KeyError) as error:
        return {**entry, "done": False, "reason": f"unreadable description: {error}"}
    except streams.exceptions.TrimmedDataAccessException:
        return {
            **entry,
            "done": False,
            "reason": "the stream no longer holds these records; use "
            "`events republish ORDER_ID` for the orders they changed",
        }
    if not records:
        return {**entry, "done": False, "reason": "no stream records in the described range"}
    response = handlers.publish_order_events({"Records": records}, None, services)
    if response["batchItemFailures"]:
        first = response["batchItemFailures"][0]["itemIdentifier"]
        return {**entry, "done": False, "reason": f"publishing failed again from {first}"}
    return {**entry, "done": True, "records": len(records)}


def republish(target: Target, order_id: str) -> dict[str, Any]:
    """Publish the event of an order's latest change again; returns the event."""
    services = _services(target)
    item = target.clients.dynamodb.get_item(
        TableName=services.settings.orders_table,
        Key=to_item({ORDER_PK: order_id}),
        ConsistentRead=True,
    ).get("Item")
    if not item:
        raise NotFound(f"no order {order_id}")
    event = order_events.event_of_current_version(from_item(item))
    outcome = order_events.publish(services.clients.sns, services.order_events_topic_arn, [event])
    if outcome.failed_from is not None:
        raise RuntimeError(f"SNS refused the event: {outcome.error}")
    return asdict(event)


# -- command -------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("events", help="recover order events the stream handler gave up")
    commands = parser.add_subparsers(dest="events_command", required=True, metavar="ACTION")
    failed = commands.add_parser("failed", help="show the on-failure queue, without consuming it")
    failed.add_argument("--max", type=int, default=10)
    failed.add_argument("--json", action="store_true")
    failed.set_defaults(run=run_failed)
    again = commands.add_parser("replay", help="re-read failed batches from the stream, publish")
    again.add_argument("--max", type=int, default=100)
    again.add_argument("--json", action="store_true")
    again.set_defaults(run=run_replay)
    one = commands.add_parser("republish", help="publish an order's latest event from the table")
    one.add_argument("order_id")
    one.add_argument("--json", action="store_true")
    one.set_defaults(run=run_republish)


def run_failed(args: argparse.Namespace, target: Target, console: Console) -> int:
    sqs = target.clients.sqs
    url = queue_url(sqs, target.stack.failure_queue(FAILED_QUEUE_KEY).name)
    described = []
    for message in peek(sqs, url, args.max):
        reason = None
        try:
            record = json_object(message.body)
            context = record.get("requestContext")
            reason = context.get("condition") if isinstance(context, dict) else None
            info = record_batch_info(record)
        except ValueError as error:
            info = {"problem": str(error)}
        described.append({"message_id": message.message_id, "condition": reason, **info})
    if args.json:
        console.print_json(data={"queue": FAILED_QUEUE_KEY, "batches": described})
    elif not described:
        console.print(f"{FAILED_QUEUE_KEY} is empty")
    for batch in [] if args.json else described:
        console.print(
            f"{batch['message_id']}: {batch.get('condition')} shard {batch.get('shardId')} "
            f"records {batch.get('startSequenceNumber')}..{batch.get('endSequenceNumber')} "
            f"({batch.get('batchSize')})",
            markup=False,
        )
    return 0


def run_replay(args: argparse.Namespace, target: Target, console: Console) -> int:
    result = replay(target, args.max)
    if args.json:
        console.print_json(data={**asdict(result), "ok": result.ok})
    else:
        console.print(f"replayed {len(result.replayed)} failed batch(es)")
        for kept in result.kept:
            console.print(f"  kept {kept['message_id']}: {kept['reason']}", markup=False)
    return 0 if result.ok else 1


def run_republish(args: argparse.Namespace, target: Target, console: Console) -> int:
    try:
        event = republish(target, args.order_id)
    except NotFound as error:
        console.print(f"[red]error:[/] {error.message}")
        return 1
    if args.json:
        console.print_json(data=event)
    else:
        console.print(
            f"published {event['event_type']} v{event['version']} ({event['event_id']}) "
            f"for order {event['order_id']}",
            markup=False,
        )
    return 0
