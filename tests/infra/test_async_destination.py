"""The on-failure destination of the asynchronously invoked ingest (``dev``'s ``on_s3_event``).

S3 invokes ``ingest_from_s3`` asynchronously; Lambda retries a failed event
twice and then, without a destination, drops it. The declaration gives the
function an on-failure queue, and every rendering carries it: IAM (the
function's role sends the record), an alarm on the queue, ``make deploy``
(``PutFunctionEventInvokeConfig``, see test_deploy), CloudFormation
(``AWS::Lambda::EventInvokeConfig``) and Terraform
(``aws_lambda_function_event_invoke_config``).
"""

from __future__ import annotations

import copy
import json
from dataclasses import replace

from cfnlint.api import lint

from infra import cloudformation, iam, terraform
from infra.arns import Account
from infra.functions import AsyncInvokeSettings
from infra.resources import FailureQueue
from tests.infra.conftest import stack_for

ACCOUNT = Account(account_id="123456789012", region="eu-west-1")


def test_only_the_stage_that_invokes_asynchronously_declares_a_failure_queue():
    dev = stack_for("dev")
    [settings] = dev.async_invokes
    assert settings.function == "ingest_from_s3"
    assert settings.maximum_retry_attempts == 2
    assert dev.failure_queue(settings.on_failure_queue_key).name == "eventflow-dev-ingest-failures"
    for stage in ("local", "prod"):
        stack = stack_for(stage)
        assert stack.async_invokes == ()
        assert "ingest-failures" not in {q.key for q in stack.failure_queues}


def test_the_function_may_send_to_its_failure_queue_and_nowhere_else():
    dev = stack_for("dev")
    policy = iam.fill(iam.policy(dev, "ingest_from_s3"), ACCOUNT)
    failures = ACCOUNT.fill(
        f"arn:aws:sqs:${{AWS::Region}}:${{AWS::AccountId}}:"
        f"{dev.failure_queue('ingest-failures').name}"
    )
    assert iam.allows(policy, "sqs:SendMessage", failures)
    other = failures.replace("ingest-failures", "ingest-dlq")
    assert not iam.allows(policy, "sqs:SendMessage", other)


def test_a_message_in_the_failure_queue_raises_an_alarm():
    dev = stack_for("dev")
    [alarm] = [a for a in dev.alarms if a.key == "ingest-failures-not-empty"]
    assert (alarm.namespace, alarm.metric_name) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert alarm.dimensions == (("QueueName", "eventflow-dev-ingest-failures"),)
    assert (alarm.threshold, alarm.comparison, alarm.period) == (0, "GreaterThanThreshold", 60)


def test_cloudformation_renders_an_event_invoke_config_on_the_function():
    dev = stack_for("dev")
    resources = cloudformation.merge_template(dev)["Resources"]
    config = resources["IngestFromS3EventInvokeConfig"]
    assert config["Type"] == "AWS::Lambda::EventInvokeConfig"
    assert config["Properties"] == {
        "FunctionName": {"Ref": "IngestFromS3"},
        "Qualifier": "$LATEST",
        "MaximumRetryAttempts": 2,
        "DestinationConfig": {
            "OnFailure": {"Destination": {"Fn::GetAtt": ["IngestFailuresQueue", "Arn"]}}
        },
    }
    assert resources["IngestFailuresQueue"]["Type"] == "AWS::SQS::Queue"


def test_cfn_lint_accepts_the_event_invoke_config_inside_a_packaged_template(prod_sam):
    # chalice package refuses on_s3_event, so no stage that declares one can be
    # packaged as CloudFormation; render the same settings for a function that
    # prod's template does hold, and lint the result.
    prod = stack_for("prod")
    variant = replace(
        prod,
        failure_queues=(
            *prod.failure_queues,
            FailureQueue(key="ingest-failures", name="eventflow-prod-ingest-failures"),
        ),
        async_invokes=(
            AsyncInvokeSettings(
                function="ingest_from_queue", on_failure_queue_key="ingest-failures"
            ),
        ),
    )
    rendered = cloudformation.merge_template(variant)["Resources"]
    template = copy.deepcopy(prod_sam)
    for logical_id in ("IngestFailuresQueue", "IngestFromQueueEventInvokeConfig"):
        template["Resources"][logical_id] = rendered[logical_id]
    findings = [str(match) for match in lint(json.dumps(template))]
    assert findings == []
    # The linter does check this resource: a retry count AWS refuses is reported.
    template["Resources"]["IngestFromQueueEventInvokeConfig"]["Properties"][
        "MaximumRetryAttempts"
    ] = 3
    assert any("E3034" in str(match) for match in lint(json.dumps(template)))


def test_terraform_renders_an_event_invoke_config_on_chalices_function(terraform_dirs):
    resources = terraform.resources(stack_for("dev"))["resource"]
    config = resources["aws_lambda_function_event_invoke_config"]["ingest_from_s3"]
    assert config == {
        "function_name": "${aws_lambda_function.ingest_from_s3.function_name}",
        "maximum_retry_attempts": 2,
        "destination_config": [
            {"on_failure": [{"destination": "${aws_sqs_queue.ingest_failures.arn}"}]}
        ],
    }
    # The function it names is the one chalice package generated.
    chalice_tf = json.loads((terraform_dirs["dev"] / "chalice.tf.json").read_text())
    assert "ingest_from_s3" in chalice_tf["resource"]["aws_lambda_function"]
