"""Query page latency against table size: a page should cost the same however big the table.

``python -m benchmarks.queries [SMALL LARGE]`` fills the readings table
(under moto, in-process) with SMALL items, times the two paginated queries
through the app's own routes (Chalice's test client: routing, validation,
the store and the JSON), then adds filler up to LARGE items and times them
again. The queried location and day hold the same 500 readings in both
tables; the filler lies on other days, so both pages return the same items
and only the table around them grows. Items are written with BatchWriteItem
directly, 25 at a time, in the shape the writer stores.

What moto shows is moto's cost model: its Query time grows with the table
(it looks at far more items than the page), which DynamoDB's does not, since
it reads only the key range it returns. So each page's time is split in two:
the time spent inside the AWS calls (moto's share, ``aws_ms``) and the rest,
the app's own work (``app_ms``). The app's share, and the calls it makes per
page (``calls_per_page``), are what the design controls: they must not grow
with the table.
"""

from __future__ import annotations

import gc
import json
import statistics
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

PROBE_LOCATION = "probe-site"
PROBE_DAY = datetime(2024, 6, 1, tzinfo=UTC)
PROBE_READINGS = 500
BATCH = 25
# Requests timed per page: a large table's by-date page takes seconds in moto.
SAMPLES = {"small": 7, "large": 3}


class CallTimer:
    """Seconds spent inside AWS calls made through one session (moto runs there)."""

    def __init__(self, session: Any):
        self.seconds = 0.0
        self._started: dict[int, float] = {}
        session.events.register("before-call", self._start)
        session.events.register("after-call", self._stop)

    def _start(self, **_: Any) -> None:
        self._started[threading.get_ident()] = time.perf_counter()

    def _stop(self, **_: Any) -> None:
        started = self._started.pop(threading.get_ident(), None)
        if started is not None:
            self.seconds += time.perf_counter() - started


def _reading(timestamp: datetime, location: str, source: str):
    from chalicelib.readings.model import Reading

    return Reading.model_validate(
        {
            "timestamp": timestamp.isoformat(),
            "location": location,
            "source": source,
            "local_dest": "router",
            "local_avg": "1.25",
            "remote_dest": "probe.example.net",
            "remote_avg": "20.5",
        }
    )


def probe_items(count: int) -> list[dict[str, Any]]:
    from chalicelib.readings.store import reading_item

    return [
        reading_item(
            _reading(
                PROBE_DAY + timedelta(seconds=30 * n), PROBE_LOCATION, ("wired", "wireless")[n % 2]
            )
        )
        for n in range(count)
    ]


def filler_items(start: int, count: int) -> list[dict[str, Any]]:
    """Readings of 50 other sites, from the day after the probe day on."""
    from chalicelib.readings.store import reading_item

    first = PROBE_DAY + timedelta(days=1)
    return [
        reading_item(
            _reading(first + timedelta(seconds=n // 50 * 60), f"site-{n % 50:03d}", "wired")
        )
        for n in range(start, start + count)
    ]


def seed(ddb: Any, table: str, items: list[dict[str, Any]]) -> None:
    for i in range(0, len(items), BATCH):
        batch = [{"PutRequest": {"Item": item}} for item in items[i : i + BATCH]]
        ddb.batch_write_item(RequestItems={table: batch})


def time_page(
    client: Any, timer: CallTimer, path: str, samples: int, warm_up: bool
) -> dict[str, Any]:
    """Median milliseconds for one page, split into the time inside AWS calls and the
    app's own; and the page's item count. ``warm_up`` first makes one untimed request
    (the first ever pays for imports and clients)."""
    if warm_up:
        client.http.get(path)
    total, aws = [], []
    for _ in range(samples):
        timer.seconds = 0.0
        start = time.perf_counter()
        response = client.http.get(path)
        total.append(time.perf_counter() - start)
        aws.append(timer.seconds)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path} answered {response.status_code}: {response.body!r}")
    items = len(json.loads(response.body)["items"])
    app = [t - a for t, a in zip(total, aws, strict=True)]
    return {
        "median_ms": round(statistics.median(total) * 1000, 2),
        "aws_ms": round(statistics.median(aws) * 1000, 2),
        "app_ms": round(statistics.median(app) * 1000, 2),
        "items": items,
    }


def measure(small: int = 1_000, large: int = 100_000) -> dict[str, Any]:
    import boto3
    from chalice.test import Client
    from moto import mock_aws

    from benchmarks.calls import CallCounter, offline_env
    from chalicelib.aws import Clients
    from chalicelib.services import Services
    from infra.declaration import declare
    from infra.provision import Provisioner
    from infra.stageconfig import StageConfig

    offline_env()
    import app as app_module

    paths = {
        "by_location": f"/readings/{PROBE_LOCATION}",
        "by_date": f"/readings?date={PROBE_DAY.date().isoformat()}",
    }
    probe = min(PROBE_READINGS, small)
    results: dict[str, Any] = {"probe_readings": probe, "page_limit": 50}
    with mock_aws():
        admin = Clients()
        config = StageConfig.load("local")
        Provisioner(admin).apply(declare(config))
        session = boto3.session.Session()
        counter = CallCounter(session)
        timer = CallTimer(session)
        services = Services(config.settings(), clients=Clients(session=session))
        app_module.services = lambda: services
        table = services.settings.readings_table
        seed(admin.dynamodb, table, probe_items(probe))
        seed(admin.dynamodb, table, filler_items(0, small - probe))
        filled = small - probe
        with Client(app_module.app, stage_name="local") as client:
            for label, size in (("small", small), ("large", large)):
                started = time.perf_counter()
                seed(admin.dynamodb, table, filler_items(filled, size - probe - filled))
                filled = size - probe
                seeded = round(time.perf_counter() - started, 1)
                # moto keeps the table in this process's heap; frozen, the garbage
                # collector stops walking it on the app's time (in Lambda, the table
                # is not in the function's heap at all).
                gc.collect()
                gc.freeze()
                pages = {}
                for name, path in paths.items():
                    counter.clear()
                    samples = SAMPLES[label]
                    page = time_page(client, timer, path, samples, warm_up=label == "small")
                    requests = samples + (label == "small")
                    page["calls_per_page"] = {
                        k: round(v / requests, 2) for k, v in sorted(counter.calls.items())
                    }
                    pages[name] = page
                results[label] = {"items": size, "seed_seconds": seeded, "pages": pages}
    for figure in ("median_ms", "app_ms"):
        results[f"large_over_small_{figure.removesuffix('_ms')}"] = {
            name: round(
                results["large"]["pages"][name][figure] / results["small"]["pages"][name][figure],
                2,
            )
            for name in paths
        }
    return results


def main(argv: list[str] | None = None) -> int:
    args = [int(a) for a in (argv if argv is not None else sys.argv[1:])]
    print(json.dumps(measure(*args), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
