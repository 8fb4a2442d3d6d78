"""Every patch of moto stands where moto's request dispatch goes, on the moto that is pinned.

The patches replace private methods of moto's classes. If moto renamed one,
changed what it takes, or stopped calling it while serving a request, the
replacement would sit unused and the local cloud would lose writes again
without a word. So:

* moto is the version the patches were written for, and constraints.txt pins it;
* every patched attribute exists with the signature its replacement expects;
* a real request to a moto server, traced call by call, runs every replacement.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from localcloud import motoprocess
from localcloud.motopatch import Patch, Target, applied
from tests.localcloud.moto_patch_harness import _endpoint, client  # noqa: F401

MOTO = "5.2.5"
RESPONSE = "tuple[int, dict[str, typing.Any], str | bytes]"
TYPE_RESPONSE = "(self) -> 'TYPE_RESPONSE'"
# What each replacement was written against, as inspect shows it on moto 5.2.5.
SIGNATURES = {
    "moto.dynamodb.responses.DynamoHandler.call_action": f"(self) -> {RESPONSE}",
    "moto.dynamodbstreams.responses.DynamoDBStreamsHandler.call_action": TYPE_RESPONSE,
    "moto.sqs.responses.SQSResponse.call_action": TYPE_RESPONSE,
    "moto.sqs.models.Queue.add_message": "(self, message: moto.sqs.models.Message) -> None",
    "moto.sqs.models.Queue.wait_for_messages": "(self, timeout: int) -> None",
    "moto.s3.responses.S3Response.ambiguous_response": (
        f"(self, request: Any, full_url: str, headers: Any) -> {RESPONSE}"
    ),
    "moto.s3.responses.S3Response.bucket_response": (
        f"(self, request: Any, full_url: str, headers: Any) -> {RESPONSE}"
    ),
    "moto.s3.responses.S3Response.key_response": (
        "(self, request: Any, full_url: str, headers: dict[str, typing.Any]) -> " + RESPONSE
    ),
    "moto.sns.responses.SNSResponse.call_action": TYPE_RESPONSE,
    "moto.dynamodb.models.DynamoDBBackend.transact_write_items": (
        "(self, transact_items: list[dict[str, typing.Any]]) -> None"
    ),
    "moto.dynamodbstreams.models.DynamoDBStreamsBackend.get_shard_iterator": (
        "(self, arn: 'str', shard_id: 'str', shard_iterator_type: 'str', "
        "sequence_number: 'str | None' = None) -> 'ShardIterator'"
    ),
    "moto.dynamodbstreams.models.DynamoDBStreamsBackend.get_records": (
        "(self, iterator_arn: 'str', limit: 'int') -> 'dict[str, Any]'"
    ),
    "moto.moto_server.werkzeug_app.DomainDispatcherApplication.get_backend_for_host": (
        "(self, host: str | None) -> Any"
    ),
    "moto.dynamodb.models.dynamo_type.Item.__init__": (
        "(self, hash_key: 'DynamoType', range_key: 'DynamoType | None', attrs: 'dict[str, Any]')"
    ),
    "moto.ses.responses.EmailResponse.send_email": "(self) -> moto.core.responses.ActionResult",
    "moto.ses.models.SESBackend.send_email": (
        "(self, source: str, subject: str, body: str, "
        "destinations: dict[str, list[str]]) -> moto.ses.models.Message"
    ),
}


def every_target() -> list[tuple[Patch, Target]]:
    return [(patch, target) for patch in motoprocess.patches() for target in patch.targets]


def test_moto_is_the_version_the_patches_were_written_for():
    assert importlib.metadata.version("moto") == MOTO
    constraints = Path(__file__).resolve().parents[2] / "constraints.txt"
    assert f"moto=={MOTO}" in constraints.read_text().splitlines()


@pytest.mark.parametrize("target", [t for _, t in every_target()], ids=str)
def test_each_patched_attribute_exists_with_the_signature_its_replacement_expects(target):
    assert not any(patch.installed() for patch in motoprocess.patches())
    attribute = getattr(target.cls(), target.name, None)
    assert attribute is not None, f"{target} is gone"
    assert str(inspect.signature(attribute)) == SIGNATURES[str(target)]


class Trace:
    """Which of the installed replacements ran, on threads started while tracing
    (moto's server serves each request on a thread of its own)."""

    def __init__(self, targets: list[tuple[Patch, Target]]):
        self._by_code: dict[Any, list[tuple[Target, Any]]] = {}
        for patch, target in targets:
            function = patch.replacement(target)
            self._by_code.setdefault(function.__code__, []).append((target, function))
        self.ran: set[Target] = set()

    def _profile(self, frame: Any, event: str, _arg: Any) -> None:
        if event != "call" or frame.f_code not in self._by_code:
            return
        for target, function in self._by_code[frame.f_code]:
            # Closures share their code; their captured values tell them apart.
            cells = zip(frame.f_code.co_freevars, function.__closure__ or (), strict=True)
            if all(frame.f_locals.get(name) is cell.cell_contents for name, cell in cells):
                self.ran.add(target)

    def during(self, request: Callable[[], Any]) -> set[Target]:
        self.ran = set()
        threading.setprofile(self._profile)
        try:
            request()
        finally:
            threading.setprofile(None)  # type: ignore[arg-type]
        return self.ran


@pytest.fixture(name="trace")
def _trace() -> Iterator[Trace]:
    with applied(*motoprocess.patches()):
        yield Trace(every_target())


def test_every_request_goes_through_each_replacement_of_its_path(endpoint, trace):
    ddb, sqs, sns = client(endpoint, "dynamodb"), client(endpoint, "sqs"), client(endpoint, "sns")
    s3, ses = client(endpoint, "s3"), client(endpoint, "ses")
    streams = client(endpoint, "dynamodbstreams")
    url = sqs.create_queue(QueueName="traced")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    queue_arn = queue_arn["Attributes"]["QueueArn"]
    topic = sns.create_topic(Name="traced")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    ses.verify_email_identity(EmailAddress="shop@example.com")
    key = [{"AttributeName": "pk", "KeyType": "HASH"}]
    ddb.create_table(
        TableName="traced",
        KeySchema=key,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )
    stream = ddb.describe_table(TableName="traced")["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=stream)["StreamDescription"]["Shards"][0]
    position = {"StreamArn": stream, "ShardId": shard["ShardId"], "ShardIteratorType": "LATEST"}
    item = {"pk": {"S": "a"}}
    cases: dict[str, Callable[[], Any]] = {
        "DynamoHandler.call_action": lambda: ddb.list_tables(),
        "Item.__init__": lambda: ddb.put_item(TableName="traced", Item=item),
        "DynamoDBBackend.transact_write_items": lambda: ddb.transact_write_items(
            TransactItems=[{"Put": {"TableName": "traced", "Item": item}}]
        ),
        "DynamoDBStreamsHandler.call_action": lambda: streams.list_streams(),
        "DynamoDBStreamsBackend.get_shard_iterator": lambda: streams.get_shard_iterator(**position),
        "DynamoDBStreamsBackend.get_records": lambda: streams.get_records(
            ShardIterator=streams.get_shard_iterator(**position)["ShardIterator"]
        ),
        "SQSResponse.call_action": lambda: sqs.list_queues(),
        "Queue.add_message": lambda: sns.publish(TopicArn=topic, Message="via SNS"),
        "Queue.wait_for_messages": lambda: sqs.receive_message(
            QueueUrl=sqs.create_queue(QueueName="empty")["QueueUrl"], WaitTimeSeconds=1
        ),
        "S3Response.ambiguous_response": lambda: s3.create_bucket(Bucket="traced"),
        "S3Response.bucket_response": lambda: s3.list_buckets(),
        "S3Response.key_response": lambda: s3.put_object(Bucket="traced", Key="k", Body=b"x"),
        "SNSResponse.call_action": lambda: sns.list_topics(),
        "DomainDispatcherApplication.get_backend_for_host": lambda: sns.list_topics(),
        "EmailResponse.send_email": lambda: ses.send_email(**_mail()),
        "SESBackend.send_email": lambda: ses.send_email(**_mail()),
    }
    assert sorted(f"{t.owner}.{t.name}" for _, t in every_target()) == sorted(cases)
    missed = []
    for _, target in every_target():
        ran = trace.during(cases[f"{target.owner}.{target.name}"])
        if target not in ran:
            missed.append(str(target))
    assert missed == []


def _mail() -> dict[str, Any]:
    return {
        "Source": "shop@example.com",
        "Destination": {"ToAddresses": ["ann@example.com"]},
        "Message": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "t"}}},
    }


def test_the_trace_sees_none_of_ours_on_moto_unpatched(endpoint):
    """The trace itself can fail: with the patches undone, no replacement runs."""
    with applied(*motoprocess.patches()):
        trace = Trace(every_target())
    assert trace.during(lambda: client(endpoint, "sqs").list_queues()) == set()
