"""Records the AWS calls each Lambda handler makes, and checks them against its policy.

Load it as a plugin (``pytest_plugins = ["tests.plugins.iam_calls"]`` in
``tests/conftest.py``) and every test that runs a handler contributes: at the
end of the session, each recorded call must be allowed by the function's
least-privilege policy derived in :mod:`infra.iam`, and no policy may grant a
wildcard action. A violation fails the session and names the function, the IAM
action and the resource.

How a call is recorded: every botocore client gets a ``before-parameter-build``
hook. That event fires for real calls and for presigned URLs alike (a
presigned PutObject is authorized with the signer's role, so it must be in the
policy too); ``before-call`` would miss presigning. A presigned POST is the
exception: botocore builds its parameters as a ``CreateBucket`` without the
key, so each S3 client's ``generate_presigned_post`` is wrapped to record the
``s3:PutObject`` on the key it signs for, and the ``CreateBucket`` is ignored.

How a call is attributed to a function: the call stack is searched for a frame
of an event handler (``write_readings``...) in ``app.py`` or in
a module of :data:`HANDLER_MODULES`, which names that function; failing that, any
other ``app.py`` frame is a route, served by ``api_handler``. Stacks do not
cross threads, and s3transfer uploads in worker threads, so the handlers in
:data:`HANDLER_MODULES` are also wrapped to note which one is running: in a
context variable, which s3transfer's workers inherit, and process-wide, for
any other thread (a call from it is attributed to the last one started).
Tests that drive ``chalicelib`` directly can say whom they stand for with
``recorder.acting_as("write_readings")``. Unattributed calls are not checked.

Conditions: a call on a table that some grant restricts by key prefix
(``dynamodb:LeadingKeys``) is recorded with the partition keys it names, one
call per item of a transaction, and checked against the condition.
"""

from __future__ import annotations

import ast
import contextlib
import contextvars
import functools
import json
import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import botocore.session
import pytest

from infra.iam import LEADING_KEYS

PROJECT = Path(__file__).resolve().parents[2]
APP_FILE = str(PROJECT / "app.py")
# Code that plays Lambda's part (pollers, metrics, the operator CLI): its calls
# are the platform's or an operator's, never a function's.
NOT_LAMBDA_DIRS = (str(PROJECT / "localcloud") + os.sep, str(PROJECT / "ops") + os.sep)


def handler_modules(project: Path) -> tuple[str, ...]:
    """The modules that hold the handlers' bodies, one per domain (``chalicelib/*/handlers.py``);
    tests that skip app.py's wrappers call these directly."""
    found = (project / "chalicelib").glob("*/handlers.py")
    return tuple(sorted(f"chalicelib.{path.parent.name}.handlers" for path in found))


def event_handlers(app_file: Path) -> frozenset[str]:
    """The functions ``app.py`` registers with an ``@app.on_...`` decorator, read from
    its source: both ingest triggers' (a stage registers one), and a new consumer's
    without a list to keep. A handler's body in a handler module has its name."""
    return frozenset(
        node.name
        for node in ast.walk(ast.parse(Path(app_file).read_text()))
        if isinstance(node, ast.FunctionDef)
        and any(
            isinstance(decorator, ast.Call)
            and isinstance(decorator.func, ast.Attribute)
            and decorator.func.attr.startswith("on_")
            for decorator in node.decorator_list
        )
    )


HANDLER_MODULES = handler_modules(PROJECT)
HANDLER_FILES = frozenset(
    {APP_FILE, *(str(PROJECT / (m.replace(".", os.sep) + ".py")) for m in HANDLER_MODULES)}
)
EVENT_HANDLERS = event_handlers(Path(APP_FILE))

# Calls that IAM never authorizes: any principal may make them.
UNAUTHORIZED_CALLS = frozenset({("sts", "GetCallerIdentity")})
# moto's default account; recorded ARNs use it where a call names no account.
DEFAULT_ACCOUNT = os.environ.get("MOTO_ACCOUNT_ID", "123456789012")

_acting_as: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "iam_acting_as", default=None
)
# Set while a presigned POST is built: its inner "CreateBucket" is not a call.
_presigning_post: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "iam_presigning_post", default=False
)
# The wrapped handler whose call this context descends from. s3transfer runs its
# workers in a copy of the submitting thread's context, so an upload's calls
# carry the handler that started them even while other handlers run meanwhile.
_handler_running: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "iam_handler_running", default=None
)

# API operations whose IAM action has another name.
ACTION_ALIASES = {
    ("sns", "PublishBatch"): "Publish",
    ("sqs", "SendMessageBatch"): "SendMessage",
    ("sqs", "DeleteMessageBatch"): "DeleteMessage",
    ("sqs", "ChangeMessageVisibilityBatch"): "ChangeMessageVisibility",
    ("s3", "CreateMultipartUpload"): "PutObject",
    ("s3", "UploadPart"): "PutObject",
    ("s3", "CompleteMultipartUpload"): "PutObject",
    ("s3", "HeadObject"): "GetObject",
    ("s3", "ListObjectsV2"): "ListBucket",
    ("s3", "ListObjects"): "ListBucket",
}
# TransactWriteItems is authorized per item, by the item's own action.
TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}


@dataclass(frozen=True)
class Call:
    stage: str
    function: str
    action: str
    resource: str
    region: str
    # The partition keys the request names, where a grant conditions on them.
    leading_keys: tuple[str, ...] | None = None

    def context(self) -> dict[str, list[str]]:
        return {} if self.leading_keys is None else {LEADING_KEYS: list(self.leading_keys)}


@dataclass
class Recorder:
    calls: set[Call] = field(default_factory=set)
    installed: bool = False
    # The handler running right now, for calls from threads it started.
    running: list[str] = field(default_factory=list)
    # Open :meth:`capturing` blocks, each collecting the calls recorded in it.
    captures: list[set[Call]] = field(default_factory=list)

    @contextlib.contextmanager
    def capturing(self) -> Iterator[set[Call]]:
        """The calls recorded while the block runs.

        The session's record is a set: a call an earlier test made already is
        not new there, so a test that asserts what its own code called uses this.
        """
        captured: set[Call] = set()
        self.captures.append(captured)
        try:
            yield captured
        finally:
            self.captures.remove(captured)

    @contextlib.contextmanager
    def acting_as(self, function: str) -> Iterator[None]:
        token = _acting_as.set(function)
        try:
            yield
        finally:
            _acting_as.reset(token)

    def for_function(self, function: str) -> set[Call]:
        return {call for call in self.calls if call.function == function}

    def record(self, params: dict[str, Any], model: Any, region: str) -> None:
        if _presigning_post.get():
            return
        if _acting_as.get() is None and _platform_on_stack():
            return
        function = _acting_as.get() or _function_on_stack() or _handler_running.get()
        if (
            function is None
            and self.running
            and threading.current_thread() is not threading.main_thread()
        ):
            function = self.running[-1]
        if function is None:
            return
        stage = os.environ.get("EVENTFLOW_STAGE", "local")
        service = model.service_model.signing_name or model.service_model.service_name
        keyed = conditioned_tables(stage)
        for action, resource, leading in authorized_requests(
            service, model.name, params, region, keyed
        ):
            call = Call(stage, function, action, resource, region, leading)
            self.calls.add(call)
            for captured in self.captures:
                captured.add(call)

    def install(self) -> None:
        """Hook every botocore client created from now on (idempotent)."""
        if self.installed:
            return
        original = botocore.session.Session.create_client

        @functools.wraps(original)
        def create_client(session, *args, **kwargs):
            client = original(session, *args, **kwargs)
            client.meta.events.register(
                "before-parameter-build",
                functools.partial(_on_build, recorder=self, region=client.meta.region_name),
            )
            if client.meta.service_model.service_name == "s3":
                _record_presigned_posts(client, self)
            return client

        botocore.session.Session.create_client = create_client
        self._wrap_handlers()
        self.installed = True

    def _wrap_handlers(self) -> None:
        import importlib

        for module in map(importlib.import_module, HANDLER_MODULES):
            for name in EVENT_HANDLERS:
                original = getattr(module, name, None)
                if original is None:
                    continue

                @functools.wraps(original)
                def wrapper(*args, _original=original, _name=name, **kwargs):
                    self.running.append(_name)
                    token = _handler_running.set(_name)
                    try:
                        return _original(*args, **kwargs)
                    finally:
                        _handler_running.reset(token)
                        self.running.pop()

                setattr(module, name, wrapper)

    def violations(self) -> list[str]:
        """Recorded calls that the declared policies do not allow, and wildcard grants."""
        from infra import iam
        from infra.arns import Account

        problems: list[str] = []
        stacks: dict[tuple[str, str], Any] = {}
        documents: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        for call in sorted(self.calls, key=lambda c: (c.stage, c.function, c.action)):
            key = (call.stage, call.function)
            if key not in stacks:
                stacks[key] = _stack_declaring(call.stage, call.function)
            account = _account_of(call.resource) or DEFAULT_ACCOUNT
            filled = (*key, account, call.region)
            if filled not in documents:
                template = iam.policy(stacks[key], call.function)
                documents[filled] = iam.fill(
                    template, Account(account_id=account, region=call.region)
                )
            if not iam.allows(documents[filled], call.action, call.resource, call.context()):
                problem = f"{call.function} calls {call.action} on {call.resource}"
                if call.leading_keys:
                    problem += f" with key {', '.join(call.leading_keys)}"
                if problem not in problems:
                    problems.append(problem)
        for stack in {id(s): s for s in stacks.values()}.values():
            for function, document in iam.policies(stack).items():
                for action in iam.wildcard_actions(document):
                    problems.append(f"{function}'s policy grants wildcard action {action}")
        return problems


RECORDER = Recorder()


def _on_build(params: dict[str, Any], model: Any, recorder: Recorder, region: str, **_: Any):
    recorder.record(params, model, region)


def _record_presigned_posts(client: Any, recorder: Recorder) -> None:
    """Record a presigned POST as the ``s3:PutObject`` on the key it lets its holder write."""
    original = client.generate_presigned_post

    @functools.wraps(original)
    def generate_presigned_post(Bucket, Key, *args, **kwargs):
        put = client.meta.service_model.operation_model("PutObject")
        recorder.record({"Bucket": Bucket, "Key": Key}, put, client.meta.region_name)
        token = _presigning_post.set(True)
        try:
            return original(Bucket, Key, *args, **kwargs)
        finally:
            _presigning_post.reset(token)

    client.generate_presigned_post = generate_presigned_post


def _platform_on_stack() -> bool:
    """Whether the call comes from the local cloud's runtime or the ops CLI, not a handler."""
    frame = sys._getframe(2)
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename.startswith(NOT_LAMBDA_DIRS):
            # A handler invoked by the runtime has its own frames above the
            # runtime's; only a call with no handler frame above is the platform's.
            return _function_on_stack_from(sys._getframe(2), until=frame) is None
        frame = frame.f_back
    return False


def _function_on_stack_from(frame: Any, until: Any) -> str | None:
    while frame is not None and frame is not until:
        code = frame.f_code
        if code.co_filename in HANDLER_FILES and code.co_name in EVENT_HANDLERS:
            return code.co_name
        if code.co_filename == APP_FILE and code.co_name != "<module>":
            return "api_handler"
        frame = frame.f_back
    return None


def _function_on_stack() -> str | None:
    """The Lambda function whose code is running: see the module docstring."""
    in_app = False
    frame = sys._getframe(2)
    while frame is not None:
        code = frame.f_code
        if code.co_filename in HANDLER_FILES and code.co_name in EVENT_HANDLERS:
            return code.co_name
        if code.co_filename == APP_FILE and code.co_name != "<module>":
            in_app = True
        frame = frame.f_back
    return "api_handler" if in_app else None


def _stack_declaring(stage: str, function: str) -> Any:
    """The stage's stack; with the other ingest trigger if that is what declares ``function``.

    Tests run both ingest handlers under one stage, but a stage declares only
    the one its trigger selects.
    """
    import copy

    from infra.stack import declare
    from infra.stageconfig import StageConfig

    config = StageConfig.load(stage)
    stack = declare(config)
    if any(f.name == function for f in stack.functions):
        return stack
    raw = copy.deepcopy(config.raw)
    env = raw["stages"][stage].setdefault("environment_variables", {})
    env["EVENTFLOW_INGEST_TRIGGER"] = "s3" if stack.settings.ingest_trigger == "sqs" else "sqs"
    return declare(StageConfig(stage=stage, raw=raw))


def _account_of(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 and parts[4] else None


def _table_arn(region: str, table: str) -> str:
    return f"arn:aws:dynamodb:{region}:{DEFAULT_ACCOUNT}:table/{table}"


def _queue_arn(region: str, url_or_name: str) -> str:
    if url_or_name.startswith("http"):
        segments = urlparse(url_or_name).path.strip("/").split("/")
        account, name = (segments[-2], segments[-1]) if len(segments) >= 2 else (None, segments[-1])
        return f"arn:aws:sqs:{region}:{account or DEFAULT_ACCOUNT}:{name}"
    return f"arn:aws:sqs:{region}:{DEFAULT_ACCOUNT}:{url_or_name}"


@functools.cache
def conditioned_tables(stage: str) -> dict[str, str]:
    """Tables some grant of the stage restricts by key prefix: name -> partition key."""
    from infra.grants import TableAccess
    from infra.stack import declare
    from infra.stageconfig import StageConfig, UnknownStageError

    try:
        stack = declare(StageConfig.load(stage))
    except UnknownStageError:
        return {}
    keys = {
        grant.table_key
        for function in stack.functions
        for grant in function.grants
        if isinstance(grant, TableAccess) and grant.key_prefixes
    }
    return {stack.table(k).name: stack.table(k).partition_key.name for k in keys}


def _partition_values(items: list[dict[str, Any]], attribute: str) -> tuple[str, ...]:
    values = {str(next(iter(item[attribute].values()))) for item in items if attribute in item}
    return tuple(sorted(values))


def _dynamodb_requests(
    operation: str, params: dict[str, Any], region: str, keyed: dict[str, str]
) -> list[tuple[str, str, tuple[str, ...] | None]]:
    def leading(table: str, items: list[dict[str, Any]]) -> tuple[str, ...] | None:
        return _partition_values(items, keyed[table]) if table in keyed else None

    if operation in ("TransactWriteItems", "TransactGetItems"):
        requests = []
        for entry in params.get("TransactItems", []):
            for kind, body in entry.items():
                table = body["TableName"]
                item = body.get("Key") or body.get("Item") or {}
                requests.append(
                    (
                        f"dynamodb:{TRANSACT_ACTIONS[kind]}",
                        _table_arn(region, table),
                        leading(table, [item]),
                    )
                )
        return requests
    if operation in ("BatchWriteItem", "BatchGetItem"):
        requests = []
        for table, body in params.get("RequestItems", {}).items():
            if operation == "BatchGetItem":
                items = body.get("Keys", [])
            else:
                items = [
                    (w.get("PutRequest") or {}).get("Item")
                    or (w.get("DeleteRequest") or {}).get("Key")
                    or {}
                    for w in body
                ]
            requests.append(
                (f"dynamodb:{operation}", _table_arn(region, table), leading(table, items))
            )
        return requests
    table = params.get("TableName", "*")
    arn = _table_arn(region, table)
    if params.get("IndexName"):
        arn += f"/index/{params['IndexName']}"
    item = params.get("Key") or params.get("Item")
    keys = leading(table, [item]) if item is not None else None
    return [(f"dynamodb:{operation}", arn, keys)]


def authorized_requests(
    service: str,
    operation: str,
    params: dict[str, Any],
    region: str,
    keyed: dict[str, str] | None = None,
) -> list[tuple[str, str, tuple[str, ...] | None]]:
    """(IAM action, resource ARN, leading keys) for one API call.

    Leading keys are read only for the tables in ``keyed`` (name -> partition
    key attribute), and None elsewhere.
    """
    if service == "dynamodb":
        return _dynamodb_requests(operation, params, region, keyed or {})
    return [
        (action, resource, None)
        for action, resource in iam_requests(service, operation, params, region)
    ]


def iam_requests(
    service: str, operation: str, params: dict[str, Any], region: str
) -> list[tuple[str, str]]:
    """The (IAM action, resource ARN) pairs that one API call is authorized as."""
    if (service, operation) in UNAUTHORIZED_CALLS:
        return []
    if service == "dynamodb":
        return [(a, r) for a, r, _ in _dynamodb_requests(operation, params, region, {})]
    action = ACTION_ALIASES.get((service, operation), operation)
    if service == "sqs":
        target = params.get("QueueUrl") or params.get("QueueName") or "*"
        return [(f"sqs:{action}", _queue_arn(region, target))]
    if service == "s3":
        bucket = params.get("Bucket", "*")
        if action == "ListBucket" or "Key" not in params:
            return [(f"s3:{action}", f"arn:aws:s3:::{bucket}")]
        if action == "GetObject" and params.get("VersionId"):
            action = "GetObjectVersion"
        return [(f"s3:{action}", f"arn:aws:s3:::{bucket}/{params['Key']}")]
    if service == "ses" and "Source" in params:
        # SES authorizes SendEmail on the identity of the From address.
        address = parseaddr(params["Source"])[1]
        return [(f"ses:{action}", f"arn:aws:ses:{region}:{DEFAULT_ACCOUNT}:identity/{address}")]
    if service == "sns" and "TopicArn" in params:
        return [(f"sns:{action}", params["TopicArn"])]
    return [(f"{service}:{action}", "*")]


@pytest.fixture
def iam_calls() -> Recorder:
    RECORDER.install()
    return RECORDER


def pytest_configure(config: pytest.Config) -> None:
    RECORDER.install()


# What each xdist worker found, gathered by the controller (which runs no test).
WORKER_SUMMARIES: list[dict[str, Any]] = []


def _summary() -> dict[str, Any]:
    return {
        "calls": len(RECORDER.calls),
        "functions": sorted({call.function for call in RECORDER.calls}),
        "problems": RECORDER.violations() if RECORDER.calls else [],
    }


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    summary = getattr(node, "workeroutput", {}).get("iam_calls")
    if summary:
        WORKER_SUMMARIES.append(json.loads(summary))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        # An xdist worker: its calls are judged here and reported by the controller,
        # so a violation in any worker fails the run.
        workeroutput["iam_calls"] = json.dumps(_summary())
        return
    summaries = [_summary(), *WORKER_SUMMARIES]
    calls = sum(s["calls"] for s in summaries)
    if not calls:
        return
    problems = [problem for s in summaries for problem in s["problems"]]
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if problems:
        if reporter is not None:
            reporter.section("least-privilege IAM: calls the policies do not allow", red=True)
            for problem in problems:
                reporter.line(problem)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    elif reporter is not None:
        functions = sorted({f for s in summaries for f in s["functions"]})
        reporter.write_line(
            f"least-privilege IAM: {calls} recorded calls of {', '.join(functions)} are all allowed"
        )
