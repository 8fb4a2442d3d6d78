"""The per-row baseline: the seed design that eventflow replaced, on the same moto server.

One SQS message per CSV row and one PutItem per message, as in the design
brief's anti-pattern (about 2,000 calls per 1,000 rows). A producer thread
reads the CSV from S3 and sends each row as its own message; a consumer
thread, standing for the writer function and Lambda's poller, receives up to
10 messages, puts each as its own item and deletes the batch. Rows are not
validated: the baseline is as cheap as it can be except for its calls. The
rate is rows written per second, from the upload to the last item.
"""

from __future__ import annotations

import csv
import io
import json
import threading
import time
import uuid
from typing import Any

from benchmarks.throughput import create_plain_table
from sample_data.generate import write_rows


def naive_rate(clients: Any, bucket: str, rows: int, timeout: float = 600) -> dict[str, Any]:
    """Rows per second of the per-row design for a generated ``rows``-row file."""
    s3, sqs, ddb = clients.s3, clients.sqs, clients.dynamodb
    name = f"naive-{uuid.uuid4().hex[:8]}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    create_plain_table(ddb, name)
    out = io.StringIO()
    write_rows(out, rows)
    key = f"naive/{rows}.csv"
    calls = {"sqs:SendMessage": 0, "dynamodb:PutItem": 0}
    written = 0
    failures: list[BaseException] = []

    def produce() -> None:
        try:
            text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
            for row in csv.DictReader(io.StringIO(text)):
                sqs.send_message(QueueUrl=url, MessageBody=json.dumps(row))
                calls["sqs:SendMessage"] += 1
        except BaseException as error:  # reported on the caller's thread
            failures.append(error)

    def consume(deadline: float) -> None:
        nonlocal written
        try:
            while written < rows and time.monotonic() < deadline and not failures:
                messages = sqs.receive_message(
                    QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1
                ).get("Messages", [])
                for message in messages:
                    row = json.loads(message["Body"])
                    ddb.put_item(
                        TableName=name,
                        Item={
                            "location": {"S": row["location"]},
                            "reading_id": {"S": f"{row['timestamp']}~{row['source']}"},
                            "local_avg": {"S": row["local_avg"]},
                            "remote_avg": {"S": row["remote_avg"]},
                        },
                    )
                    calls["dynamodb:PutItem"] += 1
                    written += 1
                if messages:
                    sqs.delete_message_batch(
                        QueueUrl=url,
                        Entries=[
                            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                            for i, m in enumerate(messages)
                        ],
                    )
        except BaseException as error:
            failures.append(error)

    start = time.perf_counter()
    s3.put_object(Bucket=bucket, Key=key, Body=out.getvalue().encode())
    producer = threading.Thread(target=produce, name="naive-producer")
    consumer = threading.Thread(
        target=consume, args=(time.monotonic() + timeout,), name="naive-consumer"
    )
    producer.start()
    consumer.start()
    producer.join()
    consumer.join()
    elapsed = time.perf_counter() - start
    sqs.delete_queue(QueueUrl=url)
    ddb.delete_table(TableName=name)
    if failures:
        raise failures[0]
    if written < rows:
        raise RuntimeError(f"the per-row baseline wrote {written} of {rows} rows in {timeout}s")
    return {
        "rows": rows,
        "rows_per_s": round(rows / elapsed, 1),
        "seconds": round(elapsed, 2),
        "calls_per_1000_rows": round(sum(calls.values()) * 1000 / rows),
    }
