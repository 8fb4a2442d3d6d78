"""moto's server in a process of its own, so that it has a core of its own.

In one process, moto's request threads and the handlers (CSV parsing,
validation, botocore's serialization) take turns holding one GIL: the
pipeline runs on one core however many the machine has, and moto's threads,
which do more than half of its work, wait for the handlers' and the other
way round. In a child process, moto serves requests while the handlers
prepare the next ones. ``make run`` and ``make bench`` run moto this way.

The child installs what the in-process server installs (:mod:`motolocks`,
:mod:`mototransactions`, :mod:`motoiterators`, :mod:`motoshortcuts`, the
:mod:`outbox` at ``/_aws/ses``),
binds (port 0 picks a free port, read back from the line it prints), and serves until its standard
input closes: the parent holds the other end, so the child also ends when
the parent dies, however it dies.

Tests keep moto in the test process (``LocalCloud(moto_process=False)``, the
default) because they reach into moto's state: fault injection, the
atomicity checks, the outbox's in-process reader.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from localcloud.motopatch import Patch

READY = "moto-ready"
START_LIMIT_SECONDS = 30.0
PROJECT_DIR = Path(__file__).resolve().parents[1]


class MotoProcessError(RuntimeError):
    pass


class MotoProcess:
    """A moto server in a child process, with the same surface as ``ThreadedMotoServer``."""

    def __init__(self, host: str, port: int):
        self._host = host
        self._requested_port = port
        self._process: subprocess.Popen[str] | None = None
        self._port: int | None = None

    def start(self, limit: float = START_LIMIT_SECONDS) -> None:
        command = [sys.executable, "-m", "localcloud.motoprocess"]
        command += ["--host", self._host, "--port", str(self._requested_port)]
        self._process = subprocess.Popen(
            command,
            cwd=PROJECT_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            # Out of the terminal's process group: Ctrl-C reaches the parent,
            # which stops the handlers before it stops moto.
            start_new_session=True,
        )
        # The child's first line says where it listens; reading it is bounded.
        first: list[str] = []
        reader = threading.Thread(target=lambda: first.append(self._process.stdout.readline()))
        reader.start()
        reader.join(limit)
        line = first[0].split() if first else []
        if len(line) != 2 or line[0] != READY:
            code = self._process.poll()
            self.stop()
            if code is not None:
                raise MotoProcessError(
                    f"moto's server process did not start: it exited with code {code} "
                    "(its error is above)"
                )
            raise MotoProcessError(f"moto's server process did not start within {limit:.0f} s")
        self._port = int(line[1])

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def get_host_and_port(self) -> tuple[str, int]:
        if self._port is None:
            raise MotoProcessError("moto's server process is not running")
        return self._host, self._port

    def stop(self, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        self._port = None
        if process is None:
            return
        try:
            if process.stdin is not None:
                process.stdin.close()  # The child's signal to stop.
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        finally:
            if process.stdout is not None:
                process.stdout.close()


def patches() -> tuple[Patch, ...]:
    """Every change the local cloud makes to moto, in the order it makes them."""
    from localcloud import motoiterators, motolocks, motoshortcuts, mototransactions, outbox

    return (
        *motolocks.PATCHES,
        *mototransactions.PATCHES,
        *motoiterators.PATCHES,
        *motoshortcuts.PATCHES,
        *outbox.PATCHES,
    )


def prepare() -> Callable[[], None]:
    """What every local moto server gets, in this process or in its own: requests made
    atomic, transactions that change nothing when cancelled, the speed-ups, the
    outbox's notes on each email, and quiet request logs.

    Returns what undoes it: the local cloud in a test process calls it when it
    stops, so that later tests see moto as they expect; moto's own process
    just exits.
    """
    # werkzeug logs every request at INFO; the pollers make several a second.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    # Installed one by one, not through a context manager: moto's own process drops
    # what this returns, and a collected context manager would undo everything.
    done: list[Patch] = []
    try:
        for patch in patches():
            patch.install()
            done.append(patch)
    except BaseException:
        _uninstall(done)
        raise
    return lambda: _uninstall(done)


def _uninstall(done: list[Patch]) -> None:
    while done:
        done.pop().uninstall()


def serve(host: str, port: int) -> int:
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    from localcloud import outbox

    prepare()
    # What ThreadedMotoServer builds, bound here on the main thread: a busy port
    # ends the process (werkzeug says why, and exits 1) instead of leaving a
    # serving thread that never starts.
    app = outbox.middleware(DomainDispatcherApplication(create_backend_app))
    server = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)
    serving = threading.Thread(target=server.serve_forever, name="moto-server", daemon=True)
    serving.start()
    print(READY, server.server_address[1], flush=True)
    try:
        sys.stdin.read()  # Returns when the parent closes its end, or dies.
    finally:
        server.shutdown()
        server.server_close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localcloud.motoprocess")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    return serve(args.host, args.port)


if __name__ == "__main__":
    sys.exit(main())
