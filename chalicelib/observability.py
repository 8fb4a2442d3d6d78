"""Structured logs and metrics (Powertools), shared by every handler.

Logs are JSON with correlation keys (ingest id, message id); metrics leave as
CloudWatch EMF log lines, so publishing them costs no API call.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from chalicelib.metric_names import NAMESPACE

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "eventflow"))
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", NAMESPACE))


def count(name: str, value: int) -> None:
    if value:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


@contextmanager
def invocation(function: str, stage: str) -> Iterator[None]:
    """Tag logs with the function, and publish the invocation's metrics when it ends."""
    # Per thread: the local runtime runs invocations side by side in one process
    # (Lambda runs one per process), and process-wide keys would mix their lines.
    logger.thread_safe_append_keys(function=function)
    # The default dimension outlives each flush. Only a process that serves two
    # stages (tests) changes it, and Powertools warns when a value is replaced.
    if metrics.default_dimensions.get("stage") != stage:
        metrics.default_dimensions.pop("stage", None)
        metrics.dimension_set.pop("stage", None)
        metrics.set_default_dimensions(stage=stage)
    try:
        yield
    finally:
        logger.thread_safe_remove_keys(["function", "ingest_id", "message_id"])
        # Flushing nothing only produces a warning (a TestEvent, a skipped duplicate).
        if metrics.metric_set:
            metrics.flush_metrics()
            # With POWERTOOLS_METRICS_DISABLED, Powertools skips its own clear,
            # and the set would grow with every warm invocation.
            metrics.clear_metrics()


@contextmanager
def correlated(**keys: str) -> Iterator[None]:
    logger.thread_safe_append_keys(**keys)
    try:
        yield
    finally:
        logger.thread_safe_remove_keys(list(keys))


def measure(name: str, value: Decimal) -> None:
    """An amount (revenue, say) as a unitless metric; exact values live in the tables."""
    if value:
        metrics.add_metric(name=name, unit=MetricUnit.NoUnit, value=float(value))
