"""Domain events: what a change of the orders table means, and publishing it to SNS.

A stream record becomes at most one event:

* INSERT → ``ORDER_CREATED``;
* MODIFY that changes ``status`` → ``ORDER_STATUS_CHANGED``, or
  ``ORDER_CANCELLED`` when the new status is CANCELLED;
* any other MODIFY, and REMOVE → nothing.

Everything in an event comes from the record's images, so reading the same
record again produces the same event; ``event_id`` is derived from the order
id and the version the change produced, and consumers deduplicate on it.

Events go to the FIFO topic ``order-events.fifo`` with ``PublishBatch``, ten
per call, grouped by order (``MessageGroupId``) and deduplicated by
``event_id`` (``MessageDeduplicationId``). A call never carries two events of
one order, and nothing is published after a failure, so an order's events
reach the topic in the order its versions were written; the records from the
first failure on are reported back by sequence number, and Lambda retries
them (already published ones are deduplicated by the topic and the consumers).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from chalicelib import jsontext
from chalicelib.orders.states import EventType, Status, event_type
from chalicelib.orders.store import order_from_values

PUBLISH_BATCH_LIMIT = 10
# uuid5 namespace for event ids: fixed forever, or ids would change meaning.
EVENT_NAMESPACE = uuid.UUID("6f1d3a52-52a4-4c5e-9a65-0f1e3b8d2c41")
_deserializer = TypeDeserializer()


class EventFormatError(ValueError):
    """A stream record that is not an order this code understands (a poison record)."""


@dataclass(frozen=True)
class OrderEvent:
    event_id: str
    event_type: str
    order_id: str
    customer_id: str
    customer_email: str
    old_status: str | None
    new_status: str
    items: list[dict[str, Any]]
    total: str
    version: int
    occurred_at: str
    reason: str | None

    def body(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True)

    def attributes(self) -> dict[str, dict[str, str]]:
        """What subscription filter policies match on."""
        return {
            "event_type": {"DataType": "String", "StringValue": self.event_type},
            "new_status": {"DataType": "String", "StringValue": self.new_status},
            "total": {"DataType": "Number", "StringValue": self.total},
        }


def parse_event(body: str) -> OrderEvent:
    """An event as a consumer's queue delivers it (raw delivery: the body is the event).

    Raises :class:`EventFormatError` for anything that is not exactly an event.
    """
    try:
        data = jsontext.loads(body)
        event = OrderEvent(**data)
    except (TypeError, ValueError) as error:
        raise EventFormatError(f"message is not an order event: {error}") from None
    if event.event_type not in EventType.__members__ or event.new_status not in Status.__members__:
        raise EventFormatError(f"message is not an order event: {event.event_type}")
    return event


def event_id(order_id: str, version: int) -> str:
    return str(uuid.uuid5(EVENT_NAMESPACE, f"{order_id}#{version}"))


def _image(record: dict[str, Any], name: str) -> dict[str, Any] | None:
    image = record.get("dynamodb", {}).get(name)
    if image is None:
        return None
    return {key: _deserializer.deserialize(value) for key, value in image.items()}


def event_from_record(record: dict[str, Any]) -> OrderEvent | None:
    """The domain event a Lambda DynamoDB stream record means, or None.

    Raises :class:`EventFormatError` for a record whose images are not orders.
    """
    name = record.get("eventName")
    if name not in ("INSERT", "MODIFY"):
        return None
    try:
        new = order_from_values(_image(record, "NewImage") or {})
        old_image = _image(record, "OldImage") if name == "MODIFY" else None
        old_status = Status(old_image["status"]) if old_image is not None else None
        new_status = Status(new["status"])
    except (KeyError, TypeError, ValueError) as error:
        raise EventFormatError(f"stream record is not an order: {error!r}") from None
    if name == "MODIFY" and old_status is new_status:
        return None
    return order_event(new, old_status, new_status)


def event_of_current_version(values: dict[str, Any]) -> OrderEvent:
    """The event an order item's latest change produced, from the item alone.

    For rebuilding an event that the stream no longer holds (it keeps records
    24 hours): the item records its ``previous_status``.
    """
    order = order_from_values(values)
    previous = values.get("previous_status") if order["version"] > 1 else None
    return order_event(order, Status(previous) if previous else None, Status(order["status"]))


def order_event(new: dict[str, Any], old_status: Status | None, new_status: Status) -> OrderEvent:
    kind: EventType = event_type(old_status, new_status)
    return OrderEvent(
        event_id=event_id(new["order_id"], new["version"]),
        event_type=str(kind),
        order_id=new["order_id"],
        customer_id=new["customer_id"],
        customer_email=new["customer_email"],
        old_status=str(old_status) if old_status is not None else None,
        new_status=str(new_status),
        items=new["items"],
        total=new["total"],
        version=new["version"],
        occurred_at=new["updated_at"],
        reason=new["reason"],
    )


def _batches(events: list[OrderEvent]) -> list[list[OrderEvent]]:
    """Consecutive runs of at most ten events with no order twice in a run."""
    batches: list[list[OrderEvent]] = []
    current: list[OrderEvent] = []
    orders: set[str] = set()
    for event in events:
        if len(current) == PUBLISH_BATCH_LIMIT or event.order_id in orders:
            batches.append(current)
            current, orders = [], set()
        current.append(event)
        orders.add(event.order_id)
    if current:
        batches.append(current)
    return batches


@dataclass
class PublishResult:
    published: int
    # Index (into the events given) of the first event that was not published.
    failed_from: int | None
    error: str | None = None


def publish(sns: Any, topic_arn: str, events: list[OrderEvent]) -> PublishResult:
    """Publish ``events`` in order; stop at the first one SNS does not accept."""
    published = 0
    for batch in _batches(events):
        entries = [
            {
                "Id": str(i),
                "Message": event.body(),
                "MessageGroupId": event.order_id,
                "MessageDeduplicationId": event.event_id,
                "MessageAttributes": event.attributes(),
            }
            for i, event in enumerate(batch)
        ]
        try:
            response = sns.publish_batch(TopicArn=topic_arn, PublishBatchRequestEntries=entries)
        except ClientError as error:
            return PublishResult(published, published, f"PublishBatch failed: {error}")
        failed = sorted(int(f["Id"]) for f in response.get("Failed", []))
        if failed:
            first = failed[0]
            reason = next(f for f in response["Failed"] if int(f["Id"]) == first)
            return PublishResult(
                published + first,
                published + first,
                f"{reason.get('Code')}: {reason.get('Message')}",
            )
        published += len(batch)
    return PublishResult(published, None)
