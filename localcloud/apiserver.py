"""The REST API, served by Chalice's own local server, in a thread.

Reusing ``chalice.local`` keeps routing, middleware, CORS and error shapes
exactly as ``chalice local`` has them. Two things are added:

* Nagle's algorithm is disabled on each connection. Chalice writes headers
  and body separately, and a keep-alive client otherwise waits about 40 ms
  for every reply (delayed ACK meeting Nagle).
* The server tracks its open connections, so that :meth:`ApiServer.stop` can
  end idle keep-alive connections and join every request thread. Chalice's
  server uses daemon threads and never closes them, which leaves threads
  behind in a process that runs several local clouds (the tests do).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from chalice.local import (
    ChaliceRequestHandler,
    CustomLocalChalice,
    LocalChalice,
    LocalDevServer,
    ThreadedHTTPServer,
)


class NoDelayRequestHandler(ChaliceRequestHandler):
    # StreamRequestHandler sets TCP_NODELAY on the connection when this is true.
    disable_nagle_algorithm = True

    def handle_one_request(self) -> None:
        # The server's hook wraps each request (the local cloud forwards the
        # request's EMF metrics, as Lambda's log service would for the API function).
        with self.server.around_request():
            super().handle_one_request()


class TrackingHTTPServer(ThreadedHTTPServer):
    """Chalice's threaded server, with joinable request threads and closable connections."""

    daemon_threads = False
    block_on_close = True

    def __init__(self, *args: Any, **kwargs: Any):
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self.around_request: Callable[[], AbstractContextManager[Any]] = contextlib.nullcontext
        super().__init__(*args, **kwargs)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Wake every request thread that waits on a keep-alive connection."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            # OSError: the client closed it already.
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


def _as_local_app(app: Any) -> Any:
    """Give the app the local-mode request context, as ``create_local_server`` does.

    ``chalice.local.create_local_server`` rebases the app's class every time
    it is called, which fails the second time in one process; and it cannot
    take a handler class. This does the same rebasing once.
    """
    if not isinstance(app, LocalChalice):
        CustomLocalChalice.__bases__ = (LocalChalice, app.__class__)
        app.__class__ = CustomLocalChalice
    return app


class ApiServer:
    """Serves a Chalice app on ``host:port`` (0 picks a free port) until :meth:`stop`."""

    def __init__(
        self,
        app: Any,
        config: Any,
        host: str = "127.0.0.1",
        port: int = 8000,
        around_request: Callable[[], AbstractContextManager[Any]] | None = None,
    ):
        self._dev_server = LocalDevServer(
            _as_local_app(app),
            config,
            host,
            port,
            handler_cls=NoDelayRequestHandler,
            server_cls=TrackingHTTPServer,
        )
        self._server: TrackingHTTPServer = self._dev_server.server
        if around_request is not None:
            self._server.around_request = around_request
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        # serve_forever directly: LocalDevServer.serve_forever would print its own banner.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="localcloud-api",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.close_connections()
        # Closes the listening socket and joins the request threads.
        self._server.server_close()
