"""The status view that ``python -m localcloud up`` keeps showing until it is stopped.

It is ``ops status``'s snapshot, plus the in-process runtime's own counters
(timeouts, the last error, and each stream mapping's records not yet
processed). On a terminal it redraws in place (rich Live); otherwise (CI logs,
a pipe) it prints one plain line now and then, because cursor movements would
litter a log.
"""

from __future__ import annotations

import threading
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from ops.snapshot import snapshot
from ops.status import plain_line, render

REFRESH_SECONDS = 1.0
PLAIN_EVERY_SECONDS = 10.0


def _runtime_stats(cloud: Any) -> dict[str, Any] | None:
    runtime = cloud.runtime
    return runtime.stats() if runtime is not None and hasattr(runtime, "stats") else None


def _view(cloud: Any) -> Any:
    try:
        snap = snapshot(cloud.clients, cloud.stack, cloud.outputs)
        body: Any = render(snap, _runtime_stats(cloud))
    except Exception as error:  # The view must outlive a failed refresh.
        body = Text(f"status unavailable: {error}", style="red")
    api = cloud.api_endpoint or "not served (--no-api)"
    footer = Text(f"API {api}   AWS {cloud.aws_endpoint}   Ctrl-C to stop", "dim")
    return Group(body, footer)


def run_live(cloud: Any, console: Console, stop: threading.Event) -> None:
    """Show the status until ``stop`` is set."""
    if not console.is_terminal:
        _run_plain(cloud, console, stop)
        return
    with Live(_view(cloud), console=console, auto_refresh=False) as live:
        while not stop.wait(REFRESH_SECONDS):
            live.update(_view(cloud), refresh=True)


def _run_plain(cloud: Any, console: Console, stop: threading.Event) -> None:
    while not stop.wait(PLAIN_EVERY_SECONDS):
        try:
            line = plain_line(snapshot(cloud.clients, cloud.stack, cloud.outputs))
        except Exception as error:  # Keep running; say why.
            line = f"status unavailable: {error}"
        console.print(line, markup=False, highlight=False, soft_wrap=True)
