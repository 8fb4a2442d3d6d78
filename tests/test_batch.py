"""Partial batch responses and backoff of failed SQS messages (chalicelib.batch), under moto."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.batch import RetryPolicy, backoff_delays, queue_url, sqs_batch
from chalicelib.config import SQS_RETRY_BASE_SECONDS
from infra.stack import declare
from infra.stageconfig import StageConfig

# -- the schedule ----------------------------------------------------------------

counts = st.integers(min_value=1, max_value=10_000)
bases = st.integers(min_value=1, max_value=60)
caps = st.integers(min_value=0, max_value=43_200)


@given(base=bases, cap=caps, count=counts, seed=st.integers(0, 2**32))
def test_a_delay_lies_between_half_its_bound_and_the_bound_and_never_past_the_cap(
    base, cap, count, seed
):
    policy = RetryPolicy(base_seconds=base, uniform=random.Random(seed).uniform)
    bound = policy.bound(count, cap)
    delay = policy.delay(count, cap)
    assert isinstance(delay, int)
    assert bound <= cap
    assert bound // 2 <= delay <= bound


@given(base=bases, cap=caps, count=counts)
def test_the_bound_doubles_with_each_receive_until_the_cap(base, cap, count):
    policy = RetryPolicy(base_seconds=base)
    assert policy.bound(1, cap) == min(base, cap)
    assert policy.bound(count + 1, cap) == min(cap, 2 * policy.bound(count, cap))


def test_the_schedule_is_two_four_eight_seconds_capped_at_the_visibility_timeout():
    policy = RetryPolicy(base_seconds=2, uniform=lambda low, high: high)
    assert [policy.delay(n, cap=30) for n in range(1, 7)] == [2, 4, 8, 16, 30, 30]


def test_the_declared_queues_back_off_from_the_shipped_base_to_their_visibility_timeout():
    for stage in ("local", "dev", "prod"):
        for queue in declare(StageConfig.load(stage)).queues:
            base, cap = queue.retry_backoff_seconds
            assert (base, cap) == (SQS_RETRY_BASE_SECONDS, queue.visibility_timeout)
            assert 1 <= base < cap


def _record(message_id: str, count: int, group: str | None = None) -> dict:
    attributes = {"ApproximateReceiveCount": str(count)}
    if group is not None:
        attributes["MessageGroupId"] = group
    return {"messageId": message_id, "attributes": attributes}


@given(
    groups=st.lists(st.sampled_from("abc"), min_size=1, max_size=10),
    counts_=st.lists(counts, min_size=10, max_size=10),
    failed_mask=st.lists(st.booleans(), min_size=10, max_size=10),
    seed=st.integers(0, 2**32),
)
def test_fifo_failures_of_one_group_share_the_first_failures_delay(
    groups, counts_, failed_mask, seed
):
    records = [_record(f"m{i}", counts_[i], g) for i, g in enumerate(groups)]
    failed = {r["messageId"] for r, f in zip(records, failed_mask, strict=False) if f}
    policy = RetryPolicy(base_seconds=1, uniform=random.Random(seed).uniform)
    delays = backoff_delays(records, failed, policy, cap=900, fifo=True)
    assert set(delays) == failed
    for group in set(groups):
        in_group = [r for r in records if r["attributes"]["MessageGroupId"] == group]
        group_failed = [r["messageId"] for r in in_group if r["messageId"] in failed]
        if group_failed:
            first = next(r for r in in_group if r["messageId"] in failed)
            assert {delays[m] for m in group_failed} == {delays[first["messageId"]]}
            bound = policy.bound(int(first["attributes"]["ApproximateReceiveCount"]), 900)
            assert bound // 2 <= delays[first["messageId"]] <= bound


def test_a_queue_url_is_built_from_the_records_arn_and_the_clients_endpoint():
    arn = "arn:aws:sqs:eu-west-1:111122223333:orders.fifo"
    assert queue_url(arn, "https://sqs.eu-west-1.amazonaws.com") == (
        "https://sqs.eu-west-1.amazonaws.com/111122223333/orders.fifo"
    )
    assert (
        queue_url(arn, "http://127.0.0.1:5000/") == "http://127.0.0.1:5000/111122223333/orders.fifo"
    )
    with pytest.raises(ValueError):
        queue_url("arn:aws:sns:eu-west-1:111122223333:topic", "http://x")


# -- on a queue, under moto ----------------------------------------------------


@pytest.fixture
def queue(clients):
    """A real queue with a long visibility timeout, and its messages as a Lambda event."""
    sqs = clients.sqs

    def make(name: str, bodies: list[str], **send) -> tuple[str, dict]:
        fifo = name.endswith(".fifo")
        attributes = {"VisibilityTimeout": "600"}
        if fifo:
            attributes["FifoQueue"] = "true"
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        for body in bodies:
            extra = {"MessageGroupId": body[0], "MessageDeduplicationId": body} if fifo else {}
            sqs.send_message(QueueUrl=url, MessageBody=body, **extra)
        messages = []
        while len(messages) < len(bodies):
            messages += sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
            )["Messages"]
        records = [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m["Attributes"],
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
            }
            for m in messages
        ]
        return url, {"Records": records}

    return make


@pytest.fixture
def visibility_changes(clients):
    """What the handler asked SQS for: the real calls, observed on their way to moto."""
    changes: list[dict] = []

    def observe(params, **_):
        changes.extend(params["Entries"])

    clients.sqs.meta.events.register(
        "provide-client-params.sqs.ChangeMessageVisibilityBatch", observe
    )
    return changes


def _fail_bodies(*bad: str):
    def handle(record):
        if record.body in bad:
            raise RuntimeError(f"cannot process {record.body}")

    return handle


def test_only_the_failed_messages_are_backed_off_within_the_policys_bounds(
    clients, queue, visibility_changes
):
    _, event = queue("work", ["a", "b", "c"])
    policy = RetryPolicy(base_seconds=2)

    response = sqs_batch(event, None, _fail_bodies("b"), retry=policy, sqs=clients.sqs)

    by_body = {r["body"]: r for r in event["Records"]}
    assert response == {"batchItemFailures": [{"itemIdentifier": by_body["b"]["messageId"]}]}
    [change] = visibility_changes
    assert change["ReceiptHandle"] == by_body["b"]["receiptHandle"]
    assert 1 <= change["VisibilityTimeout"] <= 2  # first receive: base 2 s, not 600


def test_the_backed_off_message_is_visible_again_long_before_the_visibility_timeout(clients, queue):
    url, event = queue("work", ["a"])
    # The smallest delay a policy can give: the message is back at once.
    policy = RetryPolicy(base_seconds=1, cap_seconds=0)

    sqs_batch(event, None, _fail_bodies("a"), retry=policy, sqs=clients.sqs)

    again = clients.sqs.receive_message(QueueUrl=url, MessageSystemAttributeNames=["All"])
    [message] = again["Messages"]
    assert message["Body"] == "a" and message["Attributes"]["ApproximateReceiveCount"] == "2"


def test_a_fifo_groups_later_messages_fail_with_it_and_share_its_delay(
    clients, queue, visibility_changes
):
    _, event = queue("work.fifo", ["a1", "a2", "b1", "a3"])
    policy = RetryPolicy(base_seconds=4)

    response = sqs_batch(event, None, _fail_bodies("a2"), retry=policy, sqs=clients.sqs)

    ids = {r["body"]: r["messageId"] for r in event["Records"]}
    failed = [f["itemIdentifier"] for f in response["batchItemFailures"]]
    assert failed == [ids["a2"], ids["a3"]]  # b1 went on; a1 succeeded before a2
    handles = {r["receiptHandle"]: r["body"] for r in event["Records"]}
    assert sorted(handles[c["ReceiptHandle"]] for c in visibility_changes) == ["a2", "a3"]
    assert len({c["VisibilityTimeout"] for c in visibility_changes}) == 1
    assert 2 <= visibility_changes[0]["VisibilityTimeout"] <= 4


def test_an_all_failed_batch_is_reported_not_raised_and_all_backed_off(
    clients, queue, visibility_changes
):
    _, event = queue("work", ["a", "b"])
    response = sqs_batch(event, None, _fail_bodies("a", "b"), retry=RetryPolicy(2), sqs=clients.sqs)
    assert len(response["batchItemFailures"]) == 2
    assert len(visibility_changes) == 2


def test_a_visibility_change_that_fails_still_returns_the_partial_response(clients, queue):
    url, event = queue("work", ["a", "b"])
    clients.sqs.delete_queue(QueueUrl=url)  # GetQueueAttributes now fails

    response = sqs_batch(event, None, _fail_bodies("a"), retry=RetryPolicy(2), sqs=clients.sqs)

    assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == [
        event["Records"][0]["messageId"]
    ]


def test_without_a_policy_nothing_is_changed(clients, queue, visibility_changes):
    _, event = queue("work", ["a"])
    response = sqs_batch(event, None, _fail_bodies("a"))
    assert len(response["batchItemFailures"]) == 1
    assert visibility_changes == []


def test_the_writer_backs_off_a_failing_chunk_on_its_own_queue(
    iam_calls, services, outputs, visibility_changes
):
    """The real handler: a chunk that cannot be written comes back on the backoff schedule,
    and ChangeMessageVisibility is a call its IAM policy allows (checked at session end)."""
    from chalicelib.readings import handlers
    from tests.readings.pipeline import receive, to_event

    sqs, url = services.clients.sqs, outputs.queues["ingest"]["url"]
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"v": 999}))
    event = to_event(receive(sqs, url), arn=outputs.queues["ingest"]["arn"])

    response = handlers.write_readings(event, None, services)

    assert len(response["batchItemFailures"]) == 1
    [change] = visibility_changes
    assert 1 <= change["VisibilityTimeout"] <= SQS_RETRY_BASE_SECONDS
    recorded = iam_calls.for_function("write_readings")
    calls = {(c.action, c.resource.rsplit(":", 1)[1]) for c in recorded}
    assert ("sqs:ChangeMessageVisibility", "eventflow-local-ingest") in calls


def test_a_record_from_no_known_queue_is_reported_but_not_backed_off(clients, queue):
    _, event = queue("work", ["a"])
    event["Records"][0]["eventSourceARN"] = "not-an-arn"
    response = sqs_batch(event, None, _fail_bodies("a"), retry=RetryPolicy(2), sqs=clients.sqs)
    assert len(response["batchItemFailures"]) == 1
