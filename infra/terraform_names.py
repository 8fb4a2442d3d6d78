"""Terraform resource names and ARN interpolations, shared by both rendered files.

A declared resource's Terraform name is its declaration key with ``-`` and
``/`` made ``_``. ARN templates (:mod:`infra.arns`) become interpolations of
the data sources Chalice's own file declares (``data.aws_partition.chalice``
and friends), so the rendered files are valid only next to Chalice's.
"""

from __future__ import annotations

from typing import Any

from infra import arns
from infra.resources import Queue

Blocks = dict[str, dict[str, Any]]

INTERPOLATIONS = {
    arns.PARTITION: "${data.aws_partition.chalice.partition}",
    arns.REGION: "${data.aws_region.chalice.name}",
    arns.ACCOUNT: "${data.aws_caller_identity.chalice.account_id}",
}


def interpolate(text: str) -> str:
    for placeholder, expression in INTERPOLATIONS.items():
        text = text.replace(placeholder, expression)
    return text


def name(key: str) -> str:
    """A Terraform resource name for a declaration key."""
    return key.replace("-", "_").replace("/", "_")


def queue_name(queue: Queue) -> str:
    return name(queue.key)


def dlq_name(queue: Queue) -> str:
    return name(queue.dlq_key)


def add(blocks: Blocks, kind: str, resource_name: str, body: dict[str, Any]) -> None:
    existing = blocks.setdefault(kind, {})
    if resource_name in existing:
        raise ValueError(f"{kind}.{resource_name} declared twice")
    existing[resource_name] = body
