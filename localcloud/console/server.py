"""The console's HTTP server: static files and JSON routes, on 127.0.0.1 only.

A threaded ``http.server``: the page polls a few routes every second, and a
slow route (a redrive, an upload) must not hold the others. Every route
answers JSON; an error is a JSON body with ``message`` and the status the
backend chose, never a traceback.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import re
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from localcloud.console.backend import ApiAnswer, Backend, ConsoleError
from ops.target import Target

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
DEFAULT_PORT = 8080
STATIC = Path(__file__).parent / "static"
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
NAME = r"([A-Za-z0-9_.-]+)"


class NotLocalError(RuntimeError):
    """The console was pointed at something other than the local cloud."""


Route = tuple[str, re.Pattern[str], Callable[..., Any]]


def _routes(backend: Backend) -> list[Route]:
    def body_json(handler: Handler) -> Any:
        raw = handler.read_body(1024 * 1024)
        try:
            return json.loads(raw or b"null")
        except ValueError:
            raise ConsoleError(400, "the request body is not JSON") from None

    def upload(handler: Handler, query: dict[str, list[str]]) -> Any:
        filename = (query.get("filename") or [""])[0]
        return backend.upload(filename, handler.read_body(MAX_UPLOAD_BYTES))

    table: list[tuple[str, str, Callable[..., Any]]] = [
        ("GET", "/api/health", lambda h, q: backend.health()),
        ("GET", "/api/map", lambda h, q: backend.map()),
        ("GET", "/api/state", lambda h, q: backend.state()),
        ("GET", "/api/metrics", lambda h, q: backend.series()),
        ("GET", "/api/alarms", lambda h, q: backend.alarms()),
        ("GET", "/api/jobs", lambda h, q: backend.jobs()),
        ("GET", f"/api/jobs/{NAME}/rejects", lambda h, q, i: backend.rejects(i)),
        ("POST", "/api/upload", upload),
        ("GET", f"/api/queues/{NAME}/peek", lambda h, q, n: backend.peek(n)),
        ("POST", f"/api/queues/{NAME}/redrive", lambda h, q, n: backend.redrive(n)),
        ("POST", f"/api/queues/{NAME}/replay", lambda h, q, n: backend.replay(n)),
        ("GET", "/api/products", lambda h, q: backend.products()),
        ("GET", "/api/orders", lambda h, q: backend.orders((q.get("status") or [None])[0])),
        ("POST", "/api/orders", lambda h, q: backend.place_order(body_json(h))),
        ("GET", f"/api/orders/{NAME}", lambda h, q, o: backend.order(o)),
        ("PATCH", f"/api/orders/{NAME}", lambda h, q, o: backend.move_order(o, body_json(h))),
        ("GET", "/api/mail", lambda h, q: {"messages": backend.mail()}),
    ]
    return [(method, re.compile(pattern + "$"), view) for method, pattern, view in table]


class Handler(BaseHTTPRequestHandler):
    server: ConsoleHTTPServer
    # One write per response: no Nagle delay on keep-alive polls.
    disable_nagle_algorithm = True
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("console: " + format, *args)

    def read_body(self, limit: int) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > limit:
            raise ConsoleError(413, f"the body is over {limit} bytes")
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        if method == "GET" and not parts.path.startswith("/api/"):
            self._static(parts.path)
            return
        query = parse_qs(parts.query)
        for route_method, pattern, view in self.server.routes:
            match = pattern.match(parts.path)
            if match and route_method == method:
                self._answer(view, query, *match.groups())
                return
        self._json(HTTPStatus.NOT_FOUND, {"message": f"no route {method} {parts.path}"})

    def _answer(self, view: Callable[..., Any], query: dict[str, list[str]], *args: str) -> None:
        try:
            result = view(self, query, *args)
        except ConsoleError as error:
            self._json(error.status, {"message": str(error)})
        except (ClientError, BotoCoreError, OSError) as error:
            # The local cloud is starting, or gone: the page says what it waits for.
            self._json(
                HTTPStatus.SERVICE_UNAVAILABLE, {"message": f"{type(error).__name__}: {error}"}
            )
        except Exception:
            log.exception("console route failed: %s", self.path)
            self._json(
                HTTPStatus.INTERNAL_SERVER_ERROR, {"message": "the console failed; see its log"}
            )
        else:
            if isinstance(result, ApiAnswer):
                self._json(result.status, result.body)
            else:
                self._json(HTTPStatus.OK, result)

    def _json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload, default=str).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _static(self, path: str) -> None:
        name = "index.html" if path in ("", "/") else path.lstrip("/")
        file = (STATIC / name).resolve()
        if STATIC.resolve() not in file.parents or not file.is_file():
            self._json(HTTPStatus.NOT_FOUND, {"message": f"no file {path}"})
            return
        data = file.read_bytes()
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", mimetypes.guess_type(file.name)[0] or "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class ConsoleHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    routes: list[Route]


class ConsoleServer:
    """The console for one local cloud; refuses to start against anything else."""

    def __init__(self, target: Target, api_endpoint: str | None, port: int = DEFAULT_PORT):
        if not target.is_local:
            raise NotLocalError(
                "the console runs only against the local cloud; the AWS endpoint is "
                f"{target.endpoint()}, not this machine"
            )
        self._server = ConsoleHTTPServer((HOST, port), Handler)
        self._server.routes = _routes(Backend(target, api_endpoint))
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> ConsoleServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="localcloud-console", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(10)
            self._thread = None
        self._server.server_close()
