"""``ops dlq peek`` and ``ops dlq redrive`` against moto's SQS (``mock_aws``).

Messages reach the DLQ the way they do in production, through the source
queue's redrive policy after ``maxReceiveCount`` receives, where the test is
about that path; tests about the redrive's own bookkeeping put messages on
the DLQ directly, which is quicker and equivalent for them.
"""

from __future__ import annotations

import io
import json

import pytest
from botocore.stub import Stubber
from rich.console import Console

from chalicelib.aws import Clients
from chalicelib.config import REDRIVE_ATTRIBUTE
from chalicelib.readings.chunks import encode_chunk, encode_row
from infra.resources import MAX_RECEIVE_COUNT
from ops.__main__ import main
from ops.peek import peek
from ops.redrive import RUN_ATTRIBUTE, redrive
from ops.snapshot import queue_counts

ROW = ["1717200000.125", "lab-01", "wired", "gateway-a", "0.82", "probe-eu-1", "21.4"]
TRACE = {"trace": {"DataType": "String", "StringValue": "abc-123"}}
# The redrive marks what it moves back with the DLQ's name.
REDRIVEN = {REDRIVE_ATTRIBUTE: {"DataType": "String", "StringValue": "eventflow-local-ingest-dlq"}}


@pytest.fixture(autouse=True)
def short_polls(monkeypatch):
    # A 1 s long poll proves a real queue empty; moto needs no such proof.
    monkeypatch.setattr("ops.queues.WAIT_SECONDS", 0)


def chunk_body(ingest_id: str = "a" * 32, seq: int = 0, rows: int = 3) -> str:
    return encode_chunk(ingest_id, 1, seq, [encode_row(ROW)] * rows)


def dead_letter(sqs, source_url: str, body: str, **send_args) -> str:
    """Send a message and fail it ``maxReceiveCount`` times, so SQS moves it to the DLQ."""
    message_id = sqs.send_message(QueueUrl=source_url, MessageBody=body, **send_args)["MessageId"]
    # moto moves the message on the receive after the last allowed one.
    for _ in range(MAX_RECEIVE_COUNT + 1):
        sqs.receive_message(QueueUrl=source_url, VisibilityTimeout=0, MaxNumberOfMessages=10)
    return message_id


def receive_all(sqs, url: str) -> list[dict]:
    return sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=10,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
    ).get("Messages", [])


def run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(["--stage", "local", *argv], console=Console(file=out, width=240))
    return code, out.getvalue()


def test_peek_shows_a_dead_lettered_chunk_and_leaves_it_in_the_dlq(services, outputs):
    sqs = services.clients.sqs
    source, dlq = outputs.queues["ingest"]["url"], outputs.queues["ingest-dlq"]["url"]
    message_id = dead_letter(sqs, source, chunk_body(seq=4), MessageAttributes=TRACE)
    assert queue_counts(sqs, dlq) == (1, 0)

    first = peek(sqs, dlq, 10)
    again = peek(sqs, dlq, 10)

    assert [m.message_id for m in first] == [m.message_id for m in again] == [message_id]
    seen = first[0]
    assert seen.summary == {"kind": "chunk", "ingest_id": "a" * 32, "run": 1, "seq": 4, "rows": 3}
    assert seen.message_attributes["trace"]["StringValue"] == "abc-123"
    assert seen.receive_count > MAX_RECEIVE_COUNT
    assert seen.sent_at_ms is not None
    # Not consumed, and not left hidden either.
    assert queue_counts(sqs, dlq) == (1, 0)


def test_peek_is_bounded_and_abbreviates_large_bodies(services, outputs):
    sqs = services.clients.sqs
    dlq = outputs.queues["ingest-dlq"]["url"]
    for i in range(12):
        sqs.send_message(QueueUrl=dlq, MessageBody=f"{i}:" + "x" * 2000)

    seen = peek(sqs, dlq, 11)

    assert len(seen) == 11
    assert len({m.message_id for m in seen}) == 11
    shown = seen[0].to_dict()
    assert len(shown["body"]) < 400 and "more characters" in shown["body"]
    assert seen[0].summary["kind"] == "unknown"
    assert queue_counts(sqs, dlq) == (12, 0)


def test_redrive_moves_messages_back_with_body_and_attributes_and_empties_the_dlq(
    services, outputs
):
    sqs = services.clients.sqs
    source, dlq = outputs.queues["ingest"]["url"], outputs.queues["ingest-dlq"]["url"]
    bodies = {chunk_body(seq=i) for i in range(3)}
    for body in bodies:
        dead_letter(sqs, source, body, MessageAttributes=TRACE)
    assert queue_counts(sqs, dlq) == (3, 0)

    result = redrive(sqs, dlq, source, 100)

    assert (result.moved, result.failed, result.ok) == (3, [], True)
    assert queue_counts(sqs, dlq) == (0, 0)
    back = receive_all(sqs, source)
    assert {m["Body"] for m in back} == bodies
    ran = {"DataType": "String", "StringValue": result.run}
    assert all(m["MessageAttributes"] == {**TRACE, **REDRIVEN, RUN_ATTRIBUTE: ran} for m in back)
    # A fresh message on the source queue: its receive budget starts again.
    assert all(m["Attributes"]["ApproximateReceiveCount"] == "1" for m in back)


def test_redrive_stops_at_max(services, outputs):
    sqs = services.clients.sqs
    source, dlq = outputs.queues["ingest"]["url"], outputs.queues["ingest-dlq"]["url"]
    for i in range(13):
        sqs.send_message(QueueUrl=dlq, MessageBody=chunk_body(seq=i))

    result = redrive(sqs, dlq, source, 12)

    assert result.moved == 12
    assert queue_counts(sqs, dlq) == (1, 0)
    assert queue_counts(sqs, source) == (12, 0)


def test_redrive_moves_at_most_what_the_dlq_held_when_it_started(services, outputs):
    sqs = services.clients.sqs
    source, dlq = outputs.queues["ingest"]["url"], outputs.queues["ingest-dlq"]["url"]
    for i in range(3):
        sqs.send_message(QueueUrl=dlq, MessageBody=chunk_body(seq=i))
    # A consumer that fails each copy at once and dead-letters it again, as
    # the intake handler does with a poison message: a loop, unless bounded.
    sender = BouncingSender(sqs, dlq)

    result = redrive(sqs, dlq, source, 1000, sender=sender)

    assert (result.held_at_start, result.moved, result.ok) == (3, 3, True)
    assert sender.sent == 3
    assert queue_counts(sqs, dlq) == (3, 0)


def test_a_copy_back_in_the_dlq_during_the_run_is_left_there_not_moved_again(services, outputs):
    sqs = services.clients.sqs
    source, dlq = outputs.queues["ingest"]["url"], outputs.queues["ingest-dlq"]["url"]
    # Already moved once by this run and failed again, as SQS or the intake
    # handler leaves it in the DLQ: with the run's mark.
    mark = {RUN_ATTRIBUTE: {"DataType": "String", "StringValue": "run-1"}}
    back = sqs.send_message(QueueUrl=dlq, MessageBody=chunk_body(seq=9), MessageAttributes=mark)
    for i in range(2):
        sqs.send_message(QueueUrl=dlq, MessageBody=chunk_body(seq=i))

    result = redrive(sqs, dlq, source, 1000, run="run-1")

    assert (result.moved, result.returned, result.ok) == (2, [back["MessageId"]], True)
    assert [m["MessageId"] for m in receive_all(sqs, dlq)] == [back["MessageId"]]
    assert queue_counts(sqs, source) == (2, 0)


class BouncingSender:
    """Sends through moto, then dead-letters every copy again, marks and all."""

    def __init__(self, sqs, dlq: str):
        self.sqs, self.dlq, self.sent = sqs, dlq, 0

    def send_message_batch(self, QueueUrl: str, Entries: list[dict]) -> dict:
        response = self.sqs.send_message_batch(QueueUrl=QueueUrl, Entries=Entries)
        for message in receive_all(self.sqs, QueueUrl):
            self.sqs.delete_message(QueueUrl=QueueUrl, ReceiptHandle=message["ReceiptHandle"])
            self.sqs.send_message(
                QueueUrl=self.dlq,
                MessageBody=message["Body"],
                MessageAttributes=message["MessageAttributes"],
            )
        self.sent += len(response.get("Successful", []))
        return response


def test_a_refused_send_keeps_every_message_in_the_dlq_and_stops(services, outputs):
    sqs = services.clients.sqs
    dlq = outputs.queues["ingest-dlq"]["url"]
    for i in range(3):
        sqs.send_message(QueueUrl=dlq, MessageBody=chunk_body(seq=i))
    # A FIFO queue refuses messages without a group id: the whole batch fails.
    fifo = sqs.create_queue(QueueName="wrong-target.fifo", Attributes={"FifoQueue": "true"})

    result = redrive(sqs, dlq, fifo["QueueUrl"], 100)

    assert result.moved == 0
    assert len(result.failed) == 3 and result.aborted and not result.ok
    assert result.receives == 1
    # Still there, and visible again for the next peek or redrive.
    assert queue_counts(sqs, dlq) == (3, 0)


def test_a_partly_failed_batch_deletes_only_the_messages_that_were_sent(services, outputs):
    sqs = services.clients.sqs
    source, dlq = outputs.queues["ingest"]["url"], outputs.queues["ingest-dlq"]["url"]
    for i in range(3):
        sqs.send_message(QueueUrl=dlq, MessageBody=chunk_body(seq=i))
    # Only the send is stubbed, on a second client over the same moto
    # backend; receives and deletes go to moto.
    sender = Clients()("sqs")
    with Stubber(sender) as stub:
        stub.add_response(
            "send_message_batch",
            {
                "Successful": [
                    {"Id": i, "MessageId": f"new-{i}", "MD5OfMessageBody": "0" * 32}
                    for i in ("0", "2")
                ],
                "Failed": [
                    {"Id": "1", "SenderFault": False, "Code": "InternalError", "Message": "boom"}
                ],
            },
        )
        result = redrive(sqs, dlq, source, 3, sender=sender)
        stub.assert_no_pending_responses()

    assert result.moved == 2
    assert [(f.code, f.reason) for f in result.failed] == [("InternalError", "boom")]
    left = receive_all(sqs, dlq)
    assert [m["MessageId"] for m in left] == [result.failed[0].message_id]


def test_a_fifo_redrive_keeps_group_and_deduplication_ids(clients):
    # eventflow declares no FIFO queue yet; the orders workflow will.
    sqs = clients.sqs
    attributes = {"FifoQueue": "true"}
    dlq = sqs.create_queue(QueueName="orders-dlq.fifo", Attributes=attributes)["QueueUrl"]
    source = sqs.create_queue(QueueName="orders.fifo", Attributes=attributes)["QueueUrl"]
    for i in range(2):
        sqs.send_message(
            QueueUrl=dlq,
            MessageBody=f"order-{i}",
            MessageGroupId="customer-7",
            MessageDeduplicationId=f"order-{i}",
            MessageAttributes=TRACE,
        )

    result = redrive(sqs, dlq, source, 10)

    assert result.moved == 2 and result.ok
    back = receive_all(sqs, source)
    # Same group, same order, same deduplication ids.
    assert [m["Body"] for m in back] == ["order-0", "order-1"]
    assert {m["Attributes"]["MessageGroupId"] for m in back} == {"customer-7"}
    assert [m["Attributes"]["MessageDeduplicationId"] for m in back] == ["order-0", "order-1"]
    assert all(m["MessageAttributes"][REDRIVE_ATTRIBUTE]["StringValue"] for m in back)
    assert all(m["MessageAttributes"]["trace"] == TRACE["trace"] for m in back)


def test_the_cli_peeks_and_redrives_by_key_or_name(services, outputs):
    sqs = services.clients.sqs
    source, dlq = outputs.queues["ingest"]["url"], outputs.queues["ingest-dlq"]["url"]
    message_id = dead_letter(sqs, source, chunk_body(seq=2, rows=5))

    code, out = run_cli("dlq", "peek", "ingest", "--json")
    assert code == 0
    peeked = json.loads(out)
    assert peeked["dlq"] == "eventflow-local-ingest-dlq"
    assert [(m["message_id"], m["summary"]["rows"]) for m in peeked["messages"]] == [
        (message_id, 5)
    ]

    code, out = run_cli("dlq", "peek", "eventflow-local-ingest-dlq")
    assert code == 0 and "chunk 2 (run 1) of ingest" in out and "5 rows" in out

    code, out = run_cli("dlq", "redrive", "ingest-dlq", "--max", "5")
    assert code == 0 and "moved 1 message(s)" in out
    assert queue_counts(sqs, dlq) == (0, 0)
    assert queue_counts(sqs, source) == (1, 0)

    code, out = run_cli("dlq", "peek", "ingest")
    assert code == 0 and "is empty" in out


def test_the_cli_names_s3_events_ingest_ids_and_rejects_unknown_queues(services, outputs):
    sqs = services.clients.sqs
    notification = {
        "Records": [
            {
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": "uploads"},
                    "object": {"key": "incoming/a+b.csv", "eTag": "abc"},
                },
            }
        ]
    }
    sqs.send_message(
        QueueUrl=outputs.queues["s3-events-dlq"]["url"], MessageBody=json.dumps(notification)
    )

    code, out = run_cli("dlq", "peek", "s3-events", "--json")
    assert code == 0
    (summary,) = [m["summary"] for m in json.loads(out)["messages"]]
    assert summary["kind"] == "s3-notification"
    assert summary["objects"][0]["key"] == "incoming/a b.csv"
    assert len(summary["objects"][0]["ingest_id"]) == 32

    code, out = run_cli("dlq", "redrive", "nope")
    assert code == 2 and "no queue 'nope'" in out and "ingest, s3-events" in out
