"""``python -m infra deploy|destroy``: ``chalice deploy`` with the declaration around it.

Deploy, in order:

1. provision the declared resources (:class:`~infra.provision.Provisioner`),
   so the queues and tables the functions are wired to exist first;
2. write each function's least-privilege policy file, with this account's
   concrete ARNs, and run ``chalice deploy``;
3. apply the event-source-mapping settings Chalice cannot express
   (:func:`apply_mapping_settings`), finding each mapping's UUID in
   ``.chalice/deployed/<stage>.json``. Chalice keeps these settings on a later
   deploy, but a mapping it recreates loses them, so the step compares and
   updates on every deploy; when nothing differs it makes no write at all;
4. the same for asynchronously invoked functions' retries and on-failure
   queue (:func:`apply_async_settings`, ``PutFunctionEventInvokeConfig``);
5. the REST API stage's throttling, access log and tracing
   (:func:`apply_api_stage`, ``UpdateStage``), which Chalice cannot set.

Reserved concurrency, X-Ray on the functions and each SQS mapping's
MaximumConcurrency come from ``.chalice/config.json`` and ``app.py``, which
``chalice deploy`` applies itself; step 3 keeps MaximumConcurrency in line
with the declaration anyway, as it does every mapping setting.

Destroy runs ``chalice delete`` (functions, roles, API, mappings), then deletes
the declared resources (:class:`~infra.teardown.Teardown`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from infra import arns, iam
from infra.arns import Account
from infra.chalicecli import run, write_policy_files
from infra.functions import AsyncInvokeSettings, EventSourceSettings
from infra.outputs import Outputs
from infra.provision import Provisioner
from infra.resources import Stack
from infra.stageconfig import StageConfig
from infra.teardown import Teardown


class DeployError(RuntimeError):
    pass


def deployed_mappings(project_dir: Path, stage: str) -> dict[str, str]:
    """Event UUIDs by function name, from Chalice's deployed-state file."""
    path = project_dir / ".chalice" / "deployed" / f"{stage}.json"
    if not path.exists():
        raise DeployError(f"{path} does not exist: has `chalice deploy --stage {stage}` run?")
    uuids = {}
    for resource in json.loads(path.read_text()).get("resources", []):
        if resource.get("resource_type") in ("sqs_event", "dynamodb_event", "kinesis_event"):
            # Chalice names them "<function>-<kind>-event-source".
            function = resource["name"].rsplit("-", 3)[0]
            uuids[function] = resource["event_uuid"]
    return uuids


def wanted_settings(stack: Stack, source: EventSourceSettings, outputs: Outputs) -> dict[str, Any]:
    """UpdateEventSourceMapping arguments for one declared mapping."""
    wanted: dict[str, Any] = {
        "FunctionResponseTypes": (
            ["ReportBatchItemFailures"] if source.report_batch_item_failures else []
        ),
        "FilterCriteria": {"Filters": [{"Pattern": p} for p in source.filter_patterns]},
    }
    if source.source_key in {queue.key for queue in stack.queues}:
        if source.maximum_concurrency:
            wanted["ScalingConfig"] = {"MaximumConcurrency": source.maximum_concurrency}
        return wanted
    # Stream-only settings.
    wanted.update(source.stream_retry_settings())
    if source.on_failure_queue_key:
        arn = outputs.queues[source.on_failure_queue_key]["arn"]
        wanted["DestinationConfig"] = {"OnFailure": {"Destination": arn}}
    return wanted


def _differs(current: dict[str, Any], wanted: dict[str, Any]) -> dict[str, Any]:
    changes = {}
    for key, value in wanted.items():
        have = current.get(key)
        if key == "FilterCriteria":
            have = have or {"Filters": []}
            have = {"Filters": have.get("Filters", [])}
        elif key == "FunctionResponseTypes":
            have = have or []
        if have != value:
            changes[key] = value
    return changes


def apply_mapping_settings(
    clients: Any, stack: Stack, outputs: Outputs, uuids: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """Bring each declared mapping up to date; returns the changes made, by function."""
    lambda_ = clients("lambda")
    changed: dict[str, dict[str, Any]] = {}
    for source in stack.event_sources:
        uuid = uuids.get(source.function)
        if uuid is None:
            raise DeployError(f"Chalice deployed no event source for {source.function}")
        current = lambda_.get_event_source_mapping(UUID=uuid)
        changes = _differs(current, wanted_settings(stack, source, outputs))
        if changes:
            lambda_.update_event_source_mapping(UUID=uuid, **changes)
            changed[source.function] = changes
    return changed


def wanted_async_settings(settings: AsyncInvokeSettings, outputs: Outputs) -> dict[str, Any]:
    """PutFunctionEventInvokeConfig arguments (without the function) for one function."""
    wanted: dict[str, Any] = {
        "MaximumRetryAttempts": settings.maximum_retry_attempts,
        "DestinationConfig": {
            "OnFailure": {"Destination": outputs.queues[settings.on_failure_queue_key]["arn"]}
        },
    }
    if settings.maximum_event_age_seconds is not None:
        wanted["MaximumEventAgeInSeconds"] = settings.maximum_event_age_seconds
    return wanted


def apply_async_settings(clients: Any, stack: Stack, outputs: Outputs) -> dict[str, dict[str, Any]]:
    """Bring each asynchronously invoked function's settings up to date; returns the changes."""
    lambda_ = clients("lambda")
    changed: dict[str, dict[str, Any]] = {}
    for settings in stack.async_invokes:
        physical = stack.function(settings.function).physical_name
        wanted = wanted_async_settings(settings, outputs)
        try:
            current = lambda_.get_function_event_invoke_config(FunctionName=physical)
        except lambda_.exceptions.ResourceNotFoundException:
            current = {}
        if any(current.get(key) != value for key, value in wanted.items()):
            lambda_.put_function_event_invoke_config(FunctionName=physical, **wanted)
            changed[settings.function] = wanted
    return changed


def deployed_rest_api(project_dir: Path, stage: str) -> str | None:
    path = project_dir / ".chalice" / "deployed" / f"{stage}.json"
    for resource in json.loads(path.read_text()).get("resources", []):
        if resource.get("resource_type") == "rest_api":
            return resource["rest_api_id"]
    return None


def api_stage_operations(stack: Stack, current: dict[str, Any], log_group_arn: str) -> list:
    """UpdateStage patch operations that bring the stage to the declaration (none if it is)."""
    api = stack.api
    assert api is not None
    throttling = current.get("methodSettings", {}).get("*/*", {})
    access = current.get("accessLogSettings", {})
    wanted = [
        ("/*/*/throttling/rateLimit", float(api.rate_limit), throttling.get("throttlingRateLimit")),
        (
            "/*/*/throttling/burstLimit",
            int(api.burst_limit),
            throttling.get("throttlingBurstLimit"),
        ),
        ("/accessLogSettings/destinationArn", log_group_arn, access.get("destinationArn")),
        ("/accessLogSettings/format", api.ACCESS_LOG_FORMAT, access.get("format")),
        ("/tracingEnabled", True, current.get("tracingEnabled")),
    ]
    return [
        {
            "op": "replace",
            "path": path,
            "value": str(value).lower() if value is True else str(value),
        }
        for path, value, have in wanted
        if have is None or type(value)(have) != value
    ]


def apply_api_stage(clients: Any, stack: Stack, project_dir: Path, target: Account) -> list:
    """Bring the REST API stage up to date; returns the patch operations applied."""
    if stack.api is None:
        return []
    rest_api_id = deployed_rest_api(project_dir, stack.stage)
    if rest_api_id is None:
        raise DeployError(f"Chalice deployed no REST API for stage {stack.stage}")
    apigateway = clients("apigateway")
    current = apigateway.get_stage(restApiId=rest_api_id, stageName=stack.api.stage_name)
    group = stack.log_group(stack.api.access_log_group)
    arn = target.fill(arns.log_group_named(group.name))
    operations = api_stage_operations(stack, current, arn)
    if operations:
        apigateway.update_stage(
            restApiId=rest_api_id, stageName=stack.api.stage_name, patchOperations=operations
        )
    return operations


def account(clients: Any) -> Account:
    identity = clients("sts").get_caller_identity()
    partition = identity["Arn"].split(":")[1]
    return Account(
        account_id=identity["Account"],
        region=clients("sts").meta.region_name,
        partition=partition,
    )


def deploy(clients: Any, config: StageConfig, stack: Stack, project_dir: Path) -> dict[str, Any]:
    """The whole deploy; returns the outputs and the mapping changes it made."""
    config.require_deployable()
    outputs = Provisioner(clients).apply(stack)
    target = account(clients)
    write_policy_files(project_dir, config, stack, lambda f: iam.fill(iam.policy(stack, f), target))
    # app.py names the orders stream at import; Chalice imports it in this subprocess.
    environ = {**os.environ, **outputs.app_environment()}
    run(["deploy", "--stage", stack.stage], project_dir, env=environ, capture=True)
    changes = apply_mapping_settings(
        clients, stack, outputs, deployed_mappings(project_dir, stack.stage)
    )
    async_changes = apply_async_settings(clients, stack, outputs)
    api_changes = apply_api_stage(clients, stack, project_dir, target)
    return {
        "outputs": outputs.to_dict(),
        "mapping_changes": changes,
        "async_changes": async_changes,
        "api_stage_changes": api_changes,
    }


def destroy(clients: Any, stack: Stack, project_dir: Path) -> dict[str, Any]:
    deployed = project_dir / ".chalice" / "deployed" / f"{stack.stage}.json"
    if deployed.exists():
        run(["delete", "--stage", stack.stage], project_dir, capture=True)
    return {"deleted": Teardown(clients).destroy(stack)}
