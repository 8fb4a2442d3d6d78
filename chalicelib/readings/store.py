"""Readings in DynamoDB: item mapping, single-item operations and the two queries.

See :mod:`chalicelib.readings.keys` for the key design. Query methods return items and
a plain resume position; :mod:`chalicelib.readings.api` turns positions into cursors.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.clock import Backoff, iso_utc
from chalicelib.dynamo import batch_get, batch_put, from_item, is_condition_failure, to_item
from chalicelib.errors import Conflict, NotFound
from chalicelib.readings import keys
from chalicelib.readings.model import Reading

# Reads per request when a filter or a shard merge needs more than one page.
MAX_PAGES_PER_REQUEST = 10


def reading_item(reading: Reading, ingest_id: str | None = None) -> dict[str, Any]:
    rid = reading.reading_id
    return to_item(
        {
            keys.READING_PK: reading.location,
            keys.READING_SK: rid,
            keys.BY_DATE_PK: keys.date_shard(reading.location, rid),
            keys.BY_DATE_SK: keys.date_sort(reading.location, rid),
            "source": reading.source,
            "timestamp": iso_utc(reading.timestamp),
            "local_dest": reading.local_dest,
            "local_avg": reading.local_avg,
            "remote_dest": reading.remote_dest,
            "remote_avg": reading.remote_avg,
            "ingest_id": ingest_id,
        }
    )


def reading_from_item(item: dict[str, Any]) -> dict[str, Any]:
    values = from_item(item)
    return {
        "reading_id": values[keys.READING_SK],
        "location": values[keys.READING_PK],
        "source": values["source"],
        "timestamp": values["timestamp"],
        "local_dest": values["local_dest"],
        "local_avg": values["local_avg"],
        "remote_dest": values["remote_dest"],
        "remote_avg": values["remote_avg"],
    }


@dataclass
class _Shard:
    """One date shard being merged: buffered items and where DynamoDB left off."""

    partition: str
    start_key: dict[str, Any] | None
    buffer: list[dict[str, Any]] = field(default_factory=list)
    exhausted: bool = False
    consumed: dict[str, str] | None = None


class ReadingStore:
    def __init__(self, client: Any, table: str):
        self.client = client
        self.table = table

    # -- single readings -------------------------------------------------

    def _key(self, location: str, reading_id: str) -> dict[str, Any]:
        return to_item({keys.READING_PK: location, keys.READING_SK: reading_id})

    def get(self, location: str, reading_id: str) -> dict[str, Any]:
        item = self.client.get_item(TableName=self.table, Key=self._key(location, reading_id)).get(
            "Item"
        )
        if not item:
            raise NotFound(f"no reading {reading_id} at {location}")
        return reading_from_item(item)

    def create(self, reading: Reading) -> dict[str, Any]:
        return self._put(reading, "attribute_not_exists(#pk)", Conflict, "already exists")

    def replace(self, reading: Reading) -> dict[str, Any]:
        return self._put(reading, "attribute_exists(#pk)", NotFound, "does not exist")

    def _put(self, reading: Reading, condition: str, error: type, problem: str) -> dict[str, Any]:
        item = reading_item(reading)
        try:
            self.client.put_item(
                TableName=self.table,
                Item=item,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#pk": keys.READING_PK},
            )
        except ClientError as e:
            if is_condition_failure(e):
                raise error(
                    f"reading {reading.reading_id} at {reading.location} {problem}"
                ) from None
            raise
        return reading_from_item(item)

    def delete(self, location: str, reading_id: str) -> None:
        try:
            self.client.delete_item(
                TableName=self.table,
                Key=self._key(location, reading_id),
                ConditionExpression="attribute_exists(#pk)",
                ExpressionAttributeNames={"#pk": keys.READING_PK},
            )
        except ClientError as e:
            if is_condition_failure(e):
                raise NotFound(f"no reading {reading_id} at {location}") from None
            raise

    def put_many(self, items: Iterable[dict[str, Any]], backoff: Backoff) -> int:
        """Idempotent bulk write (the writer's path). Returns BatchWriteItem calls made."""
        return batch_put(
            self.client, self.table, items, (keys.READING_PK, keys.READING_SK), backoff
        )

    def put_many_unless_changed(
        self, items: list[dict[str, Any]], ingest_id: str, backoff: Backoff
    ) -> int:
        """Put the items that are absent or still ``ingest_id``'s own; returns how many
        were left alone because the API or another upload wrote them since.

        Not atomic per item: a write between the read and the put is
        overwritten (see :mod:`chalicelib.readings.writer`).
        """
        names = (keys.READING_PK, keys.READING_SK)
        wanted = {tuple(item[n]["S"] for n in names): item for item in items}
        stored = batch_get(
            self.client,
            self.table,
            [{n: {"S": value} for n, value in zip(names, key, strict=True)} for key in wanted],
            (*names, "ingest_id"),
            backoff,
        )
        changed = {
            tuple(item[n]["S"] for n in names)
            for item in stored
            if item.get("ingest_id", {}).get("S") != ingest_id
        }
        batch_put(
            self.client,
            self.table,
            [item for key, item in wanted.items() if key not in changed],
            names,
            backoff,
        )
        return sum(1 for item in items if tuple(item[n]["S"] for n in names) in changed)

    # -- queries ---------------------------------------------------------

    def by_location(
        self,
        location: str,
        start: datetime,
        end: datetime,
        source: str | None,
        limit: int,
        after: str | None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Readings of one location in ``[start, end]``, in time order.

        ``after`` is the reading id to resume after; returns the page and the
        reading id to resume from, or None at the end.
        """
        args: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "#pk = :pk AND #sk BETWEEN :lo AND :hi",
            "ExpressionAttributeNames": {"#pk": keys.READING_PK, "#sk": keys.READING_SK},
            "ExpressionAttributeValues": to_item(
                {
                    ":pk": location,
                    ":lo": keys.timestamp_key(start),
                    # Every reading id of the end instant sorts below this bound.
                    ":hi": keys.timestamp_key(end) + keys.ID_SEPARATOR + "\U0010ffff",
                }
            ),
        }
        if source is not None:
            args["FilterExpression"] = "#source = :source"
            args["ExpressionAttributeNames"]["#source"] = "source"
            args["ExpressionAttributeValues"][":source"] = {"S": source}
        start_key = self._key(location, after) if after else None
        items: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES_PER_REQUEST):
            # DynamoDB applies Limit before the filter, so ask only for what is
            # still missing: then a full page ends exactly on its last item.
            page_args = {**args, "Limit": limit - len(items)}
            if start_key:
                page_args["ExclusiveStartKey"] = start_key
            response = self.client.query(**page_args)
            items.extend(reading_from_item(i) for i in response.get("Items", []))
            start_key = response.get("LastEvaluatedKey")
            if not start_key or len(items) >= limit:
                break
        resume = start_key[keys.READING_SK]["S"] if start_key else None
        return items, resume

    def by_date(
        self, day: date, limit: int, positions: dict[int, dict[str, str] | None] | None
    ) -> tuple[list[dict[str, Any]], dict[int, dict[str, str] | None] | None]:
        """Readings of one UTC day, in time order, merged across the date shards.

        ``positions`` maps each unfinished shard to the key to resume after
        (None: from its start); a shard missing from it is finished. Returns
        the page and the positions for the next page, or None at the end.
        """
        if positions is None:
            positions = {n: None for n in range(keys.DATE_SHARDS)}
        shards = {
            n: _Shard(partition=f"{day.isoformat()}#{n:02d}", start_key=pos, consumed=pos)
            for n, pos in positions.items()
        }
        page_size = max(10, -(-limit // keys.DATE_SHARDS) * 2)
        items: list[dict[str, Any]] = []
        heap: list[tuple[str, int]] = []
        for n, shard in shards.items():
            self._refill(shard, page_size)
            if shard.buffer:
                heapq.heappush(heap, (shard.buffer[0][keys.BY_DATE_SK]["S"], n))
        while heap and len(items) < limit:
            _, n = heapq.heappop(heap)
            shard = shards[n]
            item = shard.buffer.pop(0)
            items.append(reading_from_item(item))
            shard.consumed = {
                keys.READING_PK: item[keys.READING_PK]["S"],
                keys.READING_SK: item[keys.READING_SK]["S"],
            }
            if not shard.buffer:
                self._refill(shard, page_size)
            if shard.buffer:
                heapq.heappush(heap, (shard.buffer[0][keys.BY_DATE_SK]["S"], n))
        remaining = {
            n: shard.consumed for n, shard in shards.items() if shard.buffer or not shard.exhausted
        }
        return items, (remaining or None)

    def _refill(self, shard: _Shard, page_size: int) -> None:
        # A shard that leaves the merge while it still has items would break
        # the time order, so keep reading until it has one or has none left.
        while not shard.buffer and not shard.exhausted:
            self._read_page(shard, page_size)

    def _read_page(self, shard: _Shard, page_size: int) -> None:
        args: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": keys.BY_DATE_INDEX,
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": {"#pk": keys.BY_DATE_PK},
            "ExpressionAttributeValues": {":pk": {"S": shard.partition}},
            "Limit": page_size,
        }
        if shard.start_key:
            args["ExclusiveStartKey"] = self._index_key(shard.start_key)
        response = self.client.query(**args)
        shard.buffer.extend(response.get("Items", []))
        last = response.get("LastEvaluatedKey")
        if last:
            shard.start_key = {
                keys.READING_PK: last[keys.READING_PK]["S"],
                keys.READING_SK: last[keys.READING_SK]["S"],
            }
        else:
            shard.exhausted = True

    @staticmethod
    def _index_key(position: dict[str, str]) -> dict[str, Any]:
        location, rid = position[keys.READING_PK], position[keys.READING_SK]
        return to_item(
            {
                keys.READING_PK: location,
                keys.READING_SK: rid,
                keys.BY_DATE_PK: keys.date_shard(location, rid),
                keys.BY_DATE_SK: keys.date_sort(location, rid),
            }
        )
