"""How often the runtime polls, what it asks of the interpreter while it runs,
and the work it takes off moto's request path (``localcloud.motospeed``).

Every poll is a request that moto serves in the runtime's own process, so an
idle source polled every 50 ms takes time from the handlers; see
``docs/local-cloud-semantics.md`` (Polling and the interpreter lock).
"""

from __future__ import annotations

import sys
import threading

import pytest
from chalice import Chalice
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

from infra.declaration import Queue
from localcloud import motospeed
from localcloud.runtime import poller
from localcloud.runtime.runtime import SWITCH_INTERVAL_SECONDS
from tests.localcloud.runtime_harness import (  # noqa: F401
    Cloud,
    _cloud,
    _moto_endpoint,
)


class _Waits(threading.Event):
    """A stop signal that never fires and records how long each wait was."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(round(timeout or 0, 4))
        return False


def test_an_idle_source_is_polled_less_often_down_to_four_times_a_second():
    """AWS: Lambda polls a stream shard four times a second; an idle source here
    is polled no more often than that, and at once again when a poll finds work."""
    stopping = _Waits()
    source = poller.Poller("f", stopping, poll_interval=0.02)
    for _ in range(6):
        source._wait_idle()
    source._found_work()
    source._wait_idle()
    assert stopping.waits == [0.02, 0.04, 0.08, 0.16, 0.25, 0.25, 0.02]
    assert poller.IDLE_POLL_SECONDS == 0.25


def test_a_poll_interval_longer_than_the_idle_bound_is_kept():
    stopping = _Waits()
    source = poller.Poller("f", stopping, poll_interval=1.0)
    source._wait_idle()
    source._wait_idle()
    assert stopping.waits == [1.0, 1.0]


def test_the_runtime_shortens_the_switch_interval_only_while_it_runs(cloud: Cloud):
    before = sys.getswitchinterval()
    stack, outputs = cloud.provision(queues=(Queue(key="jobs", name="jobs", visibility_timeout=5),))
    app = Chalice("t")

    @app.on_sqs_message(queue="jobs")
    def consume(event):
        return None

    runtime = cloud.run(app, stack, outputs)
    assert sys.getswitchinterval() == min(before, SWITCH_INTERVAL_SECONDS)
    runtime.stop()
    assert sys.getswitchinterval() == before


def test_the_remembered_backend_lookup_answers_as_moto_does():
    motospeed.install()
    dispatcher = DomainDispatcherApplication(create_backend_app)
    hosts = ["dynamodb.us-east-1.amazonaws.com", "sqs.us-east-1.amazonaws.com", "s3", None]
    lookup = DomainDispatcherApplication.get_backend_for_host
    motos_own = [lookup.__wrapped__(dispatcher, h) for h in hosts]
    first = [dispatcher.get_backend_for_host(h) for h in hosts]
    again = [dispatcher.get_backend_for_host(h) for h in hosts]
    assert first == again == motos_own == ["dynamodb", "sqs", "s3", None]


def _build(init, attrs):
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    item = Item.__new__(Item)
    try:
        init(item, DynamoType({"S": "pk"}), None, attrs)
    except ItemSizeTooLarge:
        return "too large"
    return {key: value.to_json() for key, value in item.attrs.items()}


@pytest.mark.parametrize("last", [0, 1, 2, 10_000])
def test_a_new_item_is_sized_in_one_pass_and_refused_exactly_when_moto_would(last):
    """AWS: an item over 400 KB is refused (moto's bound is 405,000 bytes)."""
    from moto.dynamodb.models.dynamo_type import Item

    motospeed.install()
    # "pk" (2) + 8 bytes and "a" (1) + 40 bytes..., then "z" + the rest.
    fill = motospeed.ITEM_SIZE_LIMIT - (2 + 8) - (1 + 40) - 1
    attrs = {
        "pk": {"S": "x" * 8},
        "a": {"N": "1" * 40},
        "z": {"S": "y" * (fill - 2 + last)},
    }
    ours = _build(Item.__init__, attrs)
    motos = _build(Item.__init__.__wrapped__, attrs)
    assert ours == motos
    assert (ours == "too large") == (last > 2)
