"""The analytics consumer: each event counted once on its UTC day, revenue exact, and the
``GET /analytics/daily/{date}`` route. (Redelivery through the local runtime:
``tests/localcloud/test_runtime_analytics.py``.)"""

from __future__ import annotations

import io
import json
import uuid
from datetime import date
from decimal import Decimal

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from chalicelib import rest
from chalicelib.dynamo import from_item
from chalicelib.errors import BadRequest
from chalicelib.orders import analytics, handlers, service
from chalicelib.orders.events import OrderEvent
from chalicelib.orders.states import Actor, Status, event_type
from infra.resources import MAX_RECEIVE_COUNT
from ops.__main__ import main as ops_main
from tests.events import sqs_event
from tests.orders.flow import OrderFlow
from tests.orders.flow import deliver_as_lambda as flow_delivery
from tests.orders.helpers import place, seed_products

QUEUE = "eventflow-local-analytics"
ZEROS = {
    "orders_created": 0,
    "orders_confirmed": 0,
    "orders_rejected": 0,
    "orders_cancelled": 0,
    "revenue": "0.00",
}


def order_event(
    old: str | None,
    new: str,
    total: str = "25.00",
    day: str = "2031-05-04",
    time: str = "12:00:00.000000",
    order_id: str | None = None,
) -> OrderEvent:
    """An event as the stream handler publishes it, on ``day`` (UTC)."""
    return OrderEvent(
        event_id=str(uuid.uuid4()),
        event_type=str(event_type(Status(old) if old else None, Status(new))),
        order_id=order_id or str(uuid.uuid4()),
        customer_id="cust-1",
        customer_email="cust-1@example.com",
        old_status=old,
        new_status=new,
        items=[{"product_id": "widget", "quantity": 2, "unit_price": "12.50"}],
        total=total,
        version=1,
        occurred_at=f"{day}T{time}Z",
        reason=None,
    )


def deliver(services, *events: OrderEvent | str) -> dict:
    """One invocation of the handler with these messages (bodies or events)."""
    bodies = [e if isinstance(e, str) else e.body() for e in events]
    return handlers.update_analytics(sqs_event(*bodies, queue=QUEUE), None, services)


def day_of(services, day: str) -> dict:
    table = services.settings.analytics_table
    return analytics.daily(services.clients.dynamodb, table, date.fromisoformat(day))


def all_days(services) -> dict[str, dict]:
    items = services.clients.dynamodb.scan(TableName=services.settings.analytics_table)["Items"]
    return {from_item(i)["date"]: from_item(i) for i in items}


def emf_sums(text: str) -> dict[str, float]:
    """Sum of each metric in the EMF lines printed (Powertools prints them to stdout)."""
    sums: dict[str, float] = {}
    for line in text.splitlines():
        if '"_aws"' not in line:
            continue
        doc = json.loads(line)
        for directive in doc["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                values = doc[metric["Name"]]
                values = values if isinstance(values, list) else [values]
                sums[metric["Name"]] = sums.get(metric["Name"], 0) + sum(values)
    return sums


class TransactCalls:
    """Counts the TransactWriteItems calls made while it is open."""

    def __init__(self, services):
        self.client, self.calls = services.clients.dynamodb, 0
        self.client.meta.events.register("before-call.dynamodb.TransactWriteItems", self)

    def __call__(self, **_):
        self.calls += 1

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.client.meta.events.unregister("before-call.dynamodb.TransactWriteItems", self)


# -- what each event counts ----------------------------------------------------------


def test_revenue_is_held_by_confirmed_orders_and_what_only_they_reach():
    assert {Status.CONFIRMED, Status.SHIPPED, Status.DELIVERED} == analytics.EARNING


@pytest.mark.parametrize(
    ("old", "new", "counter", "revenue"),
    [
        (None, "PENDING", "orders_created", "0"),
        ("PENDING", "CONFIRMED", "orders_confirmed", "25.00"),
        ("PENDING", "REJECTED", "orders_rejected", "0"),
        ("PENDING", "CANCELLED", "orders_cancelled", "0"),
        ("CONFIRMED", "CANCELLED", "orders_cancelled", "-25.00"),
    ],
)
def test_each_event_type_advances_one_counter_and_revenue_as_defined(old, new, counter, revenue):
    change = analytics.change_for(order_event(old, new))
    assert (change.day, change.counter, change.revenue) == ("2031-05-04", counter, Decimal(revenue))


@pytest.mark.parametrize(("old", "new"), [("CONFIRMED", "SHIPPED"), ("SHIPPED", "DELIVERED")])
def test_shipping_and_delivery_count_nothing(old, new):
    assert analytics.change_for(order_event(old, new)) is None


@pytest.mark.parametrize(
    ("occurred_at", "day"),
    [
        ("2031-05-04T23:59:59.999999Z", "2031-05-04"),
        ("2031-05-05T00:00:00.000000Z", "2031-05-05"),
        # Another offset still books the UTC day.
        ("2031-05-04T22:30:00-02:00", "2031-05-05"),
    ],
)
def test_the_day_is_the_utc_calendar_day_of_the_change(occurred_at, day):
    assert analytics.event_day(occurred_at) == day


# -- counting through the handler ---------------------------------------------------------


def test_events_are_counted_on_their_day_with_exact_revenue(services):
    confirmed = order_event("PENDING", "CONFIRMED", total="12.10")
    response = deliver(
        services,
        order_event(None, "PENDING"),
        confirmed,
        order_event("PENDING", "CONFIRMED", total="0.20"),
        order_event("PENDING", "REJECTED"),
        order_event("PENDING", "CONFIRMED", total="3.99", day="2031-05-05"),
    )
    assert response == {"batchItemFailures": []}
    assert day_of(services, "2031-05-04") == {
        "date": "2031-05-04",
        **ZEROS,
        "orders_created": 1,
        "orders_confirmed": 2,
        "orders_rejected": 1,
        # 12.10 + 0.20: exact, where floats would give 12.299999...
        "revenue": "12.30",
    }
    assert day_of(services, "2031-05-05")["revenue"] == "3.99"


def test_a_cancellation_after_confirmation_takes_the_revenue_back_one_before_does_not(services):
    deliver(
        services,
        order_event("PENDING", "CONFIRMED", total="40.00"),
        order_event("PENDING", "CONFIRMED", total="10.00"),
        order_event("CONFIRMED", "CANCELLED", total="10.00"),
        order_event("PENDING", "CANCELLED", total="99.00"),  # never confirmed: held no revenue
    )
    today = day_of(services, "2031-05-04")
    assert (today["orders_confirmed"], today["orders_cancelled"], today["revenue"]) == (
        2,
        2,
        "40.00",
    )


def test_a_cancellation_books_its_own_day_even_when_that_leaves_it_negative(services):
    order_id = str(uuid.uuid4())
    deliver(
        services,
        order_event("PENDING", "CONFIRMED", "25.00", day="2031-05-04", order_id=order_id),
        order_event("CONFIRMED", "CANCELLED", "25.00", day="2031-05-05", order_id=order_id),
    )
    assert day_of(services, "2031-05-04")["revenue"] == "25.00"
    assert day_of(services, "2031-05-05")["revenue"] == "-25.00"


def test_shipped_and_delivered_make_no_write_at_all(services):
    with TransactCalls(services) as calls:
        response = deliver(
            services, order_event("CONFIRMED", "SHIPPED"), order_event("SHIPPED", "DELIVERED")
        )
    assert response == {"batchItemFailures": []}
    assert calls.calls == 0
    assert all_days(services) == {}


def test_each_event_delivered_three_times_counts_and_measures_once(services, capsys):
    events = [
        order_event(None, "PENDING"),
        order_event("PENDING", "CONFIRMED", total="25.00"),
        order_event("PENDING", "REJECTED"),
        order_event("CONFIRMED", "CANCELLED", total="7.50"),
        order_event("CONFIRMED", "SHIPPED"),
    ]
    capsys.readouterr()
    with TransactCalls(services) as calls:
        for _ in range(3):
            assert deliver(services, *events) == {"batchItemFailures": []}
    # One transaction per counted event and delivery; only the first of each applied.
    assert calls.calls == 4 * 3
    assert day_of(services, "2031-05-04") == {
        "date": "2031-05-04",
        "orders_created": 1,
        "orders_confirmed": 1,
        "orders_rejected": 1,
        "orders_cancelled": 1,
        "revenue": "17.50",
    }
    metrics = emf_sums(capsys.readouterr().out)
    assert {name: metrics.get(name) for name in analytics.METRICS} == {
        "OrdersCreated": 1,
        "OrdersConfirmed": 1,
        "OrdersRejected": 1,
        "OrdersCancelled": 1,
        "Revenue": 17.5,
    }


def test_calls_per_order_life_one_transaction_per_counted_event_and_nothing_else(services, calls):
    delivered = [
        order_event(None, "PENDING"),
        order_event("PENDING", "CONFIRMED"),
        order_event("CONFIRMED", "SHIPPED"),
        order_event("SHIPPED", "DELIVERED"),
    ]
    deliver(services, *delivered)
    assert calls == {"dynamodb TransactWriteItems": 2}
    calls.clear()
    refunded = [
        order_event(None, "PENDING"),
        order_event("PENDING", "CONFIRMED"),
        order_event("CONFIRMED", "CANCELLED"),
    ]
    deliver(services, *refunded)
    assert calls == {"dynamodb TransactWriteItems": 3}
    calls.clear()
    deliver(services, *refunded)  # redelivered: each transaction cancelled by its marker
    assert calls == {"dynamodb TransactWriteItems": 3}


def _conflict(operation_name="TransactWriteItems", **_):
    raise ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
            "CancellationReasons": [{"Code": "None"}, {"Code": "TransactionConflict"}],
        },
        operation_name,
    )


class Conflicts:
    """The first ``times`` TransactWriteItems are cancelled by a conflict on the day's item."""

    def __init__(self, services, times: int):
        self.client, self.left = services.clients.dynamodb, times
        self.client.meta.events.register("before-call.dynamodb.TransactWriteItems", self)

    def __call__(self, **kwargs):
        if self.left:
            self.left -= 1
            _conflict()

    def close(self):
        self.client.meta.events.unregister("before-call.dynamodb.TransactWriteItems", self)


def test_a_conflict_on_a_busy_day_is_retried_with_backoff_and_counted_once(services, clock):
    conflicts = Conflicts(services, analytics.MAX_ATTEMPTS - 1)
    try:
        response = deliver(services, order_event("PENDING", "CONFIRMED", total="5.00"))
    finally:
        conflicts.close()
    assert response == {"batchItemFailures": []}
    assert len(clock.sleeps) == analytics.MAX_ATTEMPTS - 1
    assert day_of(services, "2031-05-04")["revenue"] == "5.00"


def test_conflicts_past_the_attempts_fail_the_message_and_count_nothing(services):
    conflicts = Conflicts(services, analytics.MAX_ATTEMPTS)
    event = order_event("PENDING", "CONFIRMED", total="5.00")
    try:
        response = deliver(services, event)
    finally:
        conflicts.close()
    assert len(response["batchItemFailures"]) == 1
    assert all_days(services) == {}
    # SQS delivers it again later, and then it counts.
    assert deliver(services, event) == {"batchItemFailures": []}
    assert day_of(services, "2031-05-04")["orders_confirmed"] == 1


UNCOUNTABLE = (
    "not an event",
    json.dumps({"event_id": "x"}),
    order_event("PENDING", "CONFIRMED").body().replace("2031-05-04T", "someday "),
    order_event("PENDING", "CONFIRMED", total="lots").body(),
)


def test_bodies_that_cannot_be_counted_fail_alone_and_write_nothing(services):
    good = order_event(None, "PENDING")
    event = sqs_event(*UNCOUNTABLE, good.body(), queue=QUEUE)
    response = handlers.update_analytics(event, None, services)
    bad_ids = [r["messageId"] for r in event["Records"][: len(UNCOUNTABLE)]]
    assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == bad_ids
    assert day_of(services, "2031-05-04") == {"date": "2031-05-04", **ZEROS, "orders_created": 1}


# -- from orders to counters, through the topic --------------------------------------------


def move(services, order, status):
    return service.change_status(order["order_id"], Status(status), Actor.CLIENT, services)


def test_orders_reach_the_analytics_queue_through_the_fifo_topic_and_are_counted(services, outputs):
    """The FIFO order-events topic delivers to the standard analytics queue (raw, all
    events), alongside the inventory's FIFO queue."""
    seed_products(services)  # widget: 100 at 12.50, gadget: 10 at 3.99
    flow = OrderFlow(services, outputs)
    kept = place(services, widget=2)  # 25.00, confirmed
    place(services, "cust-2", gadget=11)  # rejected for stock
    refunded = place(services, "cust-3", widget=1)  # 12.50, confirmed then cancelled
    shipped = place(services, "cust-4", gadget=1)  # 3.99, confirmed then shipped
    flow.settle()
    move(services, refunded, "CANCELLED")
    move(services, shipped, "SHIPPED")
    flow.settle()
    flow.deliver("analytics", handlers.update_analytics)

    days = list(all_days(services).values())
    totals = {c: sum(int(d.get(c, 0)) for d in days) for c in analytics.COUNTERS}
    assert totals == {
        "orders_created": 4,
        "orders_confirmed": 3,
        "orders_rejected": 1,
        "orders_cancelled": 1,
    }
    assert sum(d.get("revenue", 0) for d in days) == Decimal("28.99")
    assert services.orders.get(kept["order_id"])["status"] == "CONFIRMED"


# -- any sequence, any duplicates -------------------------------------------------------

DAYS = ("2031-06-01", "2031-06-02", "2031-06-03")
# Every path an order can take through the state machine, as the statuses it visits.
PATHS = (
    ("PENDING",),
    ("PENDING", "REJECTED"),
    ("PENDING", "CANCELLED"),
    ("PENDING", "CONFIRMED"),
    ("PENDING", "CONFIRMED", "CANCELLED"),
    ("PENDING", "CONFIRMED", "SHIPPED"),
    ("PENDING", "CONFIRMED", "SHIPPED", "DELIVERED"),
)
# The counter each move advances, written out independently of the code under test.
COUNTED = {
    (None, "PENDING"): "orders_created",
    ("PENDING", "CONFIRMED"): "orders_confirmed",
    ("PENDING", "REJECTED"): "orders_rejected",
    ("PENDING", "CANCELLED"): "orders_cancelled",
    ("CONFIRMED", "CANCELLED"): "orders_cancelled",
}
orders_strategy = st.lists(
    st.tuples(
        st.sampled_from(PATHS),
        st.decimals(min_value="0.01", max_value="9999.99", places=2),
        st.lists(st.sampled_from(range(len(DAYS))), min_size=4, max_size=4),
    ),
    min_size=1,
    max_size=8,
)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(orders=orders_strategy, data=st.data())
def test_any_events_redelivered_any_number_of_times_in_any_order_count_each_once(
    services, orders, data
):
    # Examples share the moto table: each starts from no counters.
    table = services.settings.analytics_table
    for day in DAYS:
        services.clients.dynamodb.delete_item(TableName=table, Key={"date": {"S": day}})
    events, expected_revenue = [], Decimal(0)
    expected = {day: dict.fromkeys(analytics.COUNTERS, 0) for day in DAYS}
    for path, total, day_picks in orders:
        order_id = str(uuid.uuid4())
        days = sorted(DAYS[i] for i in day_picks)  # an order's life never goes back in time
        previous = None
        for status, day in zip(path, days, strict=False):
            events.append(order_event(previous, status, str(total), day=day, order_id=order_id))
            counter = COUNTED.get((previous, status))
            if counter:
                expected[day][counter] += 1
            previous = status
        if "CONFIRMED" in path and "CANCELLED" not in path:
            expected_revenue += total
    copies = data.draw(st.lists(st.integers(1, 3), min_size=len(events), max_size=len(events)))
    deliveries = [e for e, n in zip(events, copies, strict=True) for _ in range(n)]
    deliveries = data.draw(st.permutations(deliveries))
    for start in range(0, len(deliveries), 10):
        assert deliver(services, *deliveries[start : start + 10]) == {"batchItemFailures": []}

    counted = all_days(services)
    assert {
        day: {c: int(counted.get(day, {}).get(c, 0)) for c in analytics.COUNTERS} for day in DAYS
    } == expected
    assert sum(counted.get(day, {}).get("revenue", 0) for day in DAYS) == expected_revenue


# -- the DLQ and the operator's redrive ------------------------------------------------


def deliver_as_lambda(services, outputs) -> list[dict]:
    return flow_delivery(services, outputs, "analytics", handlers.update_analytics)


def dlq_bodies(services, outputs) -> list[str]:
    messages = services.clients.sqs.receive_message(
        QueueUrl=outputs.queues["analytics-dlq"]["url"], MaxNumberOfMessages=10, VisibilityTimeout=0
    ).get("Messages", [])
    return [m["Body"] for m in messages]


def test_a_message_that_is_not_an_event_reaches_the_dlq_after_max_receives(services, outputs):
    services.clients.sqs.send_message(
        QueueUrl=outputs.queues["analytics"]["url"], MessageBody="not an event"
    )
    responses = deliver_as_lambda(services, outputs)
    assert len(responses) == MAX_RECEIVE_COUNT
    assert all(len(r["batchItemFailures"]) == 1 for r in responses)
    assert dlq_bodies(services, outputs) == ["not an event"]
    assert all_days(services) == {}


class Denied:
    """Every TransactWriteItems is denied: the function's role lacks a grant (a bug)."""

    def __init__(self, services):
        self.client = services.clients.dynamodb
        self.client.meta.events.register("before-call.dynamodb.TransactWriteItems", self)

    def __call__(self, **_):
        raise ClientError(
            {"Error": {"Code": "AccessDeniedException", "Message": "not authorized"}},
            "TransactWriteItems",
        )

    def close(self):
        self.client.meta.events.unregister("before-call.dynamodb.TransactWriteItems", self)


def test_an_event_dead_lettered_by_a_bug_is_counted_once_after_the_fix_and_redrive(
    services, outputs, monkeypatch
):
    monkeypatch.setattr("ops.queues.WAIT_SECONDS", 0)  # moto needs no long poll to prove empty
    sqs, queue = services.clients.sqs, outputs.queues["analytics"]["url"]
    event = order_event("PENDING", "CONFIRMED", total="19.99")
    sqs.send_message(QueueUrl=queue, MessageBody=event.body())
    denied = Denied(services)
    try:
        deliver_as_lambda(services, outputs)
    finally:
        denied.close()  # the fix is deployed
    assert dlq_bodies(services, outputs) == [event.body()]
    assert all_days(services) == {}

    out = io.StringIO()
    code = ops_main(["--stage", "local", "dlq", "redrive", "analytics"], console=Console(file=out))
    assert code == 0 and "moved 1 message(s)" in out.getvalue()
    assert deliver_as_lambda(services, outputs) == [{"batchItemFailures": []}]
    # Redriving twice (or the event arriving again) changes nothing: the marker holds.
    sqs.send_message(QueueUrl=queue, MessageBody=event.body())
    deliver_as_lambda(services, outputs)
    today = day_of(services, "2031-05-04")
    assert (today["orders_confirmed"], today["revenue"]) == (1, "19.99")
    assert dlq_bodies(services, outputs) == []


# -- GET /analytics/daily/{date} --------------------------------------------------------


def test_the_route_answers_a_days_counters_and_revenue_as_a_decimal_string(api, services):
    deliver(
        services,
        order_event(None, "PENDING"),
        order_event("PENDING", "CONFIRMED", total="12.50"),
        order_event("PENDING", "CONFIRMED", total="7.25"),
        order_event("CONFIRMED", "CANCELLED", total="7.25"),
        order_event("PENDING", "REJECTED"),
    )
    response = api.http.get("/analytics/daily/2031-05-04")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert json.loads(response.body) == {
        "date": "2031-05-04",
        "orders_created": 1,
        "orders_confirmed": 2,
        "orders_rejected": 1,
        "orders_cancelled": 1,
        "revenue": "12.50",
    }


def test_a_day_with_nothing_answers_zeros(api):
    response = api.http.get("/analytics/daily/2031-01-01")
    assert response.status_code == 200
    assert json.loads(response.body) == {"date": "2031-01-01", **ZEROS}


@pytest.mark.parametrize(
    "day",
    ["2026-02-30", "2026-13-01", "2026-00-10", "20260201", "2026-2-1", "2026-W05-1", "today"],
)
def test_anything_but_a_calendar_day_as_yyyy_mm_dd_is_refused_naming_the_field(day):
    with pytest.raises(BadRequest) as refused:
        rest.day("date", day)
    assert [d["field"] for d in refused.value.details] == ["date"]
    assert "YYYY-MM-DD" in refused.value.details[0]["problem"]


def test_a_bad_date_is_a_400_json_naming_the_field(api):
    response = api.http.get("/analytics/daily/2026-02-30")
    assert response.status_code == 400
    body = json.loads(response.body)
    assert body["error"] == "bad_request"
    assert body["details"] == [
        {"field": "date", "problem": rest.DAY_PROBLEM + "; 2026-02-30 is not a day"}
    ]


def test_an_unknown_query_parameter_is_a_400_naming_it(api):
    response = api.http.get("/analytics/daily/2031-01-01?tz=CET")
    assert response.status_code == 400
    assert [d["field"] for d in json.loads(response.body)["details"]] == ["tz"]
