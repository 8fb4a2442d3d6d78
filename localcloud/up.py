"""``python -m localcloud up``: what ``make run`` runs, in the foreground.

Start-up order and shutdown live in :class:`localcloud.cloud.LocalCloud`; this
module adds the user-facing parts: ports from the environment, the printed
endpoints and exports, the demo, the status view, and signals.

SIGINT and SIGTERM only set an event. Everything that waits (the demo's
progress, the status view) watches that event, so the cloud stops through one
path, in order, whatever the moment the signal arrives; a second signal
exits at once, for a shutdown that hangs.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Mapping
from types import FrameType

from rich.console import Console

from chalicelib.aws import LOCAL_AWS_PORT
from localcloud.cloud import LocalCloud, PortInUseError, check_port_free
from localcloud.console.cli import console_port
from localcloud.console.server import ConsoleServer
from localcloud.demo import run_demo
from localcloud.demo_orders import run_orders_demo
from localcloud.env import port_setting
from localcloud.live import run_live
from ops.target import Target


def _install_signal_handlers(stop: threading.Event) -> None:
    def handle(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            os._exit(128 + signum)  # Second signal: the user gave up on a clean stop.
        stop.set()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)


def _print_ready(
    cloud: LocalCloud, console: Console, seconds: float, web: ConsoleServer | None = None
) -> None:
    # The lines with the endpoints carry the bound ports (port 0 picks free
    # ones), so scripts and tests can read them: "API (...): URL", "AWS (...): URL".
    say = {"markup": False, "highlight": False, "soft_wrap": True}
    console.print(f"eventflow local cloud ready in {seconds:.1f} s", style="bold green")
    if cloud.api_endpoint:
        console.print(f"  API (Chalice local): {cloud.api_endpoint}", **say)
    else:
        console.print("  API: not served (--no-api); in another terminal run:", **say)
        port = "" if cloud.aws_port == LOCAL_AWS_PORT else f"EVENTFLOW_AWS_PORT={cloud.aws_port} "
        console.print(f"    {port}chalice local --stage local", **say)
    console.print(f"  AWS (moto):          {cloud.aws_endpoint}", **say)
    if web is not None:
        console.print(f"  Console (browser):   {web.url}", **say)
    console.print("Point the aws CLI and boto3 at it with:", **say)
    for line in cloud.export_lines():
        console.print(f"  {line}", **say)
    if cloud.api_endpoint:
        console.print(f"  curl {cloud.api_endpoint}/health", **say)


def main(
    environ: Mapping[str, str] = os.environ,
    console: Console | None = None,
    *,
    serve_api: bool = True,
) -> int:
    console = console or Console()
    aws_port = port_setting(environ, "EVENTFLOW_AWS_PORT", LOCAL_AWS_PORT)
    api_port = port_setting(environ, "EVENTFLOW_API_PORT", 8000)
    web_port = console_port(environ)
    demo = environ.get("EVENTFLOW_DEMO", "1") != "0"

    stop = threading.Event()
    _install_signal_handlers(stop)
    started = time.monotonic()
    console.print("starting the eventflow local cloud...", highlight=False)
    cloud = LocalCloud(aws_port=aws_port, api_port=api_port, serve_api=serve_api, moto_process=True)
    try:
        check_port_free("127.0.0.1", web_port, "EVENTFLOW_CONSOLE_PORT")
        cloud.start()
    except PortInUseError as error:
        console.print(f"error: {error}", style="red", markup=False, soft_wrap=True)
        return 2
    web = None
    try:
        web = ConsoleServer(
            Target(stage=cloud.stage, clients=cloud.clients), cloud.api_endpoint, web_port
        )
        web.start()
        _print_ready(cloud, console, time.monotonic() - started, web)
        if demo and not stop.is_set():
            run_demo(cloud, console, should_stop=stop.is_set)
        if demo and not stop.is_set():
            run_orders_demo(cloud, console, should_stop=stop.is_set)
        if not stop.is_set():
            run_live(cloud, console, stop)
    finally:
        console.print("stopping...", highlight=False)
        if web is not None:
            web.stop()
        cloud.stop()
        console.print("stopped", highlight=False)
    return 0
