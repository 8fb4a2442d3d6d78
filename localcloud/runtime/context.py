"""The Lambda context object handed to each in-process invocation.

It carries the attributes the Python runtime documents (``function_name``,
``aws_request_id``, ``memory_limit_in_mb``, ``invoked_function_arn``, log group
and stream) and a ``get_remaining_time_in_millis()`` measured against the
function's ``lambda_timeout`` from the stage config, so handlers that budget
their work by the remaining time behave as they would in Lambda.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

# moto's default account: ARNs built here must match the ARNs moto returns.
ACCOUNT_ID = "123456789012"


@dataclass
class LambdaContext:
    function_name: str
    memory_limit_in_mb: int
    timeout_seconds: float
    region: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    client_context: None = None
    identity: None = None
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds
        self.invoked_function_arn = (
            f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{self.function_name}"
        )
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        day = time.strftime("%Y/%m/%d", time.gmtime())
        self.log_stream_name = f"{day}/[$LATEST]{self.aws_request_id.replace('-', '')}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))
