"""``localcloud.motoshortcuts`` gives moto's own answers, and is the path moto takes.

A speed-up has no fault to remove, so each part is checked two ways against
a real moto server: what the server answers is the same with the part as
without it, and with it moto's own, slower code is no longer run.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.dynamodb.models.dynamo_type import Item
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

from localcloud import motoshortcuts
from localcloud.motopatch import applied
from tests.localcloud.moto_patch_harness import _endpoint, client  # noqa: F401

HOSTS = ["dynamodb.us-east-1.amazonaws.com", "sqs.us-east-1.amazonaws.com", "s3", None]


def counting(monkeypatch, owner: type, name: str, when=lambda *args: True) -> list[int]:
    """Count the calls of moto's own ``owner.name`` that ``when`` accepts, under whatever
    is installed later."""
    calls = [0]
    original = getattr(owner, name)

    @functools.wraps(original)
    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += when(*args, **kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return calls


def test_the_remembered_backend_lookup_answers_as_moto_does():
    dispatcher = DomainDispatcherApplication(create_backend_app)
    motos_own = [dispatcher.get_backend_for_host(h) for h in HOSTS]
    with applied(motoshortcuts.BACKEND_LOOKUP):
        first = [dispatcher.get_backend_for_host(h) for h in HOSTS]
        again = [dispatcher.get_backend_for_host(h) for h in HOSTS]
    assert first == again == motos_own == ["dynamodb", "sqs", "s3", None]


@pytest.mark.parametrize("patched", [True, False], ids=["remembered", "moto's own"])
def test_a_server_looks_a_host_up_once_with_the_memo_and_per_request_without(
    endpoint, monkeypatch, patched
):
    # The costly lookup: moto first tries no host (answered at once), then the request's.
    calls = counting(
        monkeypatch,
        DomainDispatcherApplication,
        "get_backend_for_host",
        when=lambda _, host: host is not None,
    )
    sqs = client(endpoint, "sqs")
    with applied(*((motoshortcuts.BACKEND_LOOKUP,) if patched else ())):
        answers = [sqs.list_queues(QueueNamePrefix="none").get("QueueUrls", []) for _ in range(5)]
    assert answers == [[]] * 5
    assert calls[0] == (1 if patched else 5)


def _table(ddb, name: str) -> None:
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def _put(ddb, table: str, last: int) -> Any:
    """Put an item ``last`` bytes around moto's size limit; what the server answered."""
    # "pk" (2) + 8 bytes and "a" (1) + 40 digits..., then "z" + the rest.
    fill = motoshortcuts.ITEM_SIZE_LIMIT - (2 + 8) - (1 + 40) - 1
    item = {
        "pk": {"S": f"item{last:04d}"},
        "a": {"N": "1" * 40},
        "z": {"S": "y" * (fill - 2 + last)},
    }
    try:
        ddb.put_item(TableName=table, Item=item)
    except ClientError as error:
        return error.response["Error"]["Code"], error.response["Error"]["Message"]
    stored = ddb.get_item(TableName=table, Key={"pk": item["pk"]})["Item"]
    return stored == item


@pytest.mark.parametrize("last", [0, 1, 2, 3, 10_000])
def test_a_new_item_is_sized_in_one_pass_and_refused_exactly_when_moto_would(
    endpoint, monkeypatch, last
):
    """AWS: an item over 400 KB is refused (moto's bound is 405,000 bytes)."""
    calls = counting(monkeypatch, Item, "__init__")
    ddb = client(endpoint, "dynamodb")
    name = f"sized-{last}"
    _table(ddb, name)
    motos = _put(ddb, name, last)
    ddb.delete_item(TableName=name, Key={"pk": {"S": f"item{last:04d}"}})
    built_by_moto = calls[0]
    with applied(motoshortcuts.ITEM_SIZE):
        ours = _put(ddb, name, last)
        built_by_moto_patched = calls[0] - built_by_moto
    assert ours == motos
    assert (ours is True) == (last <= 2)
    assert built_by_moto >= 1 and built_by_moto_patched == 0
