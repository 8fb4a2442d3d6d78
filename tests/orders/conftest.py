"""Fixtures shared by the orders tests."""

from __future__ import annotations

from collections import Counter

import pytest


@pytest.fixture
def calls(services) -> Counter:
    """AWS API calls the services' clients make, by "service Operation" (never timed)."""
    seen: Counter = Counter()

    def count(model, **_):
        seen[f"{model.service_model.service_name} {model.name}"] += 1

    clients = [services.clients(name) for name in ("dynamodb", "sns", "sqs", "sts")]
    for client in clients:
        client.meta.events.register("before-call", count)
    yield seen
    for client in clients:
        client.meta.events.unregister("before-call", count)
