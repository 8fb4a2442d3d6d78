"""How many batches of each queue Lambda may run at once: the mapping's MaximumConcurrency.

``app.py`` passes these to ``on_sqs_message`` (so ``chalice deploy`` and
``chalice package`` set them), and ``infra.stack`` reads the same numbers
for its renderers and for the local cloud's pollers. AWS accepts 2 to 1,000.
Without a bound, Lambda scales an SQS mapping out to 1,250 concurrent batches,
drawn from the account's one concurrency pool: a large upload could take every
slot and throttle the orders functions and the API.
"""

from __future__ import annotations

MAXIMUM_CONCURRENCY: dict[str, int] = {
    # Uploads are rare and each ingest streams one whole file; two at once
    # (AWS's floor) keeps a burst of uploads from fanning out.
    "ingest_from_queue": 2,
    # The writer is where a large upload fans out (one chunk of 1,000 rows per
    # invocation). Five keeps the readings table's writes and the account's
    # pool bounded, so orders and the API keep their capacity; a big file
    # takes longer instead.
    "write_readings": 5,
    # Partner feed on a FIFO queue: Lambda runs at most one batch per message
    # group (customer) anyway; five customers at once is ample for the feed.
    "intake_orders": 5,
    # FIFO, grouped by order; every reservation of a popular product's stock
    # is a transaction on the same item, so more concurrent batches only add
    # TransactionConflict retries.
    "update_inventory": 3,
    # SES sends at a quota (14 emails/s on a new production account, 1/s in
    # the sandbox); two senders stay under it, so sends are not throttled.
    "send_notifications": 2,
    # Every event of a day updates that day's one counters item: concurrent
    # batches would only conflict on it.
    "update_analytics": 2,
}
