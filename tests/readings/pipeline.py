"""Runs the pipeline's queues to empty under moto, calling the real handlers.

This is the unit-test stand-in for Lambda's pollers: receive a batch, invoke
the handler, delete what the partial batch response does not name. The local
cloud (``localcloud/``) does the same with Lambda's full semantics.
"""

from __future__ import annotations

from typing import Any

from chalicelib.readings import handlers


def receive(sqs: Any, url: str, max_messages: int = 10) -> list[dict[str, Any]]:
    return sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=max_messages, AttributeNames=["All"]
    ).get("Messages", [])


def to_event(messages: list[dict[str, Any]], arn: str | None = None) -> dict[str, Any]:
    """Lambda's SQS event; with the queue's ARN, as Lambda sends it (backoff needs it)."""
    records = []
    for m in messages:
        record = {
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "attributes": m.get("Attributes", {}),
            "messageAttributes": {},
            "eventSource": "aws:sqs",
        }
        if arn:
            record["eventSourceARN"] = arn
        records.append(record)
    return {"Records": records}


def drain(services, outputs, queue_key: str, handler, rounds: int = 100) -> list[dict]:
    """Deliver every message on a queue to ``handler``; returns the responses."""
    sqs = services.clients.sqs
    url = outputs.queues[queue_key]["url"]
    responses = []
    for _ in range(rounds):
        messages = receive(sqs, url)
        if not messages:
            break
        response = handler(to_event(messages, outputs.queues[queue_key]["arn"]), None, services)
        responses.append(response)
        failed = {f["itemIdentifier"] for f in (response or {}).get("batchItemFailures", [])}
        if failed:
            # Leave failures for the caller to inspect rather than spin on them.
            break
        for m in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return responses


def upload(services, key: str, body: bytes) -> dict[str, Any]:
    return services.clients.s3.put_object(
        Bucket=services.settings.uploads_bucket, Key=key, Body=body
    )


def run(services, outputs) -> None:
    """S3 notification → ingest → chunks → writer, to completion."""
    drain(services, outputs, "s3-events", handlers.ingest_from_queue)
    drain(services, outputs, "ingest", handlers.write_readings)


def ingest_bytes(services, outputs, body: bytes, key: str = "incoming/t/file.csv") -> dict:
    """Upload, run the pipeline, and return the upload's job record."""
    from chalicelib.readings.jobs import job_id

    etag = upload(services, key, body)["ETag"]
    run(services, outputs)
    return services.jobs.get(job_id(services.settings.uploads_bucket, key, etag))
