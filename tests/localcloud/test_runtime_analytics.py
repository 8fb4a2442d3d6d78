"""Analytics on a running local cloud: every event reaches the analytics consumer three
times, through the order-events topic, the analytics queue's subscription and the
local runtime's SQS poller, and each still counts once."""

from __future__ import annotations

import random
import uuid

import pytest

from chalicelib.orders import analytics, markers
from chalicelib.orders.store import IDEMPOTENCY_PK
from chalicelib.services import services as app_services
from localcloud.cloud import LocalCloud
from tests.localcloud.http_api import call
from tests.localcloud.test_orders_e2e import wait_for
from tests.orders.test_analytics import order_event


@pytest.fixture
def cloud():
    with LocalCloud(aws_port=0, api_port=0) as running:
        yield running


class AnalyticsTransactions:
    """Counts the analytics consumer's transactions for the given events, made with the
    app's own client (moto's state is shared: earlier tests' events may still arrive)."""

    EVENT = "before-parameter-build.dynamodb.TransactWriteItems"

    def __init__(self, event_ids: set[str]):
        self.markers = {markers.marker_id(analytics.CONSUMER, e) for e in event_ids}
        self.client = app_services().clients.dynamodb
        self.calls = 0
        self.client.meta.events.register(self.EVENT, self)

    def __call__(self, params, **_):
        puts = [i["Put"]["Item"] for i in params["TransactItems"] if "Put" in i]
        self.calls += any(item.get(IDEMPOTENCY_PK, {}).get("S") in self.markers for item in puts)

    def close(self):
        self.client.meta.events.unregister(self.EVENT, self)


def test_every_event_published_three_times_counts_once(cloud):
    # Local clouds in one process share moto's state: this test counts on a day of its own.
    day = f"2{random.randrange(100, 999)}-0{random.randrange(1, 10)}-1{random.randrange(0, 9)}"
    paid, refunded, rejected = (str(uuid.uuid4()) for _ in range(3))
    events = [
        order_event(None, "PENDING", "25.00", day=day, order_id=paid),
        order_event("PENDING", "CONFIRMED", "25.00", day=day, order_id=paid),
        order_event("CONFIRMED", "SHIPPED", "25.00", day=day, order_id=paid),
        order_event(None, "PENDING", "9.99", day=day, order_id=refunded),
        order_event("PENDING", "CONFIRMED", "9.99", day=day, order_id=refunded),
        order_event("CONFIRMED", "CANCELLED", "9.99", day=day, order_id=refunded),
        order_event(None, "PENDING", "3.00", day=day, order_id=rejected),
        order_event("PENDING", "REJECTED", "3.00", day=day, order_id=rejected),
    ]
    topic = cloud.outputs.topics["order-events"]["arn"]
    transactions = AnalyticsTransactions({e.event_id for e in events})
    for copy in range(3):
        for event in events:
            cloud.clients.sns.publish(
                TopicArn=topic,
                Message=event.body(),
                MessageAttributes=event.attributes(),
                MessageGroupId=event.order_id,
                # A distinct id per copy: AWS's topic would drop a repeated one, and
                # these stand for SQS delivering the same event again.
                MessageDeduplicationId=f"{event.event_id}-{copy}",
            )
    expected = {
        "date": day,
        "orders_created": 3,
        "orders_confirmed": 2,
        "orders_rejected": 1,
        "orders_cancelled": 1,
        "revenue": "25.00",
    }

    def counted():
        status, body = call(cloud.api_port, "GET", f"/analytics/daily/{day}")
        return status == 200 and body == expected

    try:
        # Each copy of the seven counted events (all but the shipping, which writes
        # nothing) reaches the consumer and tries its transaction; one of each applies.
        # (Not waited on queue depths: local clouds in one process share moto's state,
        # and an earlier cloud's messages may still be in flight.)
        wait_for(lambda: transactions.calls >= 7 * 3 and counted())
    finally:
        transactions.close()
    assert transactions.calls == 7 * 3
    assert call(cloud.api_port, "GET", f"/analytics/daily/{day}") == (200, expected)
    stats = cloud.runtime.stats()["update_analytics"]
    assert stats["invocations"] >= 1 and stats["errors"] == 0
