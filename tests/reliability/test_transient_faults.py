"""Transient AWS faults under botocore's retries: throttling, 5xx, lost responses.

Each scenario injects its fault at the HTTP level of the app's own clients, so
botocore's standard retry mode (``chalicelib.aws.client_config``) sees it as it
would see AWS's answer. The pipeline then runs to the end, and the invariant
must hold: no job left RUNNING, every row stored once, every DLQ empty.
"""

from __future__ import annotations

import pytest

from tests.reliability.faults import Every, LostResponse, ServerError, Throttle, ops, services
from tests.reliability.world import assert_invariant, csv_file

WRITES = ops(
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:TransactWriteItems",
    "dynamodb:BatchWriteItem",
    "sqs:SendMessageBatch",
    "s3:PutObject",
)


@pytest.mark.parametrize(
    "rule",
    [
        pytest.param(lambda: Throttle(services("dynamodb"), Every(3)), id="dynamodb-throttled"),
        pytest.param(lambda: Throttle(services("sqs"), Every(2)), id="sqs-throttled"),
        pytest.param(lambda: ServerError(services("dynamodb"), Every(3, 2)), id="dynamodb-5xx"),
        pytest.param(lambda: ServerError(services("sqs"), Every(2)), id="sqs-5xx"),
        pytest.param(lambda: ServerError(services("s3"), Every(2)), id="s3-5xx"),
    ],
)
def test_throttling_and_server_errors_are_retried_to_completion(worlds, botocore_sleeps, rule):
    fault = rule()
    with worlds.new(fault) as world:
        world.upload(csv_file(12, 2))
        world.drain()
        assert fault.injected > 0
        # botocore retried them, with backoff, and nothing reached the DLQs.
        assert len(botocore_sleeps.sleeps) >= fault.injected
        assert_invariant(world)


@pytest.mark.parametrize("first", range(1, 7))
def test_responses_lost_after_the_write_landed(worlds, first):
    """Every write is retried by botocore after its response was lost; the retry
    finds its own write already applied (moto answers a repeated transaction
    with a condition failure, which the writer must take as "already counted")."""
    fault = LostResponse(WRITES, Every(3, first))
    with worlds.new(fault) as world:
        world.upload(csv_file(12, 2))
        world.drain()
        assert fault.injected > 0
        assert_invariant(world)
