"""``mail [--email ADDRESS] [--clear] [--full] [--json]``: the local cloud's SES outbox.

The local cloud keeps what SES "sent" and serves it at ``GET
{endpoint}/_aws/ses`` (:mod:`localcloud.outbox`); this command lists it,
optionally only the mail from or to one address, or empties it. Real SES
keeps no copy of what it sends, so against a real account the command says
so, and where to look instead, rather than fail.
"""

from __future__ import annotations

import argparse
import json
import urllib.parse
import urllib.request
from typing import Any

from rich.console import Console
from rich.table import Table

from ops.target import Target, is_local_url

OUTBOX_PATH = "/_aws/ses"
TIMEOUT_SECONDS = 10.0


class NoOutboxError(RuntimeError):
    """The SES endpoint is real SES, which keeps no outbox."""


def outbox_url(ses_endpoint: str | None, email: str | None = None) -> str:
    """The outbox's URL at the SES endpoint; raises :class:`NoOutboxError` unless it is local."""
    if not ses_endpoint or not is_local_url(ses_endpoint):
        raise NoOutboxError(
            f"there is no outbox at {ses_endpoint}: real SES keeps no copy of the mail it "
            "sends. See its sending statistics (Send, Delivery, Bounce, Complaint in "
            "CloudWatch's AWS/SES namespace), or the claims notifications#<event_id> in "
            "the idempotency table for what eventflow sent."
        )
    url = ses_endpoint.rstrip("/") + OUTBOX_PATH
    return f"{url}?{urllib.parse.urlencode({'email': email})}" if email else url


def fetch(ses_endpoint: str | None, email: str | None = None) -> list[dict[str, Any]]:
    """The outbox's messages, oldest first."""
    url = outbox_url(ses_endpoint, email)
    with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
        return json.loads(response.read())["messages"]


def clear(ses_endpoint: str | None) -> None:
    request = urllib.request.Request(outbox_url(ses_endpoint), method="DELETE")
    with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
        response.read()


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("mail", help="local cloud: list (or empty) the SES outbox")
    parser.add_argument("--email", help="only mail from or to this address")
    parser.add_argument("--clear", action="store_true", help="empty the outbox")
    parser.add_argument("--full", action="store_true", help="print each mail's text")
    parser.add_argument("--json", action="store_true", help="print the outbox as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, target: Target, console: Console) -> int:
    endpoint = target.endpoint("ses")
    try:
        if args.clear:
            held = len(fetch(endpoint))
            clear(endpoint)
            console.print(f"emptied the outbox at {endpoint} ({held} message(s))")
            return 0
        messages = fetch(endpoint, args.email)
    except NoOutboxError as error:
        console.print(f"[yellow]no outbox:[/] {error}")
        return 2
    if args.json:
        console.print_json(data={"messages": messages})
        return 0
    console.print(_table(messages, args.email))
    if args.full:
        for message in messages:
            console.rule(f"{message['Subject']}")
            console.print(message["Body"]["text_part"] or message["Body"]["html_part"] or "")
    return 0


def _table(messages: list[dict[str, Any]], email: str | None) -> Table:
    title = f"Outbox: {len(messages)} message(s)" + (f" for {email}" if email else "")
    table = Table(title=title, title_justify="left")
    for column in ("sent", "from", "to", "subject"):
        table.add_column(column, overflow="fold")
    for message in messages:
        table.add_row(
            str(message.get("Timestamp") or ""),
            message["Source"],
            ", ".join(message["Destination"].get("ToAddresses", [])),
            message["Subject"],
        )
    return table
