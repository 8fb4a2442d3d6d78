"""What the packaged dev and prod templates promise, route by route and alarm by alarm.

Read from what ``chalice package`` produced (the prod SAM template, and the
dev and prod Terraform), not from the code that renders them:

* every write route (POST, PUT, PATCH, DELETE) needs IAM (SigV4) auth; so
  does every route, whatever its method, under a private path prefix
  (:data:`PRIVATE_PREFIXES`, one list to extend: orders, products,
  customers, analytics and ingest jobs); the readings read routes stay open;
* every declared queue's DLQ has a not-empty alarm, every queue an age alarm,
  every function error and throttle alarms, every stream consumer an
  iterator-age alarm: each on the right metric, dimensions and threshold,
  notifying the alerts topic.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra.resources import Stack
from tests.infra.conftest import stack_for

WRITE_METHODS = frozenset({"post", "put", "patch", "delete"})
# Every method of every route under these needs IAM auth. Extend it as routes land.
PRIVATE_PREFIXES = ("/products", "/orders", "/customers", "/analytics", "/ingests")
# Routes anyone may read, and must keep reading without signing requests.
OPEN_READ_ROUTES = (
    ("/health", "get"),
    ("/readings", "get"),
    ("/readings/{location}", "get"),
    ("/readings/{location}/{reading_id}", "get"),
)
HTTP_METHODS = WRITE_METHODS | {"get", "head"}


def needs_iam(path: str, method: str) -> bool:
    private = any(path == p or path.startswith(p + "/") for p in PRIVATE_PREFIXES)
    return method in WRITE_METHODS or private


# -- reading the templates ---------------------------------------------------------


def _sam_swagger(sam: dict[str, Any]) -> dict[str, Any]:
    [api] = [r for r in sam["Resources"].values() if r["Type"] == "AWS::Serverless::Api"]
    return api["Properties"]["DefinitionBody"]


def _terraform(directory: Path) -> dict[str, Any]:
    return {p.name: json.loads(p.read_text()) for p in directory.glob("*.tf.json")}


def _terraform_swagger(directory: Path) -> dict[str, Any]:
    return json.loads(_terraform(directory)["chalice.tf.json"]["locals"]["chalice_api_swagger"])


def _routes(swagger: dict[str, Any]) -> dict[tuple[str, str], bool]:
    """(path, method) -> whether API Gateway demands a SigV4 signature for it."""
    sigv4 = {
        name
        for name, scheme in swagger.get("securityDefinitions", {}).items()
        if scheme.get("x-amazon-apigateway-authtype") == "awsSigv4"
    }
    routes = {}
    for path, methods in swagger["paths"].items():
        for method, operation in methods.items():
            if method not in HTTP_METHODS:
                continue  # OPTIONS (CORS preflight) cannot be signed
            schemes = {name for entry in operation.get("security", []) for name in entry}
            routes[(path, method)] = bool(schemes & sigv4)
    return routes


@pytest.fixture(params=["prod-cloudformation", "dev-terraform", "prod-terraform"])
def swagger(request, prod_sam, terraform_dirs) -> dict[str, Any]:
    stage, kind = request.param.split("-")
    if kind == "cloudformation":
        return _sam_swagger(prod_sam)
    return _terraform_swagger(terraform_dirs[stage])


# -- routes --------------------------------------------------------------------------


def test_every_route_of_the_app_is_in_the_template(swagger):
    import app

    declared = {
        (path, method.lower()) for path, entries in app.app.routes.items() for method in entries
    }
    assert set(_routes(swagger)) == declared


def test_write_routes_and_private_prefixes_need_iam_auth_and_reads_stay_open(swagger):
    routes = _routes(swagger)
    assert any(method in WRITE_METHODS for _, method in routes), "no write route checked"
    for (path, method), signed in sorted(routes.items()):
        assert signed == needs_iam(path, method), (
            f"{method.upper()} {path} is {'signed' if signed else 'open'}"
        )
    for route in OPEN_READ_ROUTES:
        assert routes[route] is False, f"{route} must stay open"


def test_the_rule_itself_flags_what_it_must():
    assert needs_iam("/readings", "post") and needs_iam("/readings/x/y", "delete")
    assert needs_iam("/orders", "get") and needs_iam("/orders/1/items", "get")
    assert not needs_iam("/readings/x", "get") and not needs_iam("/ordersx", "get")
    # Ingest jobs name the uploaders' files and object versions.
    assert needs_iam("/ingests", "get") and needs_iam("/ingests/{ingest_id}", "get")


# -- alarms --------------------------------------------------------------------------


def _cfn_alarms(sam: dict[str, Any]) -> list[dict[str, Any]]:
    topics = {
        logical: r["Properties"]["TopicName"]
        for logical, r in sam["Resources"].items()
        if r["Type"] == "AWS::SNS::Topic"
    }
    alarms = []
    for resource in sam["Resources"].values():
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        p = resource["Properties"]
        alarms.append(
            {
                "namespace": p["Namespace"],
                "metric": p["MetricName"],
                "dimensions": {d["Name"]: d["Value"] for d in p["Dimensions"]},
                "statistic": p["Statistic"],
                "threshold": p["Threshold"],
                "comparison": p["ComparisonOperator"],
                "actions": {topics[a["Ref"]] for a in p["AlarmActions"]},
                "ok_actions": {topics[a["Ref"]] for a in p["OKActions"]},
            }
        )
    return alarms


def _terraform_alarms(directory: Path) -> list[dict[str, Any]]:
    resources = _terraform(directory)["eventflow_resources.tf.json"]["resource"]
    topics = {
        f"${{aws_sns_topic.{block}.arn}}": body["name"]
        for block, body in resources["aws_sns_topic"].items()
    }
    return [
        {
            "namespace": body["namespace"],
            "metric": body["metric_name"],
            "dimensions": body["dimensions"],
            "statistic": body["statistic"],
            "threshold": body["threshold"],
            "comparison": body["comparison_operator"],
            "actions": {topics[a] for a in body["alarm_actions"]},
            "ok_actions": {topics[a] for a in body["ok_actions"]},
        }
        for body in resources["aws_cloudwatch_metric_alarm"].values()
    ]


def expected_alarms(stack: Stack) -> list[dict[str, Any]]:
    """What must be watched, written out from the declared resources (not from infra.alarms)."""
    alerts = {stack.topic("alerts").name}

    def alarm(namespace, metric, dimensions, statistic, threshold):
        return {
            "namespace": namespace,
            "metric": metric,
            "dimensions": dimensions,
            "statistic": statistic,
            "threshold": threshold,
            "comparison": "GreaterThanThreshold",
            "actions": alerts,
            "ok_actions": alerts,
        }

    expected = []
    for queue in stack.queues:
        # One message in a DLQ is one the pipeline gave up on.
        expected.append(
            alarm(
                "AWS/SQS",
                "ApproximateNumberOfMessagesVisible",
                {"QueueName": queue.dlq_name},
                "Maximum",
                0,
            )
        )
    for function in stack.functions:
        for metric in ("Errors", "Throttles"):
            expected.append(
                alarm("AWS/Lambda", metric, {"FunctionName": function.physical_name}, "Sum", 0)
            )
    return expected


@pytest.fixture(params=["prod-cloudformation", "dev-terraform", "prod-terraform"])
def alarms(request, prod_sam, terraform_dirs) -> tuple[Stack, list[dict[str, Any]]]:
    stage, kind = request.param.split("-")
    if kind == "cloudformation":
        return stack_for(stage), _cfn_alarms(prod_sam)
    return stack_for(stage), _terraform_alarms(terraform_dirs[stage])


def test_each_dlq_and_function_has_its_alarm_on_the_right_metric(alarms):
    stack, rendered = alarms
    for expected in expected_alarms(stack):
        assert expected in rendered, f"missing or different: {expected}"


def test_each_on_failure_queue_alarms_as_soon_as_it_holds_a_message(alarms):
    """Queues that collect what Lambda gave up on have no consumer: one message alarms."""
    stack, rendered = alarms
    alerts = {stack.topic("alerts").name}
    destinations = {s.on_failure_queue_key for s in stack.event_sources if s.on_failure_queue_key}
    assert destinations <= {q.key for q in stack.failure_queues}
    for queue in stack.failure_queues:
        assert {
            "namespace": "AWS/SQS",
            "metric": "ApproximateNumberOfMessagesVisible",
            "dimensions": {"QueueName": queue.name},
            "statistic": "Maximum",
            "threshold": 0,
            "comparison": "GreaterThanThreshold",
            "actions": alerts,
            "ok_actions": alerts,
        } in rendered, queue.name


def test_each_source_queue_alarms_on_its_oldest_message_after_its_visibility_timeout(alarms):
    stack, rendered = alarms
    for queue in stack.queues:
        [age] = [
            a
            for a in rendered
            if a["metric"] == "ApproximateAgeOfOldestMessage"
            and a["dimensions"] == {"QueueName": queue.name}
        ]
        assert age["namespace"] == "AWS/SQS" and age["comparison"] == "GreaterThanThreshold"
        # A failed message may wait out one visibility timeout; alarm only past it.
        assert age["threshold"] >= queue.visibility_timeout
        assert age["actions"] == {stack.topic("alerts").name}


def test_each_stream_consumer_alarms_on_its_iterator_age(alarms):
    stack, rendered = alarms
    table_keys = {t.key for t in stack.tables}
    consumers = [s.function for s in stack.event_sources if s.source_key in table_keys]
    for name in consumers:
        function = stack.function(name)
        assert any(
            a["metric"] == "IteratorAge"
            and a["dimensions"] == {"FunctionName": function.physical_name}
            and a["threshold"] > 0
            for a in rendered
        ), name


def test_an_order_email_refused_for_its_recipient_alarms(alarms):
    """A refused recipient is done, never retried, so no DLQ shows it: the app's metric must."""
    stack, rendered = alarms
    alerts = {stack.topic("alerts").name}
    assert {
        "namespace": "eventflow",
        "metric": "NotificationsRejected",
        "dimensions": {"stage": stack.stage},
        "statistic": "Sum",
        "threshold": 0,
        "comparison": "GreaterThanThreshold",
        "actions": alerts,
        "ok_actions": alerts,
    } in rendered


def test_nothing_alarms_on_a_resource_that_is_not_declared(alarms):
    stack, rendered = alarms
    queues = {n for q in stack.queues for n in (q.name, q.dlq_name)}
    queues |= {q.name for q in stack.failure_queues}
    functions = {f.physical_name for f in stack.functions}
    for alarm in rendered:
        if alarm["namespace"] == "eventflow":
            # The app's own metrics, published with the stage as their dimension.
            assert alarm["dimensions"] == {"stage": stack.stage}, alarm
            continue
        dimension = alarm["dimensions"].get("QueueName") or alarm["dimensions"].get("FunctionName")
        assert dimension in queues | functions, alarm
