"""What an ops command acts on: a stage's declared stack, at whatever endpoint boto3 is set to.

Names come from the one declared stack (``infra.stack``), never
from the command line, so ``ops`` and the provisioner cannot disagree about
what a stage holds. The endpoint is boto3's own choice: ``AWS_ENDPOINT_URL``
for the local cloud, the normal AWS configuration otherwise. The ``local``
stage needs neither: where the environment sets no endpoint, region or
credentials, its clients use the local cloud's, as the API's do
(:func:`chalicelib.aws.local_defaults`), so ``python -m ops status`` works in
a fresh shell next to ``make run``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import urlsplit

from chalicelib.aws import Clients, local_defaults
from infra.outputs import Outputs
from infra.provision import Provisioner
from infra.resources import Stack
from infra.stack import declare
from infra.stageconfig import StageConfig

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# Every service a local-only command touches; each must resolve to a local endpoint.
LOCAL_CHECKED_SERVICES = ("sqs", "dynamodb", "s3", "cloudwatch")


def default_stage() -> str:
    return os.environ.get("EVENTFLOW_STAGE", "local")


def is_local_url(url: str | None) -> bool:
    return bool(url) and urlsplit(url).hostname in LOCAL_HOSTS


def stage_clients(stage: str) -> Clients:
    """boto3's configuration, with the local cloud's defaults for the ``local`` stage."""
    return Clients(defaults=local_defaults(stage))


@dataclass
class Target:
    stage: str
    # None: the stage's own (stage_clients), made once the stage is known.
    clients: Clients = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.clients is None:
            self.clients = stage_clients(self.stage)

    @cached_property
    def stage_config(self) -> StageConfig:
        return StageConfig.load(self.stage)

    @cached_property
    def stack(self) -> Stack:
        return declare(self.stage_config)

    @cached_property
    def outputs(self) -> Outputs:
        """Names, URLs and ARNs of the provisioned stack; raises ProvisionError if absent."""
        return Provisioner(self.clients).describe(self.stack)

    def endpoint(self, service: str = "sqs") -> str:
        return self.clients(service).meta.endpoint_url

    @property
    def is_local(self) -> bool:
        """True only when every service this CLI uses resolves to this machine."""
        return all(is_local_url(self.endpoint(s)) for s in LOCAL_CHECKED_SERVICES)
