"""Query pages against table size: a page should cost the same however big the table.

``python -m benchmarks.queries [SMALL LARGE]`` starts moto in a process of
its own (as ``make run`` does), fills the readings table with SMALL items,
times the two paginated queries through the app's own routes (Chalice's test
client: routing, validation, the store, botocore and the JSON), then adds
filler up to LARGE items and times them again. The queried location and day
hold the same 500 readings in both tables; the filler lies on other days, so
both pages return the same items and only the table around them grows. Items
are written with BatchWriteItem directly, 25 at a time, in the shape the
writer stores.

Three figures per page, each as a ratio of the large table to the small one:

* **items read** (the sum of the ``ScannedCount`` of the page's Query calls):
  what DynamoDB reads, and bills, to answer the page, and what its latency
  follows, since DynamoDB reads only the key range it returns;
* **app calls** (Python function calls made while serving the page, counted
  by cProfile in one extra request): the app's own work, counted. Its CPU
  time (of the thread that serves the request) is reported too, but on a
  2-core machine it grows by a third to a half beside a moto that walks a
  large table on the other core, while the calls made stay the same: caches
  the two share, not more work;
* **whole page** (wall clock): moto's cost model more than the app's. moto's
  Query walks every item of the table to find a partition's, so its time
  grows with the table, where DynamoDB's does not.

The calls per page (``calls_per_page``) are reported too.
"""

from __future__ import annotations

import cProfile
import json
import pstats
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

PROBE_LOCATION = "probe-site"
PROBE_DAY = datetime(2024, 6, 1, tzinfo=UTC)
PROBE_READINGS = 500
BATCH = 25
# Requests timed per page: a large table's by-date page takes seconds in moto.
SAMPLES = {"small": 9, "large": 5}


class ItemsRead:
    """Items that the Query calls made through one session read (DynamoDB's ScannedCount)."""

    def __init__(self, session: Any):
        self.items = 0
        session.events.register("after-call.dynamodb.Query", self._add)

    def _add(self, parsed: dict[str, Any], **_: Any) -> None:
        self.items += int(parsed.get("ScannedCount", 0))


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


def time_page(client: Any, read: ItemsRead, path: str, samples: int) -> dict[str, Any]:
    """Median wall and CPU milliseconds for one page, the items its queries read and
    the items it returns. One untimed request first: the first ever pays for
    imports and clients."""
    client.http.get(path)
    wall, cpu, items_read = [], [], []
    for _ in range(samples):
        read.items = 0
        started, started_cpu = time.perf_counter(), time.thread_time()
        response = client.http.get(path)
        cpu.append(time.thread_time() - started_cpu)
        wall.append(time.perf_counter() - started)
        items_read.append(read.items)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path} answered {response.status_code}: {response.body!r}")
    return {
        "median_ms": round(statistics.median(wall) * 1000, 2),
        "app_cpu_ms": round(statistics.median(cpu) * 1000, 2),
        "app_calls": python_calls(client, path),
        "items_read": statistics.median(items_read),
        "items": len(json.loads(response.body)["items"]),
    }


def python_calls(client: Any, path: str) -> int:
    """Python function calls (cProfile's count) made while serving one page: the app's
    work, counted rather than timed, in one extra request."""
    profile = cProfile.Profile()
    profile.enable()
    try:
        client.http.get(path)
    finally:
        profile.disable()
    return pstats.Stats(profile).total_calls


def measure(small: int = 1_000, large: int = 100_000) -> dict[str, Any]:
    import boto3
    from chalice.test import Client

    from benchmarks.calls import CallCounter, offline_env
    from chalicelib.aws import Clients
    from chalicelib.services import Services
    from infra.provision import Provisioner
    from infra.stack import declare
    from infra.stageconfig import StageConfig
    from localcloud.env import EnvironmentPatch
    from localcloud.motoprocess import MotoProcess

    offline_env()
    paths = {
        "by_location": f"/readings/{PROBE_LOCATION}",
        "by_date": f"/readings?date={PROBE_DAY.date().isoformat()}",
    }
    probe = min(PROBE_READINGS, small)
    results: dict[str, Any] = {"probe_readings": probe, "page_limit": 50, "samples": SAMPLES}
    moto = MotoProcess("127.0.0.1", 0)
    moto.start()
    environment = EnvironmentPatch()
    try:
        environment.point_at(f"http://127.0.0.1:{moto.get_host_and_port()[1]}", {})
        import app as app_module

        admin = Clients()
        config = StageConfig.load("local")
        Provisioner(admin).apply(declare(config))
        session = boto3.session.Session()
        counter = CallCounter(session)
        read = ItemsRead(session)
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
                pages = {}
                for name, path in paths.items():
                    samples = SAMPLES[label]
                    counter.clear()
                    page = time_page(client, read, path, samples)
                    page["calls_per_page"] = {
                        # The warm-up, the timed and the counted requests.
                        k: round(v / (samples + 2), 2)
                        for k, v in sorted(counter.calls.items())
                    }
                    pages[name] = page
                results[label] = {"items": size, "seed_seconds": seeded, "pages": pages}
    finally:
        environment.restore()
        moto.stop()
    for figure in ("median_ms", "app_cpu_ms", "app_calls", "items_read"):
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
