"""Moves order events through the real handlers under moto, step by step.

The stream handler publishes what the orders table's stream holds since the
last step; a consumer's queue is then delivered to its handler, each batch
``times`` times (a redelivery is the same batch again), and what the handler
does not report as failed is deleted, as Lambda's poller would.
"""

from __future__ import annotations

from typing import Any

from chalicelib.orders import handlers
from localcloud.runtime.sqs import lambda_record
from tests.orders.streams import stream_records


class OrderFlow:
    def __init__(self, services, outputs):
        self.services = services
        self.outputs = outputs
        self._after: str | None = None

    def publish(self) -> int:
        """Publish the events of every stream record since the last call; returns how many
        records were handled."""
        records = stream_records(self.services, after=self._after)
        if records:
            response = handlers.publish_order_events({"Records": records}, None, self.services)
            assert response == {"batchItemFailures": []}, response
            self._after = records[-1]["dynamodb"]["SequenceNumber"]
        return len(records)

    def deliver(self, queue_key: str, handler, times: int = 1) -> list[dict[str, Any]]:
        """Deliver every message on the queue; returns the handler's responses."""
        sqs = self.services.clients.sqs
        queue = self.outputs.queues[queue_key]
        responses = []
        while True:
            messages = sqs.receive_message(
                QueueUrl=queue["url"],
                MaxNumberOfMessages=10,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                return responses
            event = {"Records": [lambda_record(m, queue["arn"], "us-east-1") for m in messages]}
            failed: set[str] = set()
            for _ in range(times):
                response = handler(event, None, self.services)
                responses.append(response)
                failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
            if failed:
                return responses  # leave them for the test to look at
            for message in messages:
                sqs.delete_message(QueueUrl=queue["url"], ReceiptHandle=message["ReceiptHandle"])

    def settle(self, times: int = 1) -> None:
        """Publish and deliver until nothing moves (inventory's verdicts are events too)."""
        self.publish()
        while True:
            self.deliver("inventory", handlers.update_inventory, times)
            if not self.publish():
                return


def deliver_as_lambda(services, outputs, queue_key: str, handler) -> list[dict[str, Any]]:
    """Deliver a queue as Lambda's poller would, each failure waited out (made visible
    again at once), until the queue is empty or a message has had more than its
    receives (the DLQ takes it); returns the handler's responses."""
    from infra.resources import MAX_RECEIVE_COUNT

    sqs, queue = services.clients.sqs, outputs.queues[queue_key]
    responses = []
    for _ in range(MAX_RECEIVE_COUNT + 2):
        messages = sqs.receive_message(
            QueueUrl=queue["url"], MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
        ).get("Messages", [])
        if not messages:
            break
        event = {"Records": [lambda_record(m, queue["arn"], "us-east-1") for m in messages]}
        response = handler(event, None, services)
        responses.append(response)
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        for message in messages:
            receipt = message["ReceiptHandle"]
            if message["MessageId"] in failed:
                sqs.change_message_visibility(
                    QueueUrl=queue["url"], ReceiptHandle=receipt, VisibilityTimeout=0
                )
            else:
                sqs.delete_message(QueueUrl=queue["url"], ReceiptHandle=receipt)
    return responses
