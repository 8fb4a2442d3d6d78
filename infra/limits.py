"""Per-stage retention and throttling, with the reason for each number.

The declared stack (:mod:`infra.stack`) reads these once and every renderer
takes them from there. A stage not listed here gets ``dev``'s values.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StageLimits:
    # CloudWatch Logs retention of every function's log group and of the API's
    # access log (one of the values CloudWatch accepts: 1, 3, 5, 7, 14, 30, 60,
    # 90, ...). The logs name callers (the audit trail) and order ids, so
    # they are kept for a bounded time, not forever.
    log_retention_days: int
    # Days after which the current version of an upload (incoming/) or of a
    # rejects report (rejects/) expires; its old versions go 30 days later.
    upload_retention_days: int
    # API Gateway stage throttling, for all clients together: the steady rate
    # (requests per second) and the burst the token bucket allows.
    api_rate_limit: float
    api_burst_limit: int


LIMITS: dict[str, StageLimits] = {
    # A developer's stage: short retention, and a rate a test run cannot reach
    # by accident but a runaway loop hits quickly.
    "dev": StageLimits(
        log_retention_days=14, upload_retention_days=7, api_rate_limit=20, api_burst_limit=40
    ),
    # Production: 90 days of logs covers a quarter's incident reviews and
    # access questions; an upload is kept 30 days after its ingest, long
    # enough to re-run it. 100 requests/s (burst 200) is far above the
    # expected traffic and far below the account's 10,000/s, so one client
    # cannot take the region's quota from the other APIs of the account, and a
    # public read loop is cut off at a bounded cost.
    "prod": StageLimits(
        log_retention_days=90, upload_retention_days=30, api_rate_limit=100, api_burst_limit=200
    ),
}


def for_stage(stage: str) -> StageLimits:
    return LIMITS.get(stage, LIMITS["dev"])
