"""AWS API calls per order, counted through a botocore hook (never timed)."""

from __future__ import annotations

from chalicelib.orders import handlers, service
from chalicelib.orders.model import OrderRequest
from chalicelib.orders.states import Actor, Status
from tests.orders.helpers import order_body, seed_products
from tests.orders.streams import stream_records


def test_calls_per_order(services, calls):
    seed_products(services)
    services.order_events_topic_arn  # noqa: B018 (a cold start's one STS call, out of the count)
    calls.clear()
    request = OrderRequest.model_validate(order_body(widget=2, gadget=1))

    order, _ = service.place_order(request, "k-1", services)
    assert calls == {
        "dynamodb GetItem": 1,  # the key
        "dynamodb BatchGetItem": 1,  # every price in one read
        "dynamodb TransactWriteItems": 1,  # the order and its key
    }
    calls.clear()
    assert service.place_order(request, "k-1", services)[0] == order
    assert calls == {"dynamodb GetItem": 2}  # the key, then the order
    calls.clear()
    service.place_order(request, None, services)
    assert calls == {"dynamodb BatchGetItem": 1, "dynamodb PutItem": 1}
    calls.clear()
    service.change_status(order["order_id"], Status.CANCELLED, Actor.CLIENT, services)
    assert calls == {"dynamodb GetItem": 1, "dynamodb UpdateItem": 1}

    records = stream_records(services)
    calls.clear()
    handlers.publish_order_events({"Records": records}, None, services)
    # Three events of two orders: the cancellation waits for the next call.
    assert calls == {"sns PublishBatch": 2}
