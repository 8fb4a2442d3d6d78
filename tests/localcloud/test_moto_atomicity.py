"""The local cloud's moto is atomic under concurrent requests (``localcloud.motolocks``).

AWS applies each request atomically; moto, serving requests on many threads,
does not: a failed TransactWriteItems restores whole tables from copies taken
before it ran (undoing other threads' writes), and DeleteMessage rebuilds a
queue's message list from a snapshot (dropping messages sent meanwhile). The
local cloud runs batches concurrently, so it serializes each service's
requests. These tests race requests against a moto server with the locks
installed, as the local cloud does, and count what survived. Without the
locks both lose data: counter updates and messages. To make the races show
on every run rather than by chance, each test yields the GIL inside moto's
read-modify-write; with the locks, nothing else can run there anyway.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer

from localcloud import motolocks
from localcloud.motopatch import applied

CONFIG = Config(retries={"max_attempts": 10, "mode": "standard"}, max_pool_connections=32)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        # The locks alone, as moto ships its transactions; undone for later tests.
        with applied(*motolocks.PATCHES):
            yield f"http://{host}:{port}"
    finally:
        server.stop()
        server._server.server_close()  # stop() leaves the listening socket open


def client(endpoint: str, service: str):
    return boto3.session.Session().client(service, endpoint_url=endpoint, config=CONFIG)


def run_threads(target, count: int) -> None:
    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_failing_transactions_do_not_undo_concurrent_successful_ones(endpoint, monkeypatch):
    import copy

    from moto.dynamodb import models

    # Give up the GIL right after a transaction took its backup copy, so other
    # transactions run inside its copy-then-restore whenever the lock allows it.
    def copy_then_yield(value, memo=None):
        backup = copy.deepcopy(value, memo)
        time.sleep(0)
        return backup

    monkeypatch.setattr(
        models, "copy", type("Copy", (), {"deepcopy": staticmethod(copy_then_yield)})
    )
    ddb = client(endpoint, "dynamodb")
    ddb.create_table(
        TableName="race",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.put_item(TableName="race", Item={"id": {"S": "job"}, "n": {"N": "0"}})
    ddb.put_item(TableName="race", Item={"id": {"S": "counted"}})
    committed, errors = [], []

    def count_chunks(worker: int) -> None:
        # Like the writer: a marker that must be new, and a counter, in one
        # transaction; every other one names a marker that exists and fails.
        own = client(endpoint, "dynamodb")
        for n in range(20):
            marker = f"{worker}/{n}" if n % 2 == 0 else "counted"
            try:
                own.transact_write_items(
                    TransactItems=[
                        {
                            "Put": {
                                "TableName": "race",
                                "Item": {"id": {"S": marker}},
                                "ConditionExpression": "attribute_not_exists(id)",
                            }
                        },
                        {
                            "Update": {
                                "TableName": "race",
                                "Key": {"id": {"S": "job"}},
                                "UpdateExpression": "ADD n :one",
                                "ExpressionAttributeValues": {":one": {"N": "1"}},
                            }
                        },
                    ]
                )
                committed.append(marker)
            except own.exceptions.TransactionCanceledException:
                pass
            except Exception as error:  # collected, asserted on the test's thread
                errors.append(repr(error))

    run_threads(count_chunks, 8)

    assert errors == []
    assert len(committed) == 8 * 10
    counter = ddb.get_item(TableName="race", Key={"id": {"S": "job"}})["Item"]["n"]["N"]
    assert int(counter) == len(committed)
    markers = ddb.scan(TableName="race", Select="COUNT")["Count"] - 2
    assert markers == len(committed)


def test_deleting_messages_does_not_drop_messages_sent_meanwhile(endpoint, monkeypatch):
    from moto.sqs.models import Message

    # Give up the GIL at every message DeleteMessage looks at, so a concurrent
    # send lands inside its read-modify-write whenever the lock allows it.
    checked = Message.had_receipt_handle

    def yielding(self, receipt_handle):
        time.sleep(0)
        return checked(self, receipt_handle)

    monkeypatch.setattr(Message, "had_receipt_handle", yielding)
    sqs = client(endpoint, "sqs")
    url = sqs.create_queue(QueueName="race")["QueueUrl"]
    sent = [f"m{n}" for n in range(150)]
    received: set[str] = set()
    lock, sending_done = threading.Lock(), threading.Event()

    def work(worker: int) -> None:
        own = client(endpoint, "sqs")
        if worker == 0:
            for start in range(0, len(sent), 10):
                entries = [
                    {"Id": str(i), "MessageBody": b} for i, b in enumerate(sent[start : start + 10])
                ]
                own.send_message_batch(QueueUrl=url, Entries=entries)
            sending_done.set()
            return
        empty = 0
        while empty < 5:
            messages = own.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            for message in messages:
                own.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            with lock:
                received.update(m["Body"] for m in messages)
            empty = empty + 1 if not messages and sending_done.is_set() else 0

    run_threads(work, 4)

    assert received == set(sent)


def test_a_long_poll_lets_senders_in_while_it_waits(endpoint):
    sqs = client(endpoint, "sqs")
    url = sqs.create_queue(QueueName="long-poll")["QueueUrl"]
    got: list[list[dict]] = []
    polling = threading.Thread(
        target=lambda: got.append(
            sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5).get("Messages", [])
        )
    )
    polling.start()
    time.sleep(0.2)  # let the receive start waiting; the outcome does not depend on it
    client(endpoint, "sqs").send_message(QueueUrl=url, MessageBody="hello")
    polling.join()
    # Had the wait held the lock, the send would have waited for the poll to
    # end empty-handed; the message would still be there, unreceived.
    assert [m["Body"] for m in got[0]] == ["hello"]
