"""A fourth consumer of ``order-events``, added by the steps docs/architecture.md lists.

"loyalty" records each order event it is delivered, once: a marker
``loyalty#{event_id}`` in the idempotency table, written by a conditional put.
:func:`add_loyalty_consumer` makes exactly the edits the "Adding a consumer"
section names, each as a developer would type it, and nothing else; an edit
whose anchor has moved fails loudly, naming the file, so the example is
updated rather than silently skipped.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from infra.stageconfig import PROJECT_DIR
from tests.infra.conftest import project_copy

FUNCTION = "award_points"
KEY = "loyalty"
CONCURRENCY = 2
TIMEOUT = 30
MEMORY = 256

LOYALTY_MODULE = '''\
"""The loyalty consumer: a record of each order event delivered, kept once per event."""

from __future__ import annotations

from chalicelib.observability import logger
from chalicelib.orders import keys, markers
from chalicelib.orders.events import OrderEvent

CONSUMER = keys.LOYALTY_CONSUMER


def apply(event: OrderEvent, services) -> str:
    """Record ``event`` (its marker ``loyalty#{event_id}``); ``duplicate`` if it was before."""
    recorded = markers.commit_once(
        services.clients.dynamodb, markers.event_marker(CONSUMER, event.event_id, services), []
    )
    logger.info("order event for loyalty points", extra={"event_type": event.event_type})
    return "recorded" if recorded else "duplicate"
'''

KEYS_ENTRY = 'LOYALTY_CONSUMER = "loyalty"\n'

METRIC_ENTRY = 'LOYALTY_FAILURES = "LoyaltyFailures"\n'

HANDLER_BODY = """

loyalty = lazy("chalicelib.orders.loyalty")


def award_points(event: dict[str, Any], context: Any, services) -> dict[str, Any]:
    return _consume_order_events(
        "award_points",
        event,
        context,
        services,
        lambda order_event: loyalty.apply(order_event, services),
        failure_metric=metric_names.LOYALTY_FAILURES,
        failure_log="loyalty event failed; SQS will redeliver it",
    )
"""

CONCURRENCY_ENTRY = f"""\
    # Each event is one conditional put of its own item: nothing to conflict on.
    "{FUNCTION}": {CONCURRENCY},
"""

APP_HANDLER = f'''

@app.on_sqs_message(
    queue=settings.name("{KEY}"),
    batch_size=10,
    maximum_concurrency=MAXIMUM_CONCURRENCY["{FUNCTION}"],
)
def {FUNCTION}(event):
    return orders_handlers.{FUNCTION}(event.to_dict(), event.context, services())
'''

STACK_ENTRY = f"""\
        OrderEventConsumer(
            key="{KEY}",
            queue_name=settings.name("{KEY}"),
            function="{FUNCTION}",
            filter_policy=every_event,
            grants=(
                TableAccess(
                    "idempotency",
                    "PutItem",
                    key_prefixes=(keys.marker_id(keys.LOYALTY_CONSUMER, ""),),
                ),
            ),
        ),
"""


def stage_settings(stage: str) -> dict[str, Any]:
    """The function's block under ``stages.<stage>.lambda_functions``."""
    block: dict[str, Any] = {"lambda_timeout": TIMEOUT, "lambda_memory_size": MEMORY}
    if stage != "local":
        # Chalice requires it with autogen_policy off; infra writes the file.
        block["iam_policy_file"] = f"policy-{stage}-{FUNCTION}.json"
    if stage == "prod":
        block["reserved_concurrency"] = CONCURRENCY
    return block


def _insert(path: Path, anchor: str, text: str) -> None:
    """Put ``text`` right after the one place ``anchor`` (a regex) matches in ``path``."""
    source = path.read_text()
    found = list(re.finditer(anchor, source, flags=re.MULTILINE | re.DOTALL))
    assert len(found) == 1, f"{path}: {anchor!r} matches {len(found)} times; update the example"
    end = found[0].end()
    path.write_text(source[:end] + text + source[end:])


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def add_loyalty_consumer(project: Path) -> None:
    """Apply the documented steps to the project at ``project``."""
    orders = project / "chalicelib" / "orders"
    (orders / "loyalty.py").write_text(LOYALTY_MODULE)
    _append(orders / "keys.py", "\n" + KEYS_ENTRY)
    _append(project / "chalicelib" / "metric_names.py", "\n" + METRIC_ENTRY)
    _append(orders / "handlers.py", HANDLER_BODY)
    _insert(
        project / "chalicelib" / "concurrency.py", r"^MAXIMUM_CONCURRENCY.*?\{\n", CONCURRENCY_ENTRY
    )
    _append(project / "app.py", APP_HANDLER)
    _insert(
        project / "infra" / "stack" / "orders.py",
        r"^def order_event_consumers\(.*?^    return \(\n",
        STACK_ENTRY,
    )
    config_path = project / ".chalice" / "config.json"
    config = json.loads(config_path.read_text())
    for stage, block in config["stages"].items():
        block["lambda_functions"][FUNCTION] = stage_settings(stage)
    config_path.write_text(json.dumps(config, indent=2) + "\n")


def copy_with_loyalty(target: Path) -> Path:
    """A copy of the project (``infra/`` included) with the loyalty consumer added."""
    project = project_copy(target)
    shutil.copytree(
        PROJECT_DIR / "infra", project / "infra", ignore=shutil.ignore_patterns("__pycache__")
    )
    add_loyalty_consumer(project)
    return project
