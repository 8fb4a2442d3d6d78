"""Publishes invocation metrics and forwards EMF lines to the local CloudWatch.

In AWS, Lambda itself publishes ``AWS/Lambda`` Invocations, Errors and Duration
(dimension ``FunctionName``), and IteratorAge for stream mappings
(:mod:`localcloud.runtime.streamlag`), and CloudWatch Logs turns Embedded Metric Format
lines into metrics. moto does neither, so the runtime does both: it queues
metric data and a background thread sends it with ``put_metric_data`` in
batches, keeping the extra API calls off the invocation's path.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import queue
import threading
from collections import defaultdict
from typing import Any

log = logging.getLogger(__name__)

LAMBDA_NAMESPACE = "AWS/Lambda"
# put_metric_data accepts at most 1,000 metric data per request.
MAX_DATA_PER_CALL = 1000
FLUSH_SECONDS = 0.5


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def invocation_data(function_name: str, failed: bool, duration_ms: float) -> list[dict[str, Any]]:
    """The three datums Lambda records for one invocation."""
    dims = [{"Name": "FunctionName", "Value": function_name}]
    now = _now()
    return [
        {"MetricName": "Invocations", "Dimensions": dims, "Value": 1, "Unit": "Count"},
        {"MetricName": "Errors", "Dimensions": dims, "Value": int(failed), "Unit": "Count"},
        {
            "MetricName": "Duration",
            "Dimensions": dims,
            "Value": duration_ms,
            "Unit": "Milliseconds",
            "Timestamp": now,
        },
    ]


def parse_emf(line: str) -> list[tuple[str, dict[str, Any]]]:
    """(namespace, datum) pairs for one EMF JSON line; [] if it is not EMF."""
    line = line.strip()
    if not line.startswith("{") or '"_aws"' not in line:
        return []
    try:
        doc = json.loads(line)
        meta = doc["_aws"]
        directives = meta["CloudWatchMetrics"]
    except (ValueError, KeyError, TypeError):
        return []
    timestamp = _now()
    if isinstance(meta.get("Timestamp"), int | float):
        timestamp = dt.datetime.fromtimestamp(meta["Timestamp"] / 1000, dt.UTC)
    out: list[tuple[str, dict[str, Any]]] = []
    for directive in directives:
        namespace = directive.get("Namespace", "")
        dimension_sets = directive.get("Dimensions") or [[]]
        for metric in directive.get("Metrics", []):
            name = metric.get("Name")
            if name not in doc:
                continue
            value = doc[name]
            for dim_names in dimension_sets:
                datum: dict[str, Any] = {
                    "MetricName": name,
                    "Dimensions": [
                        {"Name": d, "Value": str(doc[d])} for d in dim_names if d in doc
                    ],
                    "Unit": metric.get("Unit", "None"),
                    "Timestamp": timestamp,
                }
                if metric.get("StorageResolution") == 1:
                    datum["StorageResolution"] = 1
                if isinstance(value, list):
                    datum["Values"] = [float(v) for v in value]
                else:
                    datum["Value"] = float(value)
                out.append((namespace, datum))
    return out


class MetricsPublisher:
    """Sends queued metric data from one background thread."""

    def __init__(self, cloudwatch: Any):
        self._cloudwatch = cloudwatch
        self._queue: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="localcloud-metrics", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def invocation(self, function_name: str, failed: bool, duration_ms: float) -> None:
        for datum in invocation_data(function_name, failed, duration_ms):
            self._queue.put((LAMBDA_NAMESPACE, datum))

    def iterator_age(self, function_name: str, age_ms: float) -> None:
        """A stream mapping's ``IteratorAge``, as Lambda records it."""
        datum = {
            "MetricName": "IteratorAge",
            "Dimensions": [{"Name": "FunctionName", "Value": function_name}],
            "Value": float(age_ms),
            "Unit": "Milliseconds",
            "Timestamp": _now(),
        }
        self._queue.put((LAMBDA_NAMESPACE, datum))

    def emf(self, printed: str) -> None:
        """Forward every EMF line in what an invocation printed."""
        for line in printed.splitlines():
            for item in parse_emf(line):
                self._queue.put(item)

    def _run(self) -> None:
        while not self._stop.wait(FLUSH_SECONDS):
            self.flush()
        self.flush()

    def flush(self) -> None:
        by_namespace: dict[str, list[dict[str, Any]]] = defaultdict(list)
        with contextlib.suppress(queue.Empty):
            while True:
                namespace, datum = self._queue.get_nowait()
                by_namespace[namespace].append(datum)
        for namespace, data in by_namespace.items():
            for start in range(0, len(data), MAX_DATA_PER_CALL):
                try:
                    self._cloudwatch.put_metric_data(
                        Namespace=namespace, MetricData=data[start : start + MAX_DATA_PER_CALL]
                    )
                except Exception:  # metrics must never break the pipeline
                    log.exception("could not publish %d metric data to %s", len(data), namespace)
