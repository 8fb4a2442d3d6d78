"""What a copy of the project declares and provisions for one SQS consumer, as JSON.

Run by ``tests/infra/test_add_consumer.py`` in a fresh interpreter whose
working directory and ``PYTHONPATH`` are the copy, so that ``app``,
``chalicelib`` and ``infra`` are the copy's own modules (the report names the
files it imported, for the test to check):

    python -c "$(cat consumer_probe.py)" declared|provisioned FUNCTION QUEUE_KEY OUT.json

``declared``: for each stage, the consumer's queue, its subscriptions, its
mapping, its function with its grants, its IAM policy (ARNs filled in for one
account), the alarms that watch it and the dashboard; and the event source
``app.py`` registers for it. ``provisioned``: the ``local`` stage provisioned
on moto (``mock_aws``), the queue, its DLQ and its subscription as SNS and SQS
report them; then an order event published to the topic, received from the
consumer's queue, and delivered to the app's handler twice (a redelivery), with
what each invocation answered and the consumer's records in the idempotency table.

The report goes to a file: the handlers print their metrics (EMF) on stdout.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from typing import Any

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
STAGES = ("local", "dev", "prod")


def declared(function: str, queue_key: str) -> dict[str, Any]:
    from infra import iam
    from infra.arns import Account
    from infra.stack import declare
    from infra.stageconfig import StageConfig

    stages = {}
    for stage in STAGES:
        stack = declare(StageConfig.load(stage))
        queue = stack.queue(queue_key)
        declared_function = stack.function(function)
        watched = {queue.name, queue.dlq_name, declared_function.physical_name}
        stages[stage] = {
            "queue": {**asdict(queue), "dlq_name": queue.dlq_name, "fifo": queue.fifo},
            "subscriptions": [asdict(s) for s in stack.subscriptions if s.queue_key == queue_key],
            "event_sources": [asdict(s) for s in stack.event_sources if s.function == function],
            "function": asdict(declared_function),
            "grant_types": [type(g).__name__ for g in declared_function.grants],
            "policy": iam.fill(iam.policy(stack, function), Account(ACCOUNT_ID, REGION)),
            "alarms": [
                asdict(a) for a in stack.alarms if any(v in watched for _, v in a.dimensions)
            ],
            "dashboard": [d.body(REGION) for d in stack.dashboards],
        }
    sources = _app_sources(function)
    # Importing app.py loads no consumer's domain module (tests/test_cold_import.py).
    loaded = sorted(name for name in sys.modules if name.startswith("chalicelib.orders."))
    return {"stages": stages, "app_sources": sources, "orders_modules_at_import": loaded}


def _app_sources(function: str) -> list[dict[str, Any]]:
    """The event sources ``app.py`` registers for ``function`` in the local stage."""
    import app

    return [
        {
            "type": type(source).__name__,
            "queue": getattr(source, "queue", None),
            "batch_size": getattr(source, "batch_size", None),
            "maximum_concurrency": getattr(source, "maximum_concurrency", None),
        }
        for source in app.app.event_sources
        if source.name == function
    ]


def provisioned(function: str, queue_key: str) -> dict[str, Any]:
    from moto import mock_aws

    from chalicelib.aws import Clients
    from infra.provision import Provisioner
    from infra.stack import declare
    from infra.stageconfig import StageConfig

    config = StageConfig.load("local")
    stack = declare(config)
    with mock_aws():
        clients = Clients()
        outputs = Provisioner(clients).apply(stack)
        queue, dlq = outputs.queues[queue_key], outputs.queues[f"{queue_key}-dlq"]
        sqs, sns = clients.sqs, clients.sns
        attributes = sqs.get_queue_attributes(QueueUrl=queue["url"], AttributeNames=["All"])
        subscriptions = []
        for topic in outputs.topics.values():
            listed = sns.list_subscriptions_by_topic(TopicArn=topic["arn"])["Subscriptions"]
            for subscription in listed:
                if subscription["Endpoint"] == queue["arn"]:
                    found = sns.get_subscription_attributes(
                        SubscriptionArn=subscription["SubscriptionArn"]
                    )["Attributes"]
                    subscriptions.append(
                        {
                            "topic": topic["name"],
                            "raw": found.get("RawMessageDelivery"),
                            "filter_policy": json.loads(found.get("FilterPolicy") or "null"),
                        }
                    )
        report: dict[str, Any] = {
            "queue": {"name": queue["name"], "attributes": attributes["Attributes"]},
            "dlq": {
                "name": dlq["name"],
                "exists": bool(sqs.get_queue_url(QueueName=dlq["name"])["QueueUrl"]),
            },
            "dlq_arn": dlq["arn"],
            "subscriptions": subscriptions,
        }
        report["delivery"] = _deliver_one_event(
            function, config, clients, outputs.topics["order-events"]["arn"], queue
        )
    return report


def _deliver_one_event(function, config, clients, topic_arn, queue) -> dict[str, Any]:
    """Publish an event as the publisher does; hand what the queue holds to the handler, twice."""
    from chalice.test import Client

    import app
    from chalicelib.orders import events
    from chalicelib.orders.keys import IDEMPOTENCY_PK
    from chalicelib.services import Services

    event = events.OrderEvent(
        event_id=events.event_id("0" * 32, 1),
        event_type="ORDER_CREATED",
        order_id="0" * 32,
        customer_id="c-1",
        customer_email="c-1@example.com",
        old_status=None,
        new_status="PENDING",
        items=[{"product_id": "p-1", "quantity": 1, "unit_price": "2.50"}],
        total="2.50",
        version=1,
        occurred_at="2026-01-02T03:04:05+00:00",
        reason=None,
    )
    published = events.publish(clients.sns, topic_arn, [event])
    received = clients.sqs.receive_message(
        QueueUrl=queue["url"],
        MaxNumberOfMessages=10,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
        WaitTimeSeconds=1,
    ).get("Messages", [])
    records = [_lambda_record(message, queue["arn"]) for message in received]
    services = Services(config.settings(), clients=clients)
    app.services = lambda: services
    answers = []
    with Client(app.app, stage_name="local") as client:
        # Nothing to hand over if nothing arrived (the test says so, not Powertools).
        for _ in range(2 if records else 0):
            response = client.lambda_.invoke(function, {"Records": records})
            answers.append(response.payload)
    table = config.settings().idempotency_table
    items = clients.dynamodb.scan(TableName=table)["Items"]
    return {
        "published": published.published,
        "event_id": event.event_id,
        "received_bodies": [json.loads(m["Body"]) for m in received],
        "answers": answers,
        "idempotency_ids": sorted(item[IDEMPOTENCY_PK]["S"] for item in items),
    }


def _lambda_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """An SQS message as Lambda's poller hands it to the function."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {
            name: {"dataType": value["DataType"], "stringValue": value.get("StringValue")}
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


def main(argv: list[str]) -> None:
    mode, function, queue_key, out = argv
    # app.py reads its stage at import, as Chalice sets it; these probes run the local one.
    os.environ["EVENTFLOW_STAGE"] = "local"
    report = (declared if mode == "declared" else provisioned)(function, queue_key)
    import app
    import chalicelib
    import infra

    report["imported_from"] = [app.__file__, chalicelib.__file__, infra.__file__]
    with open(out, "w") as file:
        json.dump(report, file, indent=2, sort_keys=True, default=str)


if __name__ == "__main__":
    main(sys.argv[1:])
