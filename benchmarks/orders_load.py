"""Orders per second through the local cloud, from the POST to the last settled effect.

``python -m benchmarks.orders_load [CLIENTS ...]`` starts a local cloud as
``make run`` does (moto in a process of its own; the REST API, the pollers
and every handler ``app.py`` registers in this one) and, for each number of
concurrent clients, has each client place orders over HTTP, each with its own
Idempotency-Key, over a few products with stock to spare. Each client then
moves its orders by their place in its list: the first of every four is
shipped and delivered, the second cancelled right after its POST (racing the
inventory's reservation), the third shipped, the fourth left confirmed. A
client ships an order once the inventory has confirmed it, as seen by a read
of the bench's own.

The clock runs from the first POST until every effect of every order has
settled, checked from outside the pipeline (:mod:`benchmarks.order_effects`):
each order in its final status, one mail per event in the outbox, the day's
analytics counters and revenue, each product's stock and reservations. POST
and PATCH latencies are the clients' own, request sent to response read.
Before the next level starts, the runtime must be idle.

Every AWS call of the API and the handlers is logged (:mod:`benchmarks.call_log`),
with the pollers' calls that moved events. After each level, its calls are
sent again from one thread to a second moto process that has replayed every
earlier call: the orders per second at which moto alone serves that level's
very calls, measured right after the level, under the same machine load. A
level's ``over_moto_alone`` divides its orders/s by that rate.
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3

from benchmarks.call_log import SETUP, CallLog, Replay, count
from benchmarks.calls import offline_env
from benchmarks.order_calls import caller
from benchmarks.order_effects import CHECK_SECONDS, SETTLE_SECONDS, Effects, StuckError
from benchmarks.throughput import process_cpu
from chalicelib.aws import Clients, local_defaults
from chalicelib.config import Settings
from chalicelib.services import Services

PRODUCTS = {"anvil": ("19.99", 100_000), "bolt": ("2.50", 100_000), "crank": ("7.25", 100_000)}
# What a client does with the n-th order it placed: FATES[n % 4].
FATES = ("DELIVERED", "CANCELLED", "SHIPPED", "CONFIRMED")
LATENCY_KINDS = ("POST", "PATCH")


class Api:
    """The REST API over HTTP; times every POST and PATCH, keeps every status."""

    def __init__(self, port: int):
        self.port = port
        self.lock = threading.Lock()
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.statuses: Counter[int] = Counter()

    def call(self, method: str, path: str, body: Any = None, headers: dict | None = None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            raw = None if body is None else json.dumps(body).encode()
            sent = {"Content-Type": "application/json", **(headers or {})} if raw else {}
            started = time.perf_counter()
            connection.request(method, path, body=raw, headers=sent)
            response = connection.getresponse()
            payload = response.read()
            elapsed = time.perf_counter() - started
        finally:
            connection.close()
        with self.lock:
            self.statuses[response.status] += 1
            if method in LATENCY_KINDS:
                self.latencies[method].append(elapsed)
        return response.status, (json.loads(payload) if payload else None)

    def expect(self, wanted: int, method: str, path: str, body: Any, headers=None) -> dict:
        status, payload = self.call(method, path, body, headers)
        if status != wanted:
            raise RuntimeError(f"{method} {path} answered {status}: {payload}")
        return payload


class Bench:
    """The clients of one local cloud, and what they expect of their orders."""

    def __init__(self, cloud: Any, api: Api):
        self.cloud = cloud
        self.api = api
        self.effects = Effects(cloud, {p: stock for p, (_, stock) in PRODUCTS.items()})

    def client(self, level: int, number: int, orders: int) -> list[tuple[str, str]]:
        customer = f"load-{level}-{number}"
        placed = []
        for n in range(orders):
            names = sorted(PRODUCTS)
            lines = {names[n % len(names)]: 1 + n % 2}
            if n % 3 == 0:
                lines[names[(n + 1) % len(names)]] = 1
            body = {
                "customer_id": customer,
                "customer_email": f"{customer}@example.com",
                "items": [{"product_id": p, "quantity": q} for p, q in lines.items()],
            }
            key = {"Idempotency-Key": f"{customer}-{n}-{uuid.uuid4().hex[:8]}"}
            order_id = self.api.expect(201, "POST", "/orders", body, key)["order_id"]
            fate = FATES[n % len(FATES)]
            if fate == "CANCELLED":
                self.move(order_id, "CANCELLED")
            placed.append((order_id, fate))
        for order_id, fate in placed:
            if fate in ("SHIPPED", "DELIVERED"):
                self.wait_confirmed(order_id)
                self.move(order_id, "SHIPPED")
                if fate == "DELIVERED":
                    self.move(order_id, "DELIVERED")
        return placed

    def move(self, order_id: str, status: str) -> None:
        self.api.expect(200, "PATCH", f"/orders/{order_id}", {"status": status})

    def wait_confirmed(self, order_id: str) -> None:
        deadline = time.monotonic() + SETTLE_SECONDS
        while time.monotonic() < deadline:
            [order] = self.effects.read_orders([order_id])
            if order["status"] == "CONFIRMED":
                return
            time.sleep(CHECK_SECONDS)
        left = self.effects.what_is_left()
        raise StuckError(f"order {order_id} was never confirmed:\n{left}")


def percentiles(seconds: list[float]) -> dict[str, float]:
    """p50, p95 and p99 in milliseconds (with few samples, the upper ones are the largest)."""
    ms = sorted(s * 1000 for s in seconds)
    if len(ms) < 2:
        ms = ms * 2
    cuts = statistics.quantiles(ms, n=100, method="inclusive")
    return {"n": len(seconds), "p50": round(cuts[49], 1), "p95": round(cuts[94], 1),
            "p99": round(cuts[98], 1)}  # fmt: skip


def run_level(
    bench: Bench, log: CallLog, moto_alone: Replay, clients: int, per_client: int
) -> dict[str, Any]:
    api = bench.api
    with api.lock:
        api.latencies.clear()
    log.tag = clients
    cpu_before = process_cpu(bench.cloud.moto_pid)
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        runs = [pool.submit(bench.client, clients, n, per_client) for n in range(clients)]
        placed = [p for run in runs for p in run.result()]
    bench.effects.settle(dict(placed))
    seconds = time.perf_counter() - started
    cpu_after = process_cpu(bench.cloud.moto_pid)
    moto_cpu, app_cpu = (cpu_after[n] - cpu_before[n] for n in range(2))
    empty_polls = log.empty_polls[clients]
    # Stray redeliveries (none expected) must not be charged to the next level.
    if not bench.cloud.runtime.wait_until_idle(SETTLE_SECONDS):
        raise StuckError(f"the runtime never went idle:\n{bench.effects.what_is_left()}")
    app_calls, poller_calls = log.of(clients), log.of(clients, poller=True)
    orders = len(placed)
    log.recording = False  # the idle cloud's polls meanwhile are no level's
    alone = moto_alone.time(log.tagged(clients))
    log.recording = True
    alone["orders_per_s"] = round(orders / alone["seconds"], 2)
    return {
        "clients": clients,
        "orders": orders,
        "seconds": round(seconds, 2),
        "orders_per_s": round(orders / seconds, 2),
        "latency_ms": {kind: percentiles(api.latencies[kind]) for kind in LATENCY_KINDS},
        # Where the time went: the share of the level's wall clock that moto's process
        # and this one (API, pollers, handlers and the bench's own clients) spent on a CPU.
        "moto_busy": round(moto_cpu / seconds, 2),
        "app_busy": round(app_cpu / seconds, 2),
        # The machine's other work, which the two processes share the cores with.
        "load_average": round(os.getloadavg()[0], 1),
        "app_calls": len(app_calls),
        "poller_calls": len(poller_calls),
        "calls_per_order": round(len(app_calls) / orders, 2),
        "poller_calls_per_order": round(len(poller_calls) / orders, 2),
        "empty_polls_per_order": round(empty_polls / orders, 2),
        "statuses": dict(Counter(bench.effects.orders[o]["status"] for o, _ in placed)),
        "moto_alone": alone,
        "over_moto_alone": round(orders / seconds / alone["orders_per_s"], 3),
    }


def per_order(counter: Counter[str], orders: int) -> dict[str, float]:
    return {k: round(v / orders, 2) for k, v in sorted(counter.items())}


def measure(levels: list[int], per_client: dict[int, int] | int) -> dict[str, Any]:
    """Each level's orders/s, latencies and calls; then moto alone on the same calls."""
    from localcloud.cloud import LocalCloud

    offline_env()
    counts = per_client if isinstance(per_client, dict) else dict.fromkeys(levels, per_client)
    log = CallLog()
    with (
        LocalCloud(aws_port=0, api_port=0, moto_process=True) as cloud,
        Replay(cloud.stack) as moto_alone,
    ):
        settings = Settings.from_env()
        session = boto3.session.Session()
        log.attach_session(session, caller)
        logged = Services(
            settings, clients=Clients(session=session, defaults=local_defaults(settings.stage))
        )
        # Every handler and route asks app.services() for its clients.
        sys.modules["app"].services = lambda: logged
        for service in ("sqs", "dynamodbstreams"):
            log.attach_poller(cloud.clients(service))
        api = Api(cloud.api_port)
        bench = Bench(cloud, api)
        # The products and a warm-up are logged too, for the replay to start from the
        # same state; one order of each fate, so that one-off cold-start calls (STS,
        # queue lookups) are no level's.
        log.tag, log.recording = SETUP, True
        for product_id, (price, stock) in PRODUCTS.items():
            body = {"name": product_id.title(), "price": price, "stock": stock}
            api.expect(201, "PUT", f"/products/{product_id}", body)
        warm = bench.client(0, 0, len(FATES))
        bench.effects.settle(dict(warm))
        cloud.runtime.wait_until_idle(SETTLE_SECONDS)
        moto_alone.catch_up(log.tagged(SETUP))
        runs = [run_level(bench, log, moto_alone, n, counts[n]) for n in levels]
        log.recording = False
        server_errors = sum(n for status, n in api.statuses.items() if status >= 500)
        dead = bench.effects.dead_letters()
        invocations = {n: s["invocations"] for n, s in cloud.runtime.stats().items()}
    orders = sum(r["orders"] for r in runs)
    replayed = sum(r["moto_alone"]["seconds"] for r in runs)
    app_calls = log.of()
    by_function: dict[str, Counter[str]] = defaultdict(Counter)
    for call in app_calls:
        by_function[call.caller][call.operation] += 1
    return {
        "levels": runs,
        "orders": orders,
        "calls_per_order": per_order(count(app_calls), orders),
        "total_calls_per_order": round(len(app_calls) / orders, 2),
        "by_function_per_order": {f: per_order(c, orders) for f, c in sorted(by_function.items())},
        "poller_calls_per_order": per_order(count(log.of(poller=True)), orders),
        "moto_alone": {
            "orders_per_s": round(orders / replayed, 2),
            "calls_per_s": round(sum(r["moto_alone"]["calls"] for r in runs) / replayed, 1),
            "seconds": round(replayed, 2),
        },
        "server_errors": server_errors,
        "dead_letters": dead,
        "invocations": invocations,
        "products": len(PRODUCTS),
    }


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    levels = [int(a) for a in args] or [1, 8, 16]
    print(json.dumps(measure(levels, len(FATES)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
