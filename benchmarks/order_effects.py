"""The effects of orders, read from outside the pipeline: has every one settled?

:class:`Effects` reads what the orders' consumers leave behind, with clients
of its own (its reads are no order's calls), and checks it against what the
orders' final states say: each order in the status its client drove it to,
one mail per event in the local outbox (an order's ``version`` counts its
events), the analytics counters and revenue of the days the orders span, and
each product's stock and reservations. Used by :mod:`benchmarks.orders_load`
to stop its clock when the last effect has landed.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from chalicelib.aws import Clients
from chalicelib.config import Settings
from chalicelib.dynamo import from_item, to_item
from chalicelib.orders.analytics import daily
from chalicelib.orders.model import ORDER_ID
from chalicelib.services import Services
from ops import mail

EARNING = {"CONFIRMED", "SHIPPED", "DELIVERED"}
SETTLE_SECONDS = 120.0
CHECK_SECONDS = 0.05
BATCH_GET = 100


class StuckError(RuntimeError):
    """The pipeline did not settle: what is left is in the message."""


class Effects:
    """Every order placed so far, in its final state, and the checks of its effects."""

    def __init__(self, cloud: Any, stock: dict[str, int]):
        self.cloud = cloud
        self.stock = stock  # each product's initial stock
        self.settings = Settings.from_env()
        self.reader = Clients()
        self.orders: dict[str, dict[str, Any]] = {}
        self.fates: dict[str, str] = {}  # the status each order's client drove it to

    def read_orders(self, order_ids: list[str]) -> list[dict[str, Any]]:
        table, found = self.settings.orders_table, []
        for start in range(0, len(order_ids), BATCH_GET):
            keys = [to_item({"order_id": o}) for o in order_ids[start : start + BATCH_GET]]
            request = {table: {"Keys": keys, "ConsistentRead": True}}
            while request:
                got = self.reader.dynamodb.batch_get_item(RequestItems=request)
                found += [from_item(i) for i in got["Responses"].get(table, [])]
                request = got.get("UnprocessedKeys") or {}
        return found

    def orders_final(self, pending: set[str]) -> bool:
        for order in self.read_orders(sorted(pending)):
            wanted = self.fates[order["order_id"]]
            if order["status"] == wanted:
                pending.discard(order["order_id"])
                self.orders[order["order_id"]] = order
            elif order["status"] not in ("PENDING", "CONFIRMED"):
                raise RuntimeError(f"order {order['order_id']} is {order['status']}, not {wanted}")
        return not pending

    def mail_sent(self) -> bool:
        sent = Counter(ORDER_ID.findall(m["Subject"])[0] for m in mail.fetch(self.endpoint))
        if set(sent) - set(self.orders):
            raise RuntimeError("mail about an order the bench did not place")
        return all(sent[i] == int(o["version"]) for i, o in self.orders.items())

    def analytics_counted(self) -> bool:
        return self.counters() == expected_counters(list(self.orders.values()))

    def counters(self) -> dict[str, Any]:
        counted: Counter[str] = Counter()
        revenue = Decimal(0)
        for day in days_spanned(list(self.orders.values())):
            figures = daily(self.reader.dynamodb, self.settings.analytics_table, day)
            counted.update({k: v for k, v in figures.items() if k.startswith("orders_")})
            revenue += Decimal(figures["revenue"])
        return {**counted, "revenue": revenue}

    def stock_accounted(self) -> bool:
        expected = expected_stock(list(self.orders.values()), self.stock)
        for product_id, (stock, reserved) in expected.items():
            product = self.services.products.get(product_id)
            if (product["stock"], product["reserved"]) != (stock, reserved):
                return False
        return True

    @property
    def endpoint(self) -> str:
        return self.cloud.aws_endpoint

    @property
    def services(self) -> Services:
        return Services(self.settings, clients=self.reader)

    def settle(self, fates: dict[str, str]) -> None:
        """Returns once every effect of these orders (id: the status their client drove
        them to) and of the earlier ones has settled; raises StuckError if not."""
        self.fates.update(fates)
        pending = set(fates)
        deadline = time.monotonic() + SETTLE_SECONDS
        checks = (
            lambda: self.orders_final(pending),
            self.mail_sent,
            self.analytics_counted,
            self.stock_accounted,
        )
        for check in checks:
            while not check():
                if time.monotonic() > deadline:
                    raise StuckError(f"not settled in {SETTLE_SECONDS:.0f} s "
                                     f"({check}):\n{self.what_is_left(pending)}")  # fmt: skip
                time.sleep(CHECK_SECONDS)

    def what_is_left(self, pending: set[str] | None = None) -> str:
        """The state of a pipeline that did not settle, for the bench's error."""
        lines = []
        if pending:
            statuses = Counter(o["status"] for o in self.read_orders(sorted(pending)))
            lines.append(f"{len(pending)} order(s) not final: {dict(statuses)}; e.g. "
                         f"{sorted(pending)[:3]}")  # fmt: skip
        sqs = self.reader.sqs
        for key, queue in self.cloud.outputs.queues.items():
            names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
            got = sqs.get_queue_attributes(QueueUrl=queue["url"], AttributeNames=names)
            lines.append(f"queue {key}: {got['Attributes']}")
        for name, stats in self.cloud.runtime.stats().items():
            lines.append(f"function {name}: {stats}")
        return "\n".join(lines)

    def dead_letters(self) -> int:
        total = 0
        for key, queue in self.cloud.outputs.queues.items():
            if key.endswith("-dlq") or key.endswith("-failed"):
                names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
                got = self.reader.sqs.get_queue_attributes(
                    QueueUrl=queue["url"], AttributeNames=names
                )["Attributes"]
                total += sum(int(v) for v in got.values())
        return total


def expected_counters(orders: list[dict[str, Any]]) -> dict[str, Any]:
    statuses = Counter(o["status"] for o in orders)
    return {
        "orders_created": len(orders),
        # Cancelled from CONFIRMED is version 3 (created, confirmed, cancelled); from PENDING, 2.
        "orders_confirmed": sum(
            o["status"] in EARNING or (o["status"] == "CANCELLED" and int(o["version"]) == 3)
            for o in orders
        ),
        "orders_rejected": statuses["REJECTED"],
        "orders_cancelled": statuses["CANCELLED"],
        "revenue": sum((Decimal(o["total"]) for o in orders if o["status"] in EARNING), Decimal(0)),
    }


def expected_stock(
    orders: list[dict[str, Any]], initial: dict[str, int]
) -> dict[str, tuple[int, int]]:
    """(stock, reserved) of each product once the orders have settled."""
    held: Counter[str] = Counter()
    gone: Counter[str] = Counter()
    for order in orders:
        for line in order["items"]:
            if order["status"] == "CONFIRMED":
                held[line["product_id"]] += int(line["quantity"])
            elif order["status"] in ("SHIPPED", "DELIVERED"):
                gone[line["product_id"]] += int(line["quantity"])
    return {p: (s - held[p] - gone[p], held[p]) for p, s in initial.items()}


def days_spanned(orders: list[dict[str, Any]]) -> list[date]:
    def day(stamp: str) -> date:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).date()

    first = min(day(o["created_at"]) for o in orders)
    last = max(day(o["updated_at"]) for o in orders)
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]
