"""boto3 clients, built lazily and once, with explicit retry and timeout settings.

boto3 honours ``AWS_ENDPOINT_URL`` (and ``AWS_ENDPOINT_URL_<SERVICE>``) by
itself, so the same code talks to the local cloud or to a real account.

Two more things live here, because they are about reaching AWS at all:

* :func:`local_defaults`: the ``local`` stage needs no AWS setup. When the
  environment names no region, endpoint or credentials, its clients use the
  local cloud's (``us-east-1``, ``http://127.0.0.1:$EVENTFLOW_AWS_PORT``,
  dummy keys), so ``chalice local --stage local`` works next to a running
  ``python -m localcloud up``. Whatever the environment sets wins; other
  stages get nothing from here.
* :func:`unavailable`: the one translation of "this AWS dependency cannot be
  reached or used" (no region, no or rejected credentials, endpoint down,
  throttled or failing after every retry, a missing table or queue) into
  :class:`~chalicelib.errors.ServiceUnavailable`, naming the service. Every
  client notes its service on the errors it raises, so the name is exact
  even when all services share one endpoint.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from chalicelib.errors import ServiceUnavailable

if TYPE_CHECKING:
    import boto3
    from botocore.config import Config

# boto3 and botocore are imported where they are first used, not here: they
# are most of a cold start's import time, and ``app.py`` imports this module
# (see chalicelib/lazy.py). A function pays for them when it makes its first
# client, and a request that never calls AWS (GET /health) never does.


@functools.cache
def client_config() -> Config:
    """What every client is built with: explicit retries and timeouts."""
    from botocore.config import Config

    return Config(
        # Standard mode retries throttling and transient errors with backoff;
        # the bound keeps a Lambda invocation from spending its whole timeout on one call.
        retries={"max_attempts": 5, "mode": "standard"},
        connect_timeout=5,
        read_timeout=30,
        # moto's DynamoDB Streams endpoint 404s when the account id is put in the host.
        account_id_endpoint_mode="disabled",
    )


# The local cloud (``python -m localcloud up``): its region, default port and
# dummy keys (moto accepts any).
LOCAL_REGION = "us-east-1"
LOCAL_AWS_PORT = 5000
LOCAL_ACCESS_KEY = "testing"

# Where a failed call notes its client's service: an attribute of the raised
# exception, or a key of the error response that a ClientError carries.
SERVICE_ATTRIBUTE = "eventflow_aws_service"
SERVICE_KEY = "EventflowService"


def local_defaults(stage: str, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """Client arguments that point the ``local`` stage at the local cloud, where unset."""
    if stage != "local":
        return {}
    defaults: dict[str, str] = {}
    if not (environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")):
        defaults["region_name"] = LOCAL_REGION
    if not environ.get("AWS_ENDPOINT_URL"):
        port = environ.get("EVENTFLOW_AWS_PORT") or str(LOCAL_AWS_PORT)
        defaults["endpoint_url"] = f"http://127.0.0.1:{port}"
    if not (environ.get("AWS_ACCESS_KEY_ID") or environ.get("AWS_PROFILE")):
        defaults["aws_access_key_id"] = LOCAL_ACCESS_KEY
        defaults["aws_secret_access_key"] = LOCAL_ACCESS_KEY
    return defaults


class Clients:
    """One lazily created client per service, shared by every caller.

    ``defaults`` are extra ``client()`` arguments (see :func:`local_defaults`).
    """

    def __init__(
        self,
        session: boto3.session.Session | None = None,
        config: Config | None = None,
        defaults: Mapping[str, str] | None = None,
    ):
        self._session = session
        self._config = config
        self._defaults = dict(defaults or {})
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __call__(self, service: str) -> Any:
        client = self._clients.get(service)
        if client is None:
            with self._lock:
                client = self._clients.get(service)
                if client is None:
                    client = self._create(service)
                    self._clients[service] = client
        return client

    def _create(self, service: str) -> Any:
        import boto3
        from botocore.exceptions import NoRegionError

        session = self._session or boto3.session.Session()
        try:
            config = self._config if self._config is not None else client_config()
            client = session.client(service, config=config, **self._defaults)
        except NoRegionError as error:
            setattr(error, SERVICE_ATTRIBUTE, service)
            raise
        client.meta.events.register("after-call-error", _note_service(service))
        client.meta.events.register("after-call", _note_service_in_error_response(service))
        return client

    @property
    def s3(self) -> Any:
        return self("s3")

    @property
    def sqs(self) -> Any:
        return self("sqs")

    @property
    def dynamodb(self) -> Any:
        return self("dynamodb")

    @property
    def sns(self) -> Any:
        return self("sns")

    @property
    def sts(self) -> Any:
        return self("sts")


def _note_service(service: str):
    def note(exception: BaseException, **_: Any) -> None:
        setattr(exception, SERVICE_ATTRIBUTE, service)

    return note


def _note_service_in_error_response(service: str):
    # A ClientError is raised after this event, around this very dict.
    def note(http_response: Any, parsed: Any, **_: Any) -> None:
        if http_response.status_code >= 300 and isinstance(parsed, dict):
            parsed[SERVICE_KEY] = service

    return note


def service_of(error: BaseException) -> str:
    """The AWS service whose client raised ``error`` ("aws" if unknown)."""
    from botocore.exceptions import ClientError

    service = getattr(error, SERVICE_ATTRIBUTE, None)
    if service is None and isinstance(error, ClientError):
        service = error.response.get(SERVICE_KEY)
    return service or "aws"


# Error codes that mean "cannot use the service now", whoever asks.
_THROTTLED = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "SlowDown",
        "RequestThrottled",
        "RequestThrottledException",
    }
)
_CREDENTIALS_REJECTED = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidSignatureException",
        "ExpiredToken",
        "ExpiredTokenException",
    }
)
_MISSING_RESOURCE = frozenset(
    {
        "ResourceNotFoundException",
        "NoSuchBucket",
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
    }
)


def unavailable(error: BaseException) -> ServiceUnavailable | None:
    """``error`` as a 503 naming the AWS service, or None when it means something else."""
    problem = _problem(error)
    if problem is None:
        return None
    result = ServiceUnavailable.dependency(service_of(error), problem)
    result.__cause__ = error
    return result


def _problem(error: BaseException) -> str | None:
    from botocore.exceptions import (
        ClientError,
        ConnectionClosedError,
        CredentialRetrievalError,
        EndpointConnectionError,
        HTTPClientError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
    )
    from botocore.exceptions import ConnectionError as BotoConnectionError

    if isinstance(error, NoRegionError):
        return "no AWS region is configured (set AWS_DEFAULT_REGION)"
    if isinstance(error, (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError)):
        return "no usable AWS credentials were found"
    if isinstance(error, EndpointConnectionError):
        return f"cannot connect to {error.kwargs.get('endpoint_url', 'its endpoint')}"
    if isinstance(error, (BotoConnectionError, ConnectionClosedError, HTTPClientError)):
        return f"the connection failed ({type(error).__name__})"
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in _THROTTLED:
            return f"it is throttling requests ({code})"
        if code in _CREDENTIALS_REJECTED:
            return f"it rejected the credentials ({code})"
        if code in _MISSING_RESOURCE:
            return f"a resource it needs does not exist ({code}); is the stage provisioned?"
        if isinstance(status, int) and status >= 500:
            return f"it is failing ({code or status})"
    return None
