"""Wires the domain objects to real AWS clients, once per process.

``app.py`` calls :func:`services` inside each handler, never at import time,
so importing the app makes no AWS call and creates no client. Tests build a
:class:`Services` of their own around moto.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from functools import cached_property

from chalicelib.aws import Clients, local_defaults
from chalicelib.clock import Clock
from chalicelib.config import SQS_RETRY_BASE_SECONDS, Settings, dlq_name


@dataclass
class Services:
    settings: Settings
    clients: Clients = field(default_factory=Clients)
    clock: Clock = field(default_factory=Clock)

    @cached_property
    def readings(self):
        from chalicelib.readings.store import ReadingStore

        return ReadingStore(self.clients.dynamodb, self.settings.readings_table)

    @cached_property
    def jobs(self):
        from chalicelib.readings.jobs import IngestJobs

        return IngestJobs(self.clients.dynamodb, self.settings.ingests_table, self.clock)

    @cached_property
    def sqs_retry(self):
        """Backoff for failed SQS messages; the cap is each queue's visibility timeout."""
        from chalicelib.batch import RetryPolicy

        return RetryPolicy(base_seconds=SQS_RETRY_BASE_SECONDS, uniform=self.clock.uniform)

    @cached_property
    def ingest_queue_url(self) -> str:
        return self.clients.sqs.get_queue_url(QueueName=self.settings.ingest_queue)["QueueUrl"]

    # -- orders ----------------------------------------------------------------

    @cached_property
    def products(self):
        from chalicelib.orders.products import ProductStore

        return ProductStore(self.clients.dynamodb, self.settings.products_table, self.clock)

    @cached_property
    def orders(self):
        from chalicelib.orders.store import OrderStore

        return OrderStore(
            self.clients.dynamodb,
            self.settings.orders_table,
            self.settings.idempotency_table,
            self.clock,
        )

    @cached_property
    def order_intake_dlq_url(self) -> str:
        name = dlq_name(self.settings.order_intake_queue)
        return self.clients.sqs.get_queue_url(QueueName=name)["QueueUrl"]

    @cached_property
    def account(self) -> tuple[str, str]:
        """(partition, account id) of the credentials in use; GetCallerIdentity needs no grant."""
        arn = self.clients.sts.get_caller_identity()["Arn"]
        parts = arn.split(":")
        return parts[1], parts[4]

    @cached_property
    def order_events_topic_arn(self) -> str:
        # SNS takes only ARNs, and an ARN needs the account: asked once per process.
        partition, account = self.account
        region = self.clients.sns.meta.region_name
        return f"arn:{partition}:sns:{region}:{account}:{self.settings.order_events_topic}"


@functools.cache
def services() -> Services:
    settings = Settings.from_env()
    # The local stage finds the local cloud without any AWS setup (see chalicelib.aws).
    return Services(settings, clients=Clients(defaults=local_defaults(settings.stage)))
