"""boto3 clients, built lazily and once, with explicit retry and timeout settings.

boto3 honours ``AWS_ENDPOINT_URL`` (and ``AWS_ENDPOINT_URL_<SERVICE>``) by
itself, so the same code talks to the local cloud or to a real account.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config

# Standard mode retries throttling and transient errors with backoff; the
# bound keeps a Lambda invocation from spending its whole timeout on one call.
CLIENT_CONFIG = Config(
    retries={"max_attempts": 5, "mode": "standard"},
    connect_timeout=5,
    read_timeout=30,
    # moto's DynamoDB Streams endpoint 404s when the account id is put in the host.
    account_id_endpoint_mode="disabled",
)


class Clients:
    """One lazily created client per service, shared by every caller."""

    def __init__(
        self, session: boto3.session.Session | None = None, config: Config = CLIENT_CONFIG
    ):
        self._session = session
        self._config = config
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __call__(self, service: str) -> Any:
        client = self._clients.get(service)
        if client is None:
            with self._lock:
                client = self._clients.get(service)
                if client is None:
                    session = self._session or boto3.session.Session()
                    client = session.client(service, config=self._config)
                    self._clients[service] = client
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
