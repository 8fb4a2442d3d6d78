"""What Chalice creates, declared for what Chalice cannot express.

Chalice creates the functions, their roles, their event-source mappings and
the REST API from ``app.py`` and ``.chalice/config.json``. What it cannot
set is declared here and added by every renderer: each function's grants
(:mod:`infra.iam` makes its policy of them), the mapping settings
(ReportBatchItemFailures, filter criteria, bisect, retry bounds, on-failure
destinations, MaximumConcurrency), the retries and on-failure destination of
functions that S3 invokes asynchronously, and the API stage's throttling and
access log.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from infra.grants import Grant


@dataclass(frozen=True)
class Function:
    """A Lambda function that Chalice creates; declared for IAM, alarms and the dashboard.

    ``name`` is Chalice's function name (``api_handler`` for the REST API), and
    ``physical_name`` the deployed name: ``eventflow-{stage}-{name}``, except
    ``eventflow-{stage}`` for the API handler.
    """

    name: str
    physical_name: str
    timeout: int
    memory_size: int
    # From .chalice/config.json (JSON holds no comments), which Chalice
    # renders in every path. Only prod reserves: each SQS consumer exactly its
    # MaximumConcurrency (less throttles the poller, and throttled messages
    # count as receives on the way to the DLQ), the API 20 so the workers
    # cannot starve it nor it them, the stream publisher 10 (one invocation
    # per shard). dev reserves nothing: a new account's quota is 10, and AWS
    # keeps 100 unreserved. docs/deploy.md has the table.
    reserved_concurrency: int | None = None
    # X-Ray active tracing (the stage's "xray" in .chalice/config.json).
    tracing: bool = False
    # What its own code calls (infra.grants), rendered by infra.iam; what its
    # event sources need follows from the mappings instead.
    grants: tuple[Grant, ...] = ()

    @property
    def log_group(self) -> str:
        return f"/aws/lambda/{self.physical_name}"


@dataclass(frozen=True)
class EventSourceSettings:
    """How Lambda polls one event source for one function, beyond what Chalice sets."""

    function: str
    source_key: str
    report_batch_item_failures: bool = True
    filter_patterns: tuple[str, ...] = ()
    bisect_batch_on_error: bool | None = None
    maximum_retry_attempts: int | None = None
    maximum_record_age_seconds: int | None = None
    on_failure_queue_key: str | None = None
    # SQS only: at most this many batches at once (chalicelib.concurrency).
    maximum_concurrency: int | None = None

    def stream_retry_settings(self) -> dict[str, bool | int]:
        """The stream-only retry settings that are set, under Lambda's names.

        The Lambda API and CloudFormation share these names; Terraform renames them.
        """
        values = {
            "BisectBatchOnFunctionError": self.bisect_batch_on_error,
            "MaximumRetryAttempts": self.maximum_retry_attempts,
            "MaximumRecordAgeInSeconds": self.maximum_record_age_seconds,
        }
        return {name: value for name, value in values.items() if value is not None}


@dataclass(frozen=True)
class AsyncInvokeSettings:
    """How Lambda retries a function's asynchronous invocations (S3, SNS), and where
    the events it gives up on go: a :class:`FailureQueue`, as Lambda's on-failure
    destination record (the event, the error, the attempts)."""

    function: str
    on_failure_queue_key: str
    # Lambda's default, written down so every renderer sets the same value.
    maximum_retry_attempts: int = 2
    maximum_event_age_seconds: int | None = None


@dataclass(frozen=True)
class Api:
    """The REST API's stage (Chalice creates the API): throttling and access logs."""

    stage_name: str
    rate_limit: float
    burst_limit: int
    access_log_group: str
    # One JSON line per request: who (the caller's IAM principal), what (the
    # route template, not the path with its ids), when, and the outcome.
    ACCESS_LOG_FORMAT = json.dumps(
        {
            "requestId": "$context.requestId",
            "time": "$context.requestTimeEpoch",
            "httpMethod": "$context.httpMethod",
            "route": "$context.resourcePath",
            "status": "$context.status",
            "latencyMs": "$context.responseLatency",
            "caller": "$context.identity.caller",
            "userArn": "$context.identity.userArn",
            "sourceIp": "$context.identity.sourceIp",
        },
        sort_keys=True,
    )
