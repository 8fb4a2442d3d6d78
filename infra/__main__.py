"""``python -m infra provision|outputs|package|render|deploy|destroy --stage STAGE``.

Talks to whatever boto3 is configured for: ``AWS_ENDPOINT_URL`` for the local
cloud (or a moto server standing in for AWS), or a real account through the
usual AWS configuration; the ``local`` stage falls back to the local cloud's
endpoint and dummy credentials where none are set
(:func:`chalicelib.aws.local_defaults`). ``package`` and ``render`` make no AWS call.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.aws import Clients, local_defaults
from chalicelib.config import ConfigError
from infra.chalicecli import ChaliceError
from infra.deploy import DeployError
from infra.package import PackageError
from infra.provision import Provisioner, ProvisionError
from infra.stack import declare
from infra.stageconfig import (
    PROJECT_DIR,
    StageConfig,
    UndeployableStageError,
    UnknownStageError,
)

COMMANDS = ("provision", "outputs", "package", "render", "deploy", "destroy")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra", description=__doc__)
    parser.add_argument("command", choices=COMMANDS)
    parser.add_argument("--stage", required=True)
    parser.add_argument(
        "--format", default="cloudformation", choices=("cloudformation", "terraform")
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="output directory (default out/STAGE, out/STAGE-terraform or out/STAGE-render)",
    )
    parser.add_argument("--project-dir", type=Path, default=PROJECT_DIR)
    args = parser.parse_args(argv)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    try:
        config = StageConfig.load(args.stage, args.project_dir / ".chalice" / "config.json")
        if args.command in ("package", "deploy"):
            config.require_deployable()
        stack = declare(config)
        result = _run(args, config, stack)
    except (
        UnknownStageError,
        UndeployableStageError,
        ConfigError,
        ProvisionError,
        ChaliceError,
        DeployError,
        PackageError,
    ) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (BotoCoreError, ClientError) as error:  # no credentials, endpoint down, access denied
        print(f"AWS error: {error}", file=sys.stderr)
        return 1
    json.dump(result, sys.stdout, indent=2, sort_keys=True, default=str)
    print()
    return 0


def _run(args: argparse.Namespace, config: StageConfig, stack) -> dict:
    if args.command == "render":
        from infra.render import render

        files = render(stack, args.out or args.project_dir / "out" / f"{args.stage}-render")
        return {"written": [str(path) for path in files]}
    if args.command == "package":
        from infra.package import package

        # Separate directories: Terraform reads every *.tf.json in its directory.
        default = args.stage if args.format == "cloudformation" else f"{args.stage}-terraform"
        out = args.out or args.project_dir / "out" / default
        files = package(config, stack, args.project_dir, out, args.format)
        return {"written": [str(path) for path in files]}
    # The local stage finds the local cloud without exports, as the API and ops do.
    clients = Clients(defaults=local_defaults(args.stage))
    if args.command == "provision":
        return Provisioner(clients).apply(stack).to_dict()
    if args.command == "outputs":
        return Provisioner(clients).describe(stack).to_dict()
    from infra import deploy

    if args.command == "deploy":
        return deploy.deploy(clients, config, stack, args.project_dir)
    return deploy.destroy(clients, stack, args.project_dir)


if __name__ == "__main__":
    sys.exit(main())
