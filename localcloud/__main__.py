"""``python -m localcloud up [--no-api]|console|status|upload|reset``.

``up`` runs the local cloud in the foreground (``make run``); with
``--no-api`` it leaves the REST API to ``chalice local --stage local``.
``console`` serves the web console alone, for a local cloud already running
(``make run`` serves it too). The other
commands are ``python -m ops`` aimed at the local cloud: they default
``AWS_ENDPOINT_URL`` and the dummy credentials to the local endpoint
(``EVENTFLOW_AWS_PORT``) and the stage to ``local``.
"""

from __future__ import annotations

import argparse
import os
import sys

from chalicelib.aws import LOCAL_AWS_PORT
from localcloud.env import aws_exports

FORWARDED = ("status", "upload", "reset")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localcloud", description=__doc__)
    parser.add_argument("command", choices=("up", "console", *FORWARDED))
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments of an ops command")
    args = parser.parse_args(argv)
    if args.command == "up":
        if args.args not in ([], ["--no-api"]):
            parser.error(
                "up takes only --no-api; it reads EVENTFLOW_AWS_PORT, _API_PORT, _DEMO "
                "(a port of 0 picks a free one and prints it)"
            )
        from localcloud.up import main as up

        return up(serve_api="--no-api" not in args.args)
    if args.command == "console":
        from localcloud.console.cli import main as console

        return console()

    port = os.environ.get("EVENTFLOW_AWS_PORT") or str(LOCAL_AWS_PORT)
    for name, value in aws_exports(f"http://127.0.0.1:{port}").items():
        os.environ.setdefault(name, value)
    from ops.__main__ import main as ops

    return ops(["--stage", "local", args.command, *args.args])


if __name__ == "__main__":
    sys.exit(main())
