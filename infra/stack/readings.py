"""The readings domain: CSV uploads to S3, chunks on a queue, readings in DynamoDB.

An upload under ``incoming/`` is announced to the ingest function, directly
(``on_s3_event``, the ``s3`` trigger) or through the ``s3-events`` queue (the
``sqs`` trigger, for stages packaged as CloudFormation, which cannot render
``on_s3_event``). The ingest function streams the file, puts its rows on the
``ingest`` queue in chunks and records the job; ``write_readings`` writes
each chunk.
"""

from __future__ import annotations

from chalicelib.config import REJECTS_PREFIX, UPLOADS_PREFIX
from chalicelib.readings import keys
from infra.functions import AsyncInvokeSettings
from infra.grants import Grant, ObjectAccess, QueueAccess, TableAccess
from infra.resources import (
    Bucket,
    FailureQueue,
    Index,
    KeyAttribute,
    MessageKind,
    QueueNotification,
    Table,
)
from infra.stack.parts import Domain, Stage

# What the ingest function does, whichever trigger starts it.
INGEST_GRANTS: tuple[Grant, ...] = (
    # GetObjectVersion: the bucket is versioned and S3 events name the version.
    ObjectAccess("uploads", UPLOADS_PREFIX, "GetObject GetObjectVersion"),
    # Rejects reports go up with upload_fileobj, which may use multipart.
    ObjectAccess("uploads", REJECTS_PREFIX, "PutObject AbortMultipartUpload"),
    QueueAccess("ingest", "SendMessage GetQueueUrl"),
    TableAccess("ingests", "GetItem PutItem UpdateItem"),
)

WRITER_GRANTS: tuple[Grant, ...] = (
    # BatchGetItem: a repeated chunk checks which readings were edited since.
    TableAccess("readings", "BatchWriteItem BatchGetItem"),
    # The chunk marker (Put) and the counters (Update) commit in one
    # TransactWriteItems; IAM has no action of that name and authorizes
    # each item's own action instead.
    TableAccess("ingests", "PutItem UpdateItem GetItem"),
)

API_GRANTS: tuple[Grant, ...] = (
    TableAccess("readings", "GetItem PutItem DeleteItem Query", indexes=True),
    TableAccess("ingests", "GetItem Query", indexes=True),
    # Presigned upload URLs carry the signer's permissions.
    ObjectAccess("uploads", UPLOADS_PREFIX, "PutObject"),
)


def declare(stage: Stage) -> Domain:
    settings = stage.settings
    readings = Table(
        key="readings",
        name=settings.readings_table,
        partition_key=KeyAttribute(keys.READING_PK),
        sort_key=KeyAttribute(keys.READING_SK),
        indexes=(
            Index(
                name=keys.BY_DATE_INDEX,
                partition_key=KeyAttribute(keys.BY_DATE_PK),
                sort_key=KeyAttribute(keys.BY_DATE_SK),
            ),
        ),
    )
    ingests = Table(
        key="ingests",
        name=settings.ingests_table,
        partition_key=KeyAttribute(keys.JOB_PK),
        indexes=(
            Index(
                name=keys.JOBS_BY_START_INDEX,
                partition_key=KeyAttribute(keys.JOBS_BY_START_PK),
                sort_key=KeyAttribute(keys.JOBS_BY_START_SK),
            ),
        ),
        ttl_attribute=keys.EXPIRES_AT,
    )
    ingest = "ingest_from_queue" if settings.ingest_trigger == "sqs" else "ingest_from_s3"
    domain = Domain(
        tables=(readings, ingests),
        queues=(
            stage.queue(
                "ingest", settings.ingest_queue, "write_readings", MessageKind.READINGS_CHUNK
            ),
        ),
        functions=(
            stage.function(ingest, INGEST_GRANTS),
            stage.function("write_readings", WRITER_GRANTS),
        ),
        event_sources=(stage.sqs_source("write_readings", "ingest"),),
        api_grants=API_GRANTS,
    )
    notifications: tuple[QueueNotification, ...] = ()
    if settings.ingest_trigger == "sqs":
        # S3 notifies a queue, which also gives S3 events retries and a DLQ.
        domain += Domain(
            queues=(
                stage.queue("s3-events", settings.s3_events_queue, ingest, MessageKind.S3_EVENT),
            ),
            event_sources=(stage.sqs_source(ingest, "s3-events"),),
        )
        notifications = (
            QueueNotification(queue_key="s3-events", prefix=UPLOADS_PREFIX, suffix=".csv"),
        )
    else:
        # S3 invokes ingest_from_s3 asynchronously: what Lambda gives up on
        # after its retries must land somewhere an operator can see and replay.
        domain += Domain(
            failure_queues=(
                FailureQueue(key="ingest-failures", name=settings.name("ingest-failures")),
            ),
            async_invokes=(
                AsyncInvokeSettings(function=ingest, on_failure_queue_key="ingest-failures"),
            ),
        )
    uploads = Bucket(
        key="uploads",
        name=settings.uploads_bucket,
        queue_notifications=notifications,
        # The local cloud serves S3 over plain HTTP on 127.0.0.1, where a
        # TLS-only policy would deny every request (moto enforces it).
        tls_only=stage.name != "local",
        current_version_days=tuple(
            (prefix, stage.limits.upload_retention_days)
            for prefix in (UPLOADS_PREFIX, REJECTS_PREFIX)
        ),
    )
    return domain + Domain(buckets=(uploads,))
