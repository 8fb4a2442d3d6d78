"""The metric names the alarms and dashboard watch are the names the handlers publish.

``infra/alarms.py`` spells its metric names out as text; the handlers, the
status view and the console use :mod:`chalicelib.metric_names`. An alarm on a
name nobody publishes never fires, so each name infra watches must be one of
the constants, with the same text.
"""

from __future__ import annotations

from chalicelib import metric_names
from chalicelib.orders import analytics_store
from infra import alarms


def _published() -> set[str]:
    return {
        value
        for name, value in vars(metric_names).items()
        if name.isupper() and isinstance(value, str)
    }


def test_every_metric_infra_alarms_or_charts_on_is_a_published_name():
    watched = {
        *alarms.ROW_METRICS,
        *alarms.ORDER_METRICS,
        *(metric for metric, _anchor in alarms.APP_METRIC_ALARMS),
    }
    assert sorted(watched - _published()) == []


def test_each_metric_name_is_defined_once():
    values = [
        value
        for name, value in vars(metric_names).items()
        if name.isupper() and isinstance(value, str)
    ]
    assert len(values) == len(set(values))


def test_an_inventory_outcome_counts_under_its_own_name():
    assert metric_names.inventory_outcome("reserved") == "InventoryReserved"


def test_the_analytics_counts_charted_are_the_counters_the_consumer_publishes():
    published = tuple(metric_names.analytics_counter(c) for c in analytics_store.COUNTERS)
    assert published == metric_names.ANALYTICS_COUNTS
    assert metric_names.analytics_counter("orders_confirmed") == "OrdersConfirmed"
