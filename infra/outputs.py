"""What provisioning a stack leaves behind: its physical names and ARNs.

The provisioner returns one (:mod:`infra.provision`), and ``describe`` reads
one back from a stage already provisioned; the local cloud's runtime, the
operator's tools and the tests read names from it without provisioning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chalicelib.config import ORDERS_STREAM_ARN_VARIABLE


@dataclass
class Outputs:
    """Physical names and ARNs of a provisioned stack, keyed by declaration key."""

    region: str
    tables: dict[str, dict[str, str]] = field(default_factory=dict)
    queues: dict[str, dict[str, str]] = field(default_factory=dict)
    buckets: dict[str, dict[str, str]] = field(default_factory=dict)
    topics: dict[str, dict[str, str]] = field(default_factory=dict)
    keys: dict[str, dict[str, str]] = field(default_factory=dict)
    log_groups: dict[str, dict[str, str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "keys": self.keys,
            "log_groups": self.log_groups,
            "tables": self.tables,
            "queues": self.queues,
            "buckets": self.buckets,
            "topics": self.topics,
        }

    def app_environment(self) -> dict[str, str]:
        """What ``app.py`` must find in the environment at import and only provisioning
        knows: the orders stream's ARN, whose label DynamoDB mints at creation."""
        stream_arn = self.tables.get("orders", {}).get("stream_arn")
        return {ORDERS_STREAM_ARN_VARIABLE: stream_arn} if stream_arn else {}
