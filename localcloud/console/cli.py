"""``python -m localcloud console``: the console alone, for a local cloud already running.

``make run`` serves the console itself. This command is for the other ways of
running the pipeline locally (``up --no-api`` with ``chalice local``, or a
second console on another port). It refuses any AWS endpoint that is not this
machine: the console has buttons that move messages and place orders.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping

from chalicelib.aws import LOCAL_AWS_PORT
from localcloud.console.server import DEFAULT_PORT, ConsoleServer, NotLocalError
from localcloud.env import aws_exports, port_setting
from ops.target import Target

DEFAULT_API = "http://127.0.0.1:8000"


def console_port(environ: Mapping[str, str]) -> int:
    return port_setting(environ, "EVENTFLOW_CONSOLE_PORT", DEFAULT_PORT)


def main(environ: Mapping[str, str] = os.environ, stop: threading.Event | None = None) -> int:
    aws_port = environ.get("EVENTFLOW_AWS_PORT") or str(LOCAL_AWS_PORT)
    for name, value in aws_exports(f"http://127.0.0.1:{aws_port}").items():
        os.environ.setdefault(name, value)
    try:
        server = ConsoleServer(
            Target(stage="local"),
            environ.get("EVENTFLOW_API_URL", DEFAULT_API),
            console_port(environ),
        )
    except NotLocalError as error:
        print(f"refused: {error}")
        return 2
    except OSError as error:
        print(f"error: the console cannot listen: {error}; set EVENTFLOW_CONSOLE_PORT")
        return 2
    server.start()
    print(f"eventflow console: {server.url}  (Ctrl-C stops it)", flush=True)
    stop = stop or threading.Event()
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0
