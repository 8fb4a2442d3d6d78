"""A throttled PublishBatch is retried by botocore, and the events go out once.

SNS answers a topic over its rate with ``Throttled`` (HTTP 429). PublishBatch
does not model that error, so botocore's standard mode retries it as it
retries any 429; the publisher sees a throttle only once those retries are
spent, and then hands the records back to the stream mapping. Were botocore
to stop retrying it (a model that names the error without marking it
retryable), the first test fails and the publisher needs a backoff of its
own. The throttle is injected in front of moto (``tests.reliability.faults``).
"""

from __future__ import annotations

import json

from chalicelib.orders import handlers
from tests.orders.helpers import place, seed_products
from tests.orders.streams import received, stream_records, subscribe_queue
from tests.reliability.faults import FaultInjector, First, Throttle, ops


def test_a_publish_throttled_twice_is_retried_by_botocore_and_goes_out_once(services):
    seed_products(services)
    tap = subscribe_queue(services, "tap")
    order_ids = [place(services, widget=1)["order_id"] for _ in range(3)]
    records = stream_records(services)
    injector = FaultInjector(rules=[Throttle(ops("sns:PublishBatch"), First(2))])
    injector.attach(services.clients.sns)

    result = handlers.publish_order_events({"Records": records}, None, services)

    assert result == {"batchItemFailures": []}
    assert injector.calls == ["sns:PublishBatch"] * 3
    published = [json.loads(m["Body"]) for m in received(services, tap)]
    assert sorted(e["order_id"] for e in published) == sorted(order_ids)
