"""The local outbox: what SES "sent", served where LocalStack serves it.

``GET {endpoint}/_aws/ses`` answers, in LocalStack's shape::

    {"messages": [{"Id", "Region", "Source", "Destination": {"ToAddresses": [...]},
                   "Subject", "Body": {"text_part", "html_part"}, "Timestamp"}]}

optionally only the messages whose sender or a recipient is ``?email=ADDRESS``;
``DELETE {endpoint}/_aws/ses`` empties it. Tests, ``python -m ops mail`` and
the status view read it.

The messages are moto's own (each SES backend's ``sent_messages``), so moto's
reset empties the outbox too. moto keeps one body per message (the HTML part
when there is one) and no time, so :func:`install` patches ``SendEmail`` to
note, on each message it stores, both parts and when it was sent
(:func:`uninstall` gives moto its own ``SendEmail`` back). Mail sent
by other operations (raw, templated) is not listed: eventflow only sends
``SendEmail``.

:func:`serve` wraps the WSGI application of a running moto server, so the
outbox shares moto's host and port.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from email.utils import parseaddr
from typing import Any
from urllib.parse import parse_qs

from localcloud.motopatch import Patch, Target

PATH = "/_aws/ses"
# Where install() notes what moto does not keep, on each stored Message.
NOTE = "eventflow_outbox"

# The body parts of the SendEmail request being handled on this thread.
_request = threading.local()


def _noting_parts(respond: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(respond)
    def send_email_response(self: Any) -> Any:
        _request.parts = (
            self._get_param("Message.Body.Text.Data"),
            self._get_param("Message.Body.Html.Data"),
        )
        try:
            return respond(self)
        finally:
            _request.parts = None

    return send_email_response


def _keeping_parts(store: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(store)
    def send_email_stored(self: Any, source: str, subject: str, body: str, *args: Any) -> Any:
        message = store(self, source, subject, body, *args)
        text, html = getattr(_request, "parts", None) or (body, None)
        setattr(message, NOTE, {"text": text, "html": html, "at": _now()})
        return message

    return send_email_stored


SEND_EMAIL = Patch(
    "outbox: both body parts and the time of each SendEmail",
    {
        Target("moto.ses.responses", "EmailResponse", "send_email"): _noting_parts,
        Target("moto.ses.models", "SESBackend", "send_email"): _keeping_parts,
    },
)
PATCHES = (SEND_EMAIL,)


def install() -> None:
    """Make moto's SendEmail keep both body parts and the time (undo with :func:`uninstall`)."""
    SEND_EMAIL.install()


def uninstall() -> None:
    SEND_EMAIL.uninstall()


def installed() -> bool:
    return SEND_EMAIL.installed()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _backends() -> Iterable[Any]:
    from moto.ses.models import ses_backends

    for account in list(ses_backends.values()):
        yield from list(account.values())


def _addresses(message: Any) -> set[str]:
    found = {parseaddr(message.source)[1].lower()}
    for addresses in (message.destinations or {}).values():
        found.update(parseaddr(a)[1].lower() for a in addresses)
    return found


def messages(email: str | None = None) -> list[dict[str, Any]]:
    """Every message SES accepted, oldest first, in LocalStack's shape."""
    from moto.ses.models import Message

    wanted = parseaddr(email)[1].lower() if email else None
    out = []
    for backend in _backends():
        for message in list(backend.sent_messages):
            if not isinstance(message, Message):
                continue
            if wanted and wanted not in _addresses(message):
                continue
            note = getattr(message, NOTE, None) or {"text": message.body, "html": None, "at": None}
            destination = message.destinations or {}
            out.append(
                {
                    "Id": message.id,
                    "Region": backend.region_name,
                    "Source": message.source,
                    "Destination": {
                        kind: list(destination.get(kind) or [])
                        for kind in ("ToAddresses", "CcAddresses", "BccAddresses")
                        if destination.get(kind) or kind == "ToAddresses"
                    },
                    "Subject": message.subject,
                    "Body": {"text_part": note["text"], "html_part": note["html"]},
                    "Timestamp": note["at"],
                }
            )
    # Stable across regions; the notes' times order one process's sends.
    return sorted(out, key=lambda m: m["Timestamp"] or "")


def clear() -> int:
    """Empty the outbox; returns how many messages it held."""
    from moto.ses.models import Message

    dropped = 0
    for backend in _backends():
        kept = [m for m in backend.sent_messages if not isinstance(m, Message)]
        dropped += len(backend.sent_messages) - len(kept)
        backend.sent_messages[:] = kept
    return dropped


WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def middleware(app: WSGIApp) -> WSGIApp:
    """``app`` with the outbox served at :data:`PATH`; every other request goes to ``app``."""

    def serve_outbox(environ: dict[str, Any], start_response: Callable[..., Any]):
        if environ.get("PATH_INFO", "").rstrip("/") != PATH:
            return app(environ, start_response)
        method = environ.get("REQUEST_METHOD", "GET")
        if method == "GET":
            query = parse_qs(environ.get("QUERY_STRING", ""))
            email = (query.get("email") or [None])[0]
            return _json(start_response, "200 OK", {"messages": messages(email)})
        if method == "DELETE":
            clear()
            start_response("204 No Content", [("Content-Length", "0")])
            return [b""]
        return _json(
            start_response,
            "405 Method Not Allowed",
            {"error": f"{PATH} answers GET and DELETE, not {method}"},
            [("Allow", "GET, DELETE")],
        )

    return serve_outbox


def _json(start_response, status: str, body: Any, headers: list | None = None) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(
        status,
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(data))),
            *(headers or []),
        ],
    )
    return [data]


def serve(server: Any) -> None:
    """Serve the outbox from a started ``ThreadedMotoServer``, on its host and port.

    The messages carry both body parts and their time once :func:`install` ran
    (``motoprocess.prepare()`` does it)."""
    wsgi = getattr(server, "_server", None)
    if wsgi is None or not hasattr(wsgi, "app"):
        raise RuntimeError("moto's server is not running, or no longer a werkzeug server")
    wsgi.app = middleware(wsgi.app)
