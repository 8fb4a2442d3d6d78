"""``python -m ops [--stage STAGE] COMMAND ...``.

Each command is a module with ``register(subparsers)``, which adds its parser
and sets ``run(args, target, console) -> exit code`` as its default. To add a
command, write such a module and list it in :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import os
import sys
from types import ModuleType

from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console

from infra.provision import ProvisionError
from infra.stageconfig import UnknownStageError
from ops import dlq, events, ingest, mail, reset, status, upload
from ops.target import Target, default_stage

# The one place to add a command module (e.g. ``dlq``, ``ingest``).
COMMANDS: list[ModuleType] = [status, upload, reset, dlq, ingest, events, mail]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ops", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--stage",
        default=default_stage(),
        help="stage whose resources to act on (default: $EVENTFLOW_STAGE or local)",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.register(subparsers)
    return parser


def _console() -> Console:
    console = Console()
    # Piped output would be cut to 80 columns, truncating keys and states; a
    # log or a pager can take wider lines.
    return console if console.is_terminal else Console(width=160)


def main(argv: list[str] | None = None, console: Console | None = None) -> int:
    args = build_parser().parse_args(argv)
    # The same default the Makefile exports; a real account's config usually sets one.
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    console = console or _console()
    try:
        return args.run(args, Target(args.stage), console)
    except (UnknownStageError, ProvisionError) as error:
        console.print(f"[red]error:[/] {error}")
        return 2
    except (ClientError, BotoCoreError) as error:
        console.print(f"[red]AWS error:[/] {error}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
