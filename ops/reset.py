"""``reset``: empty the local cloud and provision the stage again.

moto's ``POST /moto-api/reset`` drops every resource and item at once, which
is what a developer wants between experiments, and what must never reach a
real account. So the command refuses unless every service endpoint the
stage's clients resolve is one address on this machine; a real AWS endpoint
has no such route anyway, but the refusal must not depend on that.
"""

from __future__ import annotations

import argparse
import urllib.request

from rich.console import Console

from infra.provision import Provisioner
from ops.target import LOCAL_CHECKED_SERVICES, Target

RESET_PATH = "/moto-api/reset"


class NotLocalError(RuntimeError):
    pass


def reset_url(target: Target) -> str:
    """moto's reset route on the one local endpoint that every checked service resolves to.

    The endpoints are the clients' own, so the ``local`` stage's fallback to
    the local cloud (no ``AWS_ENDPOINT_URL`` set) resets the cloud the other
    commands read, and a service routed to another machine or another port
    refuses the reset instead of emptying one moto and not the other.
    """
    endpoints = {target.endpoint(service).rstrip("/") for service in LOCAL_CHECKED_SERVICES}
    if not target.is_local or len(endpoints) != 1:
        raise NotLocalError(
            "reset only works against the local cloud: every service must resolve to "
            "one http://127.0.0.1:<port> (AWS_ENDPOINT_URL, and no AWS_ENDPOINT_URL_<SERVICE> "
            f"elsewhere); the endpoints now are {', '.join(sorted(endpoints))}"
        )
    return endpoints.pop() + RESET_PATH


def reset(target: Target, timeout: float = 10.0) -> None:
    url = reset_url(target)
    request = urllib.request.Request(url, method="POST", data=b"")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        response.read()
    Provisioner(target.clients).apply(target.stack)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "reset", help="local cloud only: delete everything and provision the stage again"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, target: Target, console: Console) -> int:
    try:
        reset(target)
    except NotLocalError as error:
        console.print(f"[red]refused:[/] {error}")
        return 2
    console.print(f"reset {target.endpoint()} and provisioned stage {target.stage}")
    return 0
