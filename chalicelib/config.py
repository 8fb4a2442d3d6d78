"""Stage settings and resource names, read from the environment.

Chalice applies a stage's ``environment_variables`` from ``.chalice/config.json``
before ``app.py`` is imported, so the decorators in ``app.py`` can take queue and
bucket names from here at import time. ``infra/`` builds the same object from
the config file, which keeps the names used by the functions and the names of
the provisioned resources from drifting apart.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

PROJECT = "eventflow"
INGEST_TRIGGERS = ("sqs", "s3")

# Uploads land under this prefix; only it is wired to the ingest trigger, so the
# rejects reports that ingest writes back into the same bucket never re-trigger it.
UPLOADS_PREFIX = "incoming/"
REJECTS_PREFIX = "rejects/"
# The operator's redrive (ops/redrive.py) marks each message it moves back with
# this message attribute (the DLQ's name), so a consumer knows the message may
# have been partly processed long ago.
REDRIVE_ATTRIBUTE = "eventflow-redriven-from"

# A failed SQS message comes back after about 2 s, then 4 s, 8 s ... at most
# its queue's visibility timeout (chalicelib.batch.RetryPolicy). Shipped with
# the functions, and read by infra's declaration: one number for both.
SQS_RETRY_BASE_SECONDS = 2

# How long a processed-event or processed-chunk marker lives in its table (TTL):
# longer than SQS's 14-day maximum retention, so no redelivered message can
# outlive the marker that makes it a no-op.
MARKER_TTL = timedelta(days=15)


# The stage decides, among other things, whether routes need IAM auth (app.py):
# it has no default, so a stage block that forgets it cannot deploy open. The
# local cloud and `chalice local` set it from the `local` stage's block.
STAGE_VARIABLE = "EVENTFLOW_STAGE"
LOCAL_STAGE = "local"

ORDERS_STREAM_ARN_VARIABLE = "EVENTFLOW_ORDERS_STREAM_ARN"
# Notifications: the address order emails come from (an SES identity of the stage).
MAIL_FROM_VARIABLE = "EVENTFLOW_MAIL_FROM"
DEFAULT_MAIL_FROM = "orders@example.com"
# Bounds on what one upload may cost (README, "Stage settings"): the rejects
# report lists at most this many rows and bytes, and a presigned upload (and
# the ingest, whatever wrote the object) takes at most this many bytes.
REJECTS_MAX_ROWS_VARIABLE = "EVENTFLOW_REJECTS_MAX_ROWS"
REJECTS_MAX_BYTES_VARIABLE = "EVENTFLOW_REJECTS_MAX_BYTES"
UPLOAD_MAX_BYTES_VARIABLE = "EVENTFLOW_UPLOAD_MAX_BYTES"
DEFAULT_REJECTS_MAX_ROWS = 10_000
DEFAULT_REJECTS_MAX_BYTES = 5 * 1024 * 1024
DEFAULT_UPLOAD_MAX_BYTES = 100 * 1024 * 1024


class ConfigError(ValueError):
    """A stage setting is missing or invalid."""


@dataclass(frozen=True)
class Settings:
    stage: str
    ingest_trigger: str = "sqs"
    uploads_bucket_override: str | None = None
    cors_origin: str | None = None
    # Stream labels are minted when the table is created, so the ARN is only
    # known after provisioning: the local cloud and `python -m infra deploy`
    # set it before app.py is imported; `chalice package` output gets it from
    # the template (infra/), which replaces the placeholder.
    orders_stream_arn_override: str | None = None
    # -- notifications: SES sends only from a verified identity (infra declares it).
    mail_from: str = DEFAULT_MAIL_FROM
    rejects_max_rows: int = DEFAULT_REJECTS_MAX_ROWS
    rejects_max_bytes: int = DEFAULT_REJECTS_MAX_BYTES
    upload_max_bytes: int = DEFAULT_UPLOAD_MAX_BYTES

    def __post_init__(self) -> None:
        if not self.stage or not self.stage.replace("-", "").isalnum():
            raise ConfigError(f"EVENTFLOW_STAGE {self.stage!r} must be letters, digits or '-'")
        if self.ingest_trigger not in INGEST_TRIGGERS:
            raise ConfigError(
                f"EVENTFLOW_INGEST_TRIGGER {self.ingest_trigger!r} must be one of {INGEST_TRIGGERS}"
            )
        local, _, domain = self.mail_from.partition("@")
        if not local or "." not in domain or " " in self.mail_from:
            raise ConfigError(f"{MAIL_FROM_VARIABLE} {self.mail_from!r} must be an email address")
        bounds = (
            (REJECTS_MAX_ROWS_VARIABLE, self.rejects_max_rows, 1),
            # Room for the header, one listed row and the truncation note.
            (REJECTS_MAX_BYTES_VARIABLE, self.rejects_max_bytes, 4096),
            (UPLOAD_MAX_BYTES_VARIABLE, self.upload_max_bytes, 1),
        )
        for variable, value, least in bounds:
            if value < least:
                raise ConfigError(f"{variable} {value} must be at least {least}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        stage = env.get(STAGE_VARIABLE)
        if not stage:
            raise ConfigError(
                f"{STAGE_VARIABLE} is not set: every stage's environment_variables in "
                ".chalice/config.json must name it (the local cloud sets 'local')"
            )
        return cls(
            stage=stage,
            ingest_trigger=env.get("EVENTFLOW_INGEST_TRIGGER", "sqs"),
            uploads_bucket_override=env.get("EVENTFLOW_UPLOADS_BUCKET") or None,
            cors_origin=env.get("EVENTFLOW_CORS_ORIGIN") or None,
            orders_stream_arn_override=env.get(ORDERS_STREAM_ARN_VARIABLE) or None,
            mail_from=env.get(MAIL_FROM_VARIABLE) or DEFAULT_MAIL_FROM,
            rejects_max_rows=_whole(env, REJECTS_MAX_ROWS_VARIABLE, DEFAULT_REJECTS_MAX_ROWS),
            rejects_max_bytes=_whole(env, REJECTS_MAX_BYTES_VARIABLE, DEFAULT_REJECTS_MAX_BYTES),
            upload_max_bytes=_whole(env, UPLOAD_MAX_BYTES_VARIABLE, DEFAULT_UPLOAD_MAX_BYTES),
        )

    def name(self, key: str) -> str:
        """Physical name of the stage's resource ``key``: ``eventflow-{stage}-{key}``."""
        return f"{PROJECT}-{self.stage}-{key}"

    @property
    def readings_table(self) -> str:
        return self.name("readings")

    @property
    def ingests_table(self) -> str:
        return self.name("ingests")

    @property
    def uploads_bucket(self) -> str:
        # Bucket names are global across all AWS accounts, so a deployed stage
        # usually needs its own override; the default suits the local cloud.
        return self.uploads_bucket_override or self.name("uploads")

    @property
    def ingest_queue(self) -> str:
        return self.name("ingest")

    @property
    def s3_events_queue(self) -> str:
        return self.name("s3-events")

    # -- orders ----------------------------------------------------------------

    @property
    def products_table(self) -> str:
        return self.name("products")

    @property
    def orders_table(self) -> str:
        return self.name("orders")

    @property
    def idempotency_table(self) -> str:
        return self.name("idempotency")

    @property
    def order_intake_queue(self) -> str:
        return self.name("order-intake.fifo")

    @property
    def order_events_topic(self) -> str:
        return self.name("order-events.fifo")

    @property
    def order_events_failed_queue(self) -> str:
        return self.name("order-events-failed")

    @property
    def inventory_queue(self) -> str:
        return self.name("inventory.fifo")

    # -- orders: analytics consumer -----------------------------------------------

    @property
    def analytics_queue(self) -> str:
        return self.name("analytics")

    @property
    def analytics_table(self) -> str:
        return self.name("daily-analytics")

    @property
    def orders_stream_arn(self) -> str:
        """The orders table's stream, or a placeholder of the same shape before provisioning."""
        return self.orders_stream_arn_override or (
            f"arn:aws:dynamodb:us-east-1:000000000000:table/{self.orders_table}/stream/unprovisioned"
        )

    # -- notifications ------------------------------------------------------------

    @property
    def notifications_queue(self) -> str:
        # Standard, not FIFO: emails need no order, and a standard queue scales.
        return self.name("notifications")


def _whole(env: Mapping[str, str], variable: str, default: int) -> int:
    text = env.get(variable)
    if not text:
        return default
    if not (text.isascii() and text.isdigit()):
        raise ConfigError(f"{variable} {text!r} must be a whole number")
    return int(text)


def dlq_name(queue_name: str) -> str:
    """Every queue's dead-letter queue is named after it."""
    if queue_name.endswith(".fifo"):
        return queue_name[: -len(".fifo")] + "-dlq.fifo"
    return queue_name + "-dlq"
