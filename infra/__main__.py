"""``python -m infra provision|outputs --stage STAGE``.

Talks to whatever boto3 is configured for: ``AWS_ENDPOINT_URL`` for the local
cloud, or a real account through the usual AWS configuration.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from chalicelib.aws import Clients
from infra.declaration import declare
from infra.provision import Provisioner, ProvisionError
from infra.stageconfig import StageConfig, UnknownStageError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra", description=__doc__)
    parser.add_argument("command", choices=("provision", "outputs"))
    parser.add_argument("--stage", required=True)
    args = parser.parse_args(argv)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    try:
        stack = declare(StageConfig.load(args.stage))
        provisioner = Provisioner(Clients())
        if args.command == "provision":
            outputs = provisioner.apply(stack)
        else:
            outputs = provisioner.describe(stack)
    except (UnknownStageError, ProvisionError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    json.dump(outputs.to_dict(), sys.stdout, indent=2, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
