"""DynamoDB stream semantics, each test stating the AWS behaviour it reproduces."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError
from chalice import Chalice

from infra.functions import EventSourceSettings
from infra.resources import KeyAttribute, Queue, Table
from localcloud import mototransactions
from localcloud.motopatch import applied
from tests.localcloud.runtime_harness import (  # noqa: F401
    Cloud,
    _cloud,
    _moto_endpoint,
    wait_for,
)


def _stream(cloud: Cloud, **settings):
    table = Table(
        key="orders",
        name="orders",
        partition_key=KeyAttribute("pk"),
        stream_view_type="NEW_AND_OLD_IMAGES",
    )
    failures = Queue(key="failures", name="failures", visibility_timeout=30)
    source = EventSourceSettings(function="on_change", source_key="orders", **settings)
    stack, outputs = cloud.provision(tables=(table,), queues=(failures,), event_sources=(source,))
    return stack, outputs, outputs.tables["orders"]["stream_arn"], outputs.queues["failures"]["url"]


def _put(cloud: Cloud, *keys: str) -> None:
    for key in keys:
        cloud.clients("dynamodb").put_item(
            TableName="orders", Item={"pk": {"S": key}, "blob": {"B": b"\x00\x01"}}
        )


def _keys(records) -> list[str]:
    return [r["dynamodb"]["Keys"]["pk"]["S"] for r in records]


def test_records_arrive_in_order_lambda_shaped_and_checkpointed(cloud: Cloud):
    """AWS: a shard's records reach the function in order, shaped as Lambda's
    DynamoDB event (epoch ApproximateCreationDateTime, base64 binaries,
    eventSourceARN); the mapping checkpoints, so a restarted poller resumes
    after the last processed record instead of replaying the shard."""
    stack, outputs, arn, _ = _stream(cloud)
    _put(cloud, "k1", "k2", "k3")
    app, seen, parsed = Chalice("t"), [], []

    @app.on_dynamodb_record(stream_arn=arn, batch_size=2, starting_position="TRIM_HORIZON")
    def on_change(event):
        # Observations only: an assert here would fail on the runtime's thread,
        # which the test sees only as a retried batch.
        seen.extend(event.to_dict()["Records"])
        parsed.extend(r.sequence_number for r in event)  # Chalice's record class

    runtime = cloud.run(app, stack, outputs)
    assert runtime.wait_until_idle(20)
    assert _keys(seen) == ["k1", "k2", "k3"]
    assert parsed == [r["dynamodb"]["SequenceNumber"] for r in seen]
    assert runtime.stats()["on_change"]["errors"] == 0
    record = seen[0]
    assert record["eventSourceARN"] == arn and record["eventName"] == "INSERT"
    assert record["eventSource"] == "aws:dynamodb" and record["awsRegion"] == "us-east-1"
    assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], int)
    assert record["dynamodb"]["NewImage"]["blob"] == {"B": "AAE="}
    assert record["dynamodb"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    runtime.stop()

    _put(cloud, "k4")
    seen.clear()
    restarted = cloud.run(app, stack, outputs)
    assert restarted.wait_until_idle(20)
    assert _keys(seen) == ["k4"]


def test_report_batch_item_failures_resumes_from_the_lowest_sequence(cloud: Cloud):
    """AWS (ReportBatchItemFailures): Lambda checkpoints at the lowest sequence
    number reported and retries every record from there."""
    stack, outputs, arn, _ = _stream(cloud, report_batch_item_failures=True)
    _put(cloud, "k1", "k2", "k3", "k4")
    app, calls = Chalice("t"), []

    @app.on_dynamodb_record(stream_arn=arn, batch_size=4, starting_position="TRIM_HORIZON")
    def on_change(event):
        records = event.to_dict()["Records"]
        calls.append(_keys(records))
        if len(calls) == 1:
            seqs = [r["dynamodb"]["SequenceNumber"] for r in records]
            return {"batchItemFailures": [{"itemIdentifier": seqs[3]}, {"itemIdentifier": seqs[1]}]}
        return None

    runtime = cloud.run(app, stack, outputs)
    assert runtime.wait_until_idle(20)
    assert calls == [["k1", "k2", "k3", "k4"], ["k2", "k3", "k4"]]


def test_bisect_on_error_isolates_the_failing_record(cloud: Cloud):
    """AWS (BisectBatchOnFunctionError): a batch that fails is split in two and
    each half retried, until the failing record is alone."""
    stack, outputs, arn, fail_url = _stream(
        cloud, bisect_batch_on_error=True, maximum_retry_attempts=0, on_failure_queue_key="failures"
    )
    _put(cloud, "k1", "k2", "k3", "k4")
    app, calls, ok = Chalice("t"), [], []

    @app.on_dynamodb_record(stream_arn=arn, batch_size=4, starting_position="TRIM_HORIZON")
    def on_change(event):
        keys = _keys(event.to_dict()["Records"])
        calls.append(keys)
        if "k3" in keys:
            raise RuntimeError("bad k3")
        ok.extend(keys)

    runtime = cloud.run(app, stack, outputs)
    assert runtime.wait_until_idle(20)
    assert calls == [["k1", "k2", "k3", "k4"], ["k1", "k2"], ["k3", "k4"], ["k3"], ["k4"]]
    assert ok == ["k1", "k2", "k4"]
    (failure,) = cloud.drain(fail_url)
    assert json.loads(failure["Body"])["DDBStreamBatchInfo"]["batchSize"] == 1


def test_retries_are_bounded_then_the_batch_goes_to_the_on_failure_queue(cloud: Cloud):
    """AWS: after MaximumRetryAttempts retries, Lambda sends a record of the
    failed batch (shard, sequence range, condition) to the on-failure
    destination and moves on to the next records."""
    stack, outputs, arn, fail_url = _stream(
        cloud, maximum_retry_attempts=2, on_failure_queue_key="failures"
    )
    _put(cloud, "bad", "good")
    app, calls = Chalice("t"), []

    @app.on_dynamodb_record(stream_arn=arn, batch_size=1, starting_position="TRIM_HORIZON")
    def on_change(event):
        keys = _keys(event.to_dict()["Records"])
        calls.append(keys)
        if keys == ["bad"]:
            raise RuntimeError("always")

    runtime = cloud.run(app, stack, outputs)
    assert runtime.wait_until_idle(20)
    assert calls == [["bad"]] * 3 + [["good"]]
    (message,) = cloud.drain(fail_url)
    body = json.loads(message["Body"])
    info = body["DDBStreamBatchInfo"]
    assert body["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert body["requestContext"]["functionArn"].endswith(":function:t-local-on_change")
    assert info["streamArn"] == arn and info["batchSize"] == 1
    assert info["startSequenceNumber"] == info["endSequenceNumber"]
    assert info["shardId"]


def test_records_older_than_maximum_record_age_are_discarded(cloud: Cloud):
    """AWS (MaximumRecordAgeInSeconds): records older than the bound are not
    sent to the function; their batch goes to the on-failure destination."""
    stack, outputs, arn, fail_url = _stream(
        cloud, maximum_record_age_seconds=1, on_failure_queue_key="failures"
    )
    _put(cloud, "old")
    time.sleep(2.1)  # let the record age past the bound (not a timing assert)
    app, calls = Chalice("t"), []

    @app.on_dynamodb_record(stream_arn=arn, batch_size=10, starting_position="TRIM_HORIZON")
    def on_change(event):
        calls.append(_keys(event.to_dict()["Records"]))

    runtime = cloud.run(app, stack, outputs)
    assert runtime.wait_until_idle(20)
    assert calls == []
    (message,) = cloud.drain(fail_url)
    assert json.loads(message["Body"])["requestContext"]["condition"] == "RecordAgeExceeded"


def test_filter_criteria_select_stream_records(cloud: Cloud):
    """AWS (FilterCriteria): only records matching a pattern reach the function;
    the others are skipped and the checkpoint moves past them."""
    stack, outputs, arn, _ = _stream(cloud, filter_patterns=('{"eventName": ["REMOVE"]}',))
    _put(cloud, "k1", "k2")
    cloud.clients("dynamodb").delete_item(TableName="orders", Key={"pk": {"S": "k1"}})
    app, calls = Chalice("t"), []

    @app.on_dynamodb_record(stream_arn=arn, batch_size=10, starting_position="TRIM_HORIZON")
    def on_change(event):
        calls.append(
            [
                (r["eventName"], k)
                for r, k in zip(
                    event.to_dict()["Records"], _keys(event.to_dict()["Records"]), strict=True
                )
            ]
        )

    runtime = cloud.run(app, stack, outputs)
    assert runtime.wait_until_idle(20)
    assert calls == [[("REMOVE", "k1")]]


@pytest.fixture
def all_or_nothing_transactions() -> Iterator[None]:
    # What the local cloud's moto gets from motoprocess.prepare(); undone after,
    # so later tests see the moto they expect.
    with applied(mototransactions.TRANSACTIONS):
        yield


def test_a_lost_transaction_race_leaves_the_stream_flowing(
    cloud: Cloud, all_or_nothing_transactions
):
    """AWS: a cancelled TransactWriteItems writes nothing and emits nothing; the
    mapping's poller goes on reading the same shard and sees the next write.
    (moto alone puts back a copy of the table, stranding every open iterator on
    the old shard with the cancelled transaction's INSERT on it.)"""
    stack, outputs, arn, _ = _stream(cloud)
    app, seen = Chalice("t"), []

    @app.on_dynamodb_record(stream_arn=arn, batch_size=10, starting_position="TRIM_HORIZON")
    def on_change(event):
        seen.extend(event.to_dict()["Records"])

    _put(cloud, "first")
    runtime = cloud.run(app, stack, outputs)
    assert wait_for(lambda: _keys(seen) == ["first"])
    dynamodb = cloud.clients("dynamodb")
    with pytest.raises(ClientError) as lost:
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": "orders", "Item": {"pk": {"S": "never-stored"}}}},
                {
                    "Put": {
                        "TableName": "orders",
                        "Item": {"pk": {"S": "first"}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )
    reasons = lost.value.response["CancellationReasons"]
    assert [r["Code"] for r in reasons] == ["None", "ConditionalCheckFailed"]
    _put(cloud, "after")
    assert wait_for(lambda: "after" in _keys(seen))
    assert runtime.wait_until_idle(20)
    assert _keys(seen) == ["first", "after"]
    sequences = [int(r["dynamodb"]["SequenceNumber"]) for r in seen]
    assert sequences[1] == sequences[0] + 1  # no number spent on the cancelled write
    stored = dynamodb.scan(TableName="orders")["Items"]
    assert sorted(i["pk"]["S"] for i in stored) == ["after", "first"]
