"""``reset``: empty the local cloud and provision the stage again.

moto's ``POST /moto-api/reset`` drops every resource and item at once, which
is what a developer wants between experiments, and what must never reach a
real account. So the command refuses unless every service endpoint boto3
resolves is this machine; a real AWS endpoint has no such route anyway, but
the refusal must not depend on that.
"""

from __future__ import annotations

import argparse
import os
import urllib.request

from rich.console import Console

from infra.provision import Provisioner
from ops.target import Target

RESET_PATH = "/moto-api/reset"


class NotLocalError(RuntimeError):
    pass


def reset_url(target: Target) -> str:
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint or not target.is_local:
        raise NotLocalError(
            "reset only works against the local cloud: set AWS_ENDPOINT_URL to "
            "http://127.0.0.1:<port> (and no AWS_ENDPOINT_URL_<SERVICE> elsewhere); "
            f"the endpoint now is {target.endpoint()}"
        )
    return endpoint.rstrip("/") + RESET_PATH


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
