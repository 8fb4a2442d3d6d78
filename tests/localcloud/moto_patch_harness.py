"""Shared harness of the moto patch tests: a real moto server, and races made certain.

A race between two requests is made to happen on every run, not by chance:
:class:`Hold` stops the first request at a chosen point inside moto, on the
server's own request thread; :func:`race` then sends the second request, and
releases the first once the second has either finished (nothing kept them
apart: the fault happens) or is waiting for the lock of
:mod:`localcloud.motolocks` that the first holds (the patch kept them apart).
Both are outcomes of the server's state, not of time.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer

from localcloud import motolocks, motoprocess, outbox
from localcloud.motopatch import Patch

CONFIG = Config(retries={"max_attempts": 1}, max_pool_connections=16)
# Bounds on waits for an outcome; reached only when a test is about to fail.
LIMIT_SECONDS = 60.0
ACCOUNT = "123456789012"
REGION = "us-east-1"


@pytest.fixture(scope="module", name="endpoint")
def _endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    outbox.serve(server)
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        server._server.server_close()  # stop() leaves the listening socket open


def client(endpoint: str, service: str) -> Any:
    return boto3.session.Session(region_name=REGION).client(
        service, endpoint_url=endpoint, config=CONFIG
    )


def every_patch_but(*left_out: Patch) -> tuple[Patch, ...]:
    """What ``motoprocess.prepare()`` installs, without ``left_out``."""
    return tuple(p for p in motoprocess.patches() if p not in left_out)


class Hold:
    """Stops the first call of ``owner.name`` that ``when`` accepts until :meth:`release`.

    ``when`` sees the call's arguments (and, with ``after``, its result: the
    call is then held once it returned). Installed with ``monkeypatch``.
    """

    def __init__(
        self,
        monkeypatch: pytest.MonkeyPatch,
        owner: Any,
        name: str,
        when: Callable[..., bool] = lambda *args, **kwargs: True,
        after: bool = False,
    ):
        self.reached = threading.Event()
        self._released = threading.Event()
        self._armed = True
        self._lock = threading.Lock()
        original = getattr(owner, name)

        def held(*args: Any, **kwargs: Any) -> Any:
            if not after:
                self._stop_if(when(*args, **kwargs))
            result = original(*args, **kwargs)
            if after:
                self._stop_if(when(result, *args, **kwargs))
            return result

        monkeypatch.setattr(owner, name, held)

    def _stop_if(self, wanted: bool) -> None:
        with self._lock:
            if not (wanted and self._armed):
                return
            self._armed = False
        self.reached.set()
        self._released.wait(LIMIT_SECONDS)

    def release(self) -> None:
        self._released.set()


def waiting_for(lock: Any) -> bool:
    """Whether some thread is blocked entering one of motolocks' locked sections on ``lock``."""
    for frame in sys._current_frames().values():
        code = frame.f_code
        if code.co_filename != motolocks.__file__ or code.co_name != "locked":
            continue
        if frame.f_locals.get("lock") is lock:
            return True
    return False


class Outcome:
    """What a request in a race returned, or the error it raised."""

    def __init__(self, call: Callable[[], Any]):
        self.value: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(call,), daemon=True)

    def _run(self, call: Callable[[], Any]) -> None:
        try:
            self.value = call()
        except BaseException as error:  # asserted on the test's thread
            self.error = error


def race(
    hold: Hold, first: Callable[[], Any], second: Callable[[], Any], lock: Any
) -> tuple[Outcome, Outcome, bool]:
    """Run ``first`` until ``hold`` stops it inside moto, then ``second``.

    ``first`` goes on once ``second`` finished or waits for ``lock``; returns
    both outcomes and whether ``second`` had to wait.
    """
    one, two = Outcome(first), Outcome(second)
    one.thread.start()
    assert hold.reached.wait(LIMIT_SECONDS), "the first request never reached the hold"
    two.thread.start()
    waited = False
    pause = threading.Event()  # never set: a sleep that is not a timing assumption
    for _ in range(int(LIMIT_SECONDS / 0.01)):
        if not two.thread.is_alive():
            break
        if waiting_for(lock):
            waited = True
            break
        pause.wait(0.01)
    else:
        raise AssertionError("the second request neither finished nor waited for the lock")
    hold.release()
    one.thread.join(LIMIT_SECONDS)
    two.thread.join(LIMIT_SECONDS)
    assert not one.thread.is_alive() and not two.thread.is_alive()
    return one, two, waited


def inside(name: str) -> bool:
    """Whether some thread is running a function called ``name``."""
    for frame in sys._current_frames().values():
        while frame is not None:
            if frame.f_code.co_name == name:
                return True
            frame = frame.f_back
    return False


def after_a_wait(
    poll: Callable[[], Any], send: Callable[[], Any], lock: Any
) -> tuple[Outcome, Outcome, bool]:
    """Start ``poll``; once it waits in moto's ``wait_for_messages``, run ``send``.

    Returns both outcomes, and whether ``send`` had to wait for ``lock``.
    """
    polled, sent = Outcome(poll), Outcome(send)
    polled.thread.start()
    pause = threading.Event()
    for _ in range(int(LIMIT_SECONDS / 0.01)):
        if inside("wait_for_messages"):
            break
        pause.wait(0.01)
    else:
        raise AssertionError("the poll never waited")
    sent.thread.start()
    blocked = False
    while sent.thread.is_alive() and not blocked:
        blocked = waiting_for(lock)
        pause.wait(0.01)
    polled.thread.join(LIMIT_SECONDS)
    sent.thread.join(LIMIT_SECONDS)
    assert not polled.thread.is_alive() and not sent.thread.is_alive()
    return polled, sent, blocked
