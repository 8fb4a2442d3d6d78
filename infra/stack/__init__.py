"""A stage's whole stack: the domains' resources, what they share, and what watches them.

Each domain declares its own resources in its own file (:mod:`.readings`,
:mod:`.orders`); :func:`declare` joins them and adds what every domain
shares: the REST API's function (granted what each domain's routes need),
the alerts topic, the stage's KMS key, a log group per function, and the API
stage. Alarms and the dashboard are derived last (:mod:`infra.alarms`), so a
new queue or function is watched without anyone remembering to add it.
"""

from __future__ import annotations

from dataclasses import replace

from infra import alarms
from infra.functions import Api, Function
from infra.grants import KeyAccess
from infra.resources import ALERTS_TOPIC_KEY, DATA_KEY, Key, LogGroup, Stack, Topic
from infra.stack import orders, readings
from infra.stack.parts import API_FUNCTION, Domain, Stage
from infra.stageconfig import StageConfig

# In the order their resources are created and listed.
DOMAINS = (readings, orders)


def declare(config: StageConfig) -> Stack:
    """The stage's whole stack."""
    stage = Stage.load(config)
    settings = stage.settings
    domains = Domain()
    for domain in DOMAINS:
        domains += domain.declare(stage)
    functions = (stage.function(API_FUNCTION, domains.api_grants), *domains.functions)
    data_key = Key(
        key=DATA_KEY,
        alias=f"alias/{settings.name('data')}",
        description=f"eventflow {config.stage}: the SNS topics and the log groups",
        sns_publishers=_sns_publishers(functions),
    )
    log_retention = stage.limits.log_retention_days
    access = LogGroup(
        key="api-access-logs",
        name=f"/aws/apigateway/{settings.name('api-access')}",
        retention_days=log_retention,
        kms_key=DATA_KEY,
    )
    log_groups = (
        *(
            LogGroup(f"{f.name}-logs", f.log_group, log_retention, kms_key=DATA_KEY)
            for f in functions
        ),
        access,
    )
    alerts = Topic(key=ALERTS_TOPIC_KEY, name=settings.name("alerts"), kms_key=DATA_KEY)
    stack = Stack(
        stage=config.stage,
        settings=settings,
        tables=domains.tables,
        queues=domains.queues,
        buckets=domains.buckets,
        event_sources=domains.event_sources,
        topics=(alerts, *domains.topics),
        subscriptions=domains.subscriptions,
        email_identities=domains.email_identities,
        functions=functions,
        failure_queues=domains.failure_queues,
        async_invokes=domains.async_invokes,
        keys=(data_key,),
        log_groups=log_groups,
        api=Api(
            stage_name=config.api_gateway_stage(),
            rate_limit=stage.limits.api_rate_limit,
            burst_limit=stage.limits.api_burst_limit,
            access_log_group=access.key,
        ),
    )
    return replace(stack, alarms=alarms.derive(stack), dashboards=(alarms.dashboard(stack),))


def _sns_publishers(functions: tuple[Function, ...]) -> tuple[str, ...]:
    """The functions granted the data key through SNS: its policy must let them use it."""
    return tuple(
        function.name
        for function in functions
        if any(
            isinstance(grant, KeyAccess)
            and grant.key_key == DATA_KEY
            and grant.via_service == "sns"
            for grant in function.grants
        )
    )
