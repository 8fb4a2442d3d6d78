"""A stream mapping whose iterator is refused re-opens the stream and loses nothing.

AWS: a shard iterator expires 15 minutes after it is issued
(``ExpiredIteratorException``), and a mapping carries on from its checkpoint.
The local cloud adds a case AWS does not have: ``python -m localcloud reset``
drops every iterator and recreates the tables, so the orders stream is a new
one whose sequence numbers start again where the old one's did.
"""

from __future__ import annotations

import contextlib
import logging
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from chalice import Chalice

from chalicelib.aws import client_config
from infra.functions import EventSourceSettings
from infra.resources import KeyAttribute, Table
from localcloud import motoiterators
from localcloud.motoprocess import MotoProcess
from tests.localcloud.runtime_harness import (  # noqa: F401
    Cloud,
    _cloud,
    _moto_endpoint,
    wait_for,
)

LIMIT = 60.0
TABLE = Table(
    key="orders",
    name="orders",
    partition_key=KeyAttribute("pk"),
    stream_view_type="NEW_AND_OLD_IMAGES",
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@contextlib.contextmanager
def iterators(**install: Any) -> Iterator[None]:
    """moto's iterators as the test needs them (expiring with ``install``'s arguments, or
    moto's own with None), whatever an earlier test in this process installed."""
    was_installed = motoiterators.installed()
    motoiterators.uninstall()
    if install.get("clock") is not None:
        motoiterators.install(**install)
    try:
        yield
    finally:
        motoiterators.uninstall()
        if was_installed:
            motoiterators.install()


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    clock = FakeClock()
    with iterators(clock=clock):
        yield clock


def _provision(cloud: Cloud):
    source = EventSourceSettings(function="on_change", source_key="orders")
    stack, outputs = cloud.provision(tables=(TABLE,), event_sources=(source,))
    return stack, outputs


def _put(cloud: Cloud, key: str) -> None:
    cloud.clients("dynamodb").put_item(TableName="orders", Item={"pk": {"S": key}})


def _run(cloud: Cloud, stack: Any, outputs: Any, seen: list[dict[str, Any]]):
    app = Chalice("t")
    arn = outputs.tables["orders"]["stream_arn"]

    @app.on_dynamodb_record(stream_arn=arn, batch_size=10, starting_position="TRIM_HORIZON")
    def on_change(event):
        seen.extend(event.to_dict()["Records"])

    return cloud.run(app, stack, outputs)


def _keys(seen: list[dict[str, Any]]) -> list[str]:
    return [r["dynamodb"]["Keys"]["pk"]["S"] for r in list(seen)]


def _warnings(caplog: pytest.LogCaptureFixture, text: str) -> int:
    return sum(
        1
        for r in caplog.records
        if r.name == "localcloud.runtime.streams" and r.levelno == logging.WARNING
        if text in r.getMessage()
    )


@pytest.mark.parametrize("kind", ["moto's own (500 KeyError)", "expiring (400 Expired)"])
def test_after_a_reset_the_poller_reads_the_new_stream_from_its_start(
    cloud: Cloud, caplog: pytest.LogCaptureFixture, kind: str
):
    """``python -m localcloud reset`` while the runtime runs: the next order's record
    reaches the function, with one warning and no traceback (the new stream's
    sequence numbers restart, so resuming after the old checkpoint would skip it)."""
    caplog.set_level(logging.INFO, logger="localcloud")
    with iterators(clock=time.monotonic if kind.startswith("expiring") else None):
        stack, outputs = _provision(cloud)
        seen: list[dict[str, Any]] = []
        _run(cloud, stack, outputs, seen)
        _put(cloud, "before")
        assert wait_for(lambda: _keys(seen) == ["before"], LIMIT)
        old_sequence = seen[0]["dynamodb"]["SequenceNumber"]

        urllib.request.urlopen(
            urllib.request.Request(f"{cloud.endpoint}/moto-api/reset", method="POST")
        ).close()
        _, new_outputs = _provision(cloud)
        _put(cloud, "after")

        assert wait_for(lambda: _keys(seen) == ["before", "after"], LIMIT)
    after = seen[1]
    assert after["eventSourceARN"] == new_outputs.tables["orders"]["stream_arn"]
    assert after["eventSourceARN"] != outputs.tables["orders"]["stream_arn"]
    assert after["dynamodb"]["SequenceNumber"] == old_sequence  # numbering restarted
    assert _warnings(caplog, "cannot read stream") == 1
    assert _warnings(caplog, "has a new stream") == 1
    # No traceback from the runtime (moto's own server logs its 500s, as in make run).
    runtime_errors = [
        r for r in caplog.records if r.name.startswith("localcloud") and r.levelno >= logging.ERROR
    ]
    assert not runtime_errors


def test_a_poller_started_with_an_older_stream_arn_reads_the_tables_current_stream(cloud: Cloud):
    """A process that ran an earlier local cloud imported app.py with that cloud's
    stream ARN, and kept a checkpoint on it. The next cloud's table streams anew,
    with sequence numbers that restart: every record of it reaches the function,
    none skipped for the old checkpoint."""
    stack, outputs = _provision(cloud)
    seen: list[dict[str, Any]] = []
    first = _run(cloud, stack, outputs, seen)
    for key in ("a", "b", "c"):
        _put(cloud, key)
    assert wait_for(lambda: _keys(seen) == ["a", "b", "c"], LIMIT)
    first.stop()

    urllib.request.urlopen(
        urllib.request.Request(f"{cloud.endpoint}/moto-api/reset", method="POST")
    ).close()
    _, new_outputs = _provision(cloud)
    assert new_outputs.tables["orders"]["stream_arn"] != outputs.tables["orders"]["stream_arn"]
    _put(cloud, "new")
    seen.clear()
    _run(cloud, stack, outputs, seen)  # the app still names the first stream
    assert wait_for(lambda: _keys(seen) == ["new"], LIMIT)
    assert seen[0]["eventSourceARN"] == new_outputs.tables["orders"]["stream_arn"]


def test_an_expired_iterator_is_reopened_after_the_checkpoint(
    cloud: Cloud, clock: FakeClock, caplog: pytest.LogCaptureFixture
):
    """AWS: an iterator expires 15 minutes after it was issued; the mapping takes a
    new one after its checkpoint and neither skips nor repeats a record."""
    caplog.set_level(logging.INFO, logger="localcloud")
    stack, outputs = _provision(cloud)
    seen: list[dict[str, Any]] = []
    runtime = _run(cloud, stack, outputs, seen)
    _put(cloud, "first")
    assert wait_for(lambda: _keys(seen) == ["first"], LIMIT)
    assert runtime.wait_until_idle(LIMIT)

    clock.now += motoiterators.TTL_SECONDS + 1  # every iterator issued so far expires
    _put(cloud, "second")

    assert wait_for(lambda: _keys(seen) == ["first", "second"], LIMIT)
    assert runtime.wait_until_idle(LIMIT)
    assert _keys(seen) == ["first", "second"]
    assert _warnings(caplog, "cannot read stream") == 1
    assert "ExpiredIteratorException" in caplog.text
    assert _warnings(caplog, "has a new stream") == 0


def _streams(endpoint: str) -> tuple[Any, Any]:
    kwargs = {
        "endpoint_url": endpoint,
        "region_name": "us-east-1",
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
        "config": client_config(),
    }
    return boto3.client("dynamodb", **kwargs), boto3.client("dynamodbstreams", **kwargs)


def _iterator(endpoint: str) -> tuple[Any, str]:
    dynamodb, streams = _streams(endpoint)
    arn = dynamodb.create_table(
        TableName="iterators",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"},
    )["TableDescription"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    return streams, iterator


def test_moto_forgets_iterators_after_15_minutes(moto_endpoint: str, clock: FakeClock):
    """AWS: GetRecords on an iterator older than 15 minutes answers
    ExpiredIteratorException. moto kept every iterator it issued (one per poll),
    forever; with the patch its dict holds only the last 15 minutes'."""
    urllib.request.urlopen(
        urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")
    ).close()
    from moto.dynamodbstreams.models import dynamodbstreams_backends

    streams, iterator = _iterator(moto_endpoint)
    for _ in range(20):  # a poller's iterators, one from each call
        iterator = streams.get_records(ShardIterator=iterator)["NextShardIterator"]
        clock.now += 60
    backend = dynamodbstreams_backends["123456789012"]["us-east-1"]
    assert len(backend.shard_iterators) <= 16  # one a minute, 15 minutes' worth (+1)

    stale = iterator
    clock.now += motoiterators.TTL_SECONDS
    with pytest.raises(ClientError) as refused:
        streams.get_records(ShardIterator=stale)
    assert refused.value.response["Error"]["Code"] == "ExpiredIteratorException"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_the_local_clouds_moto_process_expires_iterators():
    """``make run``'s moto gets the patch from ``motoprocess.prepare()``: after a reset
    an old iterator is refused as expired (400), not with a KeyError (500)."""
    moto = MotoProcess("127.0.0.1", 0)
    moto.start()
    try:
        endpoint = f"http://127.0.0.1:{moto.get_host_and_port()[1]}"
        streams, iterator = _iterator(endpoint)
        urllib.request.urlopen(
            urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
        ).close()
        with pytest.raises(ClientError) as refused:
            streams.get_records(ShardIterator=iterator)
    finally:
        moto.stop()
    assert refused.value.response["Error"]["Code"] == "ExpiredIteratorException"
