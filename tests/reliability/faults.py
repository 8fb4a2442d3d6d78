"""Faults injected under the app's own boto3 clients, in front of moto.

:class:`FaultInjector` takes moto's place on a client's ``before-send`` event:
every HTTP request the client would send comes to it first, and it either
answers itself (a throttle, a 5xx: the request never reached "AWS"), passes
the request to moto and returns moto's answer, or passes it to moto and then
fails (a lost response, a crash after the call). Everything above HTTP is the
real thing: botocore's standard retry mode sees the injected responses and
retries them with its own backoff, and the app's code sees whatever botocore
raises or returns once its retries are spent.

Faults are decided by :class:`Rule` objects, in order, per request. Rules
count requests themselves, so which request fails is fixed by the scenario and
never by chance or timing.

Crashes model the function's process dying: :meth:`FaultInjector.crash_at`
names a call position (1-based, counted over every request the armed clients
send, retries included) and whether the process dies just before that request
is sent or just after its response arrived. The crash is a
:class:`SimulatedCrash`, a ``BaseException``, so no ``except Exception`` in the
app can catch it and carry on; and once it has happened the injector is
*dead*: every later request from any thread raises it again, so nothing the
dead invocation would still do can reach AWS.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.exceptions import ReadTimeoutError
from moto.core.models import botocore_stubber
from urllib3.exceptions import ProtocolError

# What moto answers with; called by the injector only when a request goes through.
Execute = Callable[[AWSPreparedRequest], AWSResponse]


class SimulatedCrash(BaseException):
    """The function's process died at this point (see the module docstring)."""


@dataclass(frozen=True)
class Call:
    """One HTTP request of an armed client."""

    position: int  # 1-based, over every request since the injector was armed
    service: str  # botocore's hyphenized service id: dynamodb, sqs, s3
    operation: str
    request: AWSPreparedRequest

    @property
    def name(self) -> str:
        return f"{self.service}:{self.operation}"

    def json_body(self) -> dict[str, Any]:
        body = self.request.body
        return json.loads(body.decode() if isinstance(body, bytes) else body or "{}")


class _Body(io.BytesIO):
    """A raw HTTP body, in the shape botocore reads responses from."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.read()


def response(request: AWSPreparedRequest, status: int, body: bytes, **headers: str) -> AWSResponse:
    return AWSResponse(
        request.url, status, {"x-amzn-requestid": "injected", **headers}, _Body(body)
    )


def json_error(request: AWSPreparedRequest, status: int, code: str, message: str) -> AWSResponse:
    """An error in the JSON protocol (DynamoDB, SQS), as botocore parses it."""
    body = json.dumps({"__type": code, "message": message}).encode()
    return response(request, status, body, **{"content-type": "application/x-amz-json-1.0"})


def xml_error(request: AWSPreparedRequest, status: int, code: str, message: str) -> AWSResponse:
    """An error in S3's REST-XML protocol."""
    body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()
    return response(request, status, body, **{"content-type": "application/xml"})


def query_error(request: AWSPreparedRequest, status: int, code: str, message: str) -> AWSResponse:
    """An error in the query protocol (SNS), as botocore parses it."""
    error = f"<Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
    body = f"<ErrorResponse>{error}<RequestId>injected</RequestId></ErrorResponse>".encode()
    return response(request, status, body, **{"content-type": "text/xml"})


def error_for(call: Call, status: int, code: str, message: str) -> AWSResponse:
    """An error in the protocol of the call's service."""
    if call.service == "s3":
        return xml_error(call.request, status, code, message)
    if call.service == "sns":
        return query_error(call.request, status, code, message)
    return json_error(call.request, status, code, message)


def with_json_body(request: AWSPreparedRequest, body: dict[str, Any]) -> AWSPreparedRequest:
    """The same request carrying another JSON body (a part of a batch)."""
    data = json.dumps(body).encode()
    headers = dict(request.headers.items())
    headers["Content-Length"] = str(len(data))
    return AWSPreparedRequest(request.method, request.url, headers, data, request.stream_output)


class Rule:
    """Decides one kind of fault. ``apply`` returns a response, raises, or returns None
    (this rule does not act on the call; the next rule, or moto, answers it)."""

    def __init__(self) -> None:
        self.injected = 0

    def apply(self, call: Call, execute: Execute) -> AWSResponse | None:
        raise NotImplementedError


@dataclass
class Every:
    """Selects every ``n``-th matching call, starting with the ``first``-th (both 1-based).

    Deterministic, and with n >= 2 never two matching calls in a row, so the
    standard retry mode's retries always outlast it.
    """

    n: int
    first: int = 1
    seen: int = 0

    def __call__(self) -> bool:
        self.seen += 1
        return self.seen >= self.first and (self.seen - self.first) % self.n == 0


@dataclass
class First:
    """Selects the first ``n`` matching calls, and none after them."""

    n: int
    seen: int = 0

    def __call__(self) -> bool:
        self.seen += 1
        return self.seen <= self.n


@dataclass
class Matching:
    """Which calls a rule considers: by ``service:Operation`` names, or all of a service."""

    names: frozenset[str] = frozenset()
    services: frozenset[str] = frozenset()

    def __call__(self, call: Call) -> bool:
        return call.name in self.names or call.service in self.services


def ops(*names: str) -> Matching:
    return Matching(names=frozenset(names))


def services(*names: str) -> Matching:
    return Matching(services=frozenset(names))


THROTTLES = {
    "dynamodb": ("ProvisionedThroughputExceededException", "ThrottlingException"),
    "sqs": ("ThrottlingException", "RequestThrottled"),
    "s3": ("SlowDown",),
    # SNS's throttle. PublishBatch does not model it, so botocore's standard mode
    # retries it as a 429 (it would not retry it on an operation that models it).
    "sns": ("Throttled",),
}
THROTTLE_STATUS = {"s3": 503, "sns": 429}
SERVER_ERRORS = {
    "dynamodb": ((500, "InternalServerError"), (503, "ServiceUnavailable")),
    "sqs": ((500, "InternalError"), (503, "ServiceUnavailable")),
    "s3": ((500, "InternalError"), (503, "ServiceUnavailable")),
    "sns": ((500, "InternalError"), (503, "ServiceUnavailable")),
}


class Throttle(Rule):
    """Answers the selected calls with a throttling error; the request is never executed."""

    def __init__(self, matching: Callable[[Call], bool], select: Callable[[], bool]):
        super().__init__()
        self.matching, self.select = matching, select

    def apply(self, call: Call, execute: Execute) -> AWSResponse | None:
        if not (self.matching(call) and self.select()):
            return None
        codes = THROTTLES[call.service]
        code = codes[self.injected % len(codes)]
        self.injected += 1
        status = THROTTLE_STATUS.get(call.service, 400)
        return error_for(call, status, code, "Rate of requests exceeds the allowed rate")


class ServerError(Rule):
    """Answers the selected calls with a 500 or 503; the request is never executed."""

    def __init__(self, matching: Callable[[Call], bool], select: Callable[[], bool]):
        super().__init__()
        self.matching, self.select = matching, select

    def apply(self, call: Call, execute: Execute) -> AWSResponse | None:
        if not (self.matching(call) and self.select()):
            return None
        status, code = SERVER_ERRORS[call.service][self.injected % 2]
        self.injected += 1
        return error_for(call, status, code, "The server encountered an internal error")


class LostResponse(Rule):
    """Executes the selected calls, then loses the response (a read timeout).

    The write has landed, but the client cannot know: botocore retries the
    same request (for TransactWriteItems, with the same ClientRequestToken).
    """

    def __init__(self, matching: Callable[[Call], bool], select: Callable[[], bool]):
        super().__init__()
        self.matching, self.select = matching, select

    def apply(self, call: Call, execute: Execute) -> AWSResponse | None:
        if not (self.matching(call) and self.select()):
            return None
        execute(call.request)
        self.injected += 1
        raise ReadTimeoutError(endpoint_url=call.request.url, error="injected: response lost")


class PartialBatchWrite(Rule):
    """BatchWriteItem writes only the first half of the selected calls' items and
    returns the rest as ``UnprocessedItems``, as DynamoDB does under throttling."""

    def __init__(self, select: Callable[[], bool]):
        super().__init__()
        self.select = select

    def apply(self, call: Call, execute: Execute) -> AWSResponse | None:
        if call.name != "dynamodb:BatchWriteItem" or not self.select():
            return None
        body = call.json_body()
        [(table, requests)] = body["RequestItems"].items()
        if len(requests) < 2:
            return None
        keep, hold = requests[: len(requests) // 2], requests[len(requests) // 2 :]
        execute(with_json_body(call.request, {**body, "RequestItems": {table: keep}}))
        self.injected += 1
        answer = {"UnprocessedItems": {table: hold}}
        return response(call.request, 200, json.dumps(answer).encode())


class FailBatchEntries(Rule):
    """SendMessageBatch sends all but the last of several entries in the selected calls;
    the last one is reported in ``Failed`` with ``SenderFault`` as given.

    A call with a single entry (the sender's retry of the failed one) goes through.
    """

    def __init__(self, sender_fault: bool, select: Callable[[], bool]):
        super().__init__()
        self.sender_fault, self.select = sender_fault, select

    def apply(self, call: Call, execute: Execute) -> AWSResponse | None:
        if call.name != "sqs:SendMessageBatch":
            return None
        body = call.json_body()
        entries = body["Entries"]
        if len(entries) < 2 or not self.select():
            return None
        sent = json.loads(
            execute(with_json_body(call.request, {**body, "Entries": entries[:-1]})).content
        )
        self.injected += 1
        code, message = (
            ("InvalidParameterValue", "injected: the message is invalid")
            if self.sender_fault
            else ("InternalError", "injected: try again")
        )
        failed = {
            "Id": entries[-1]["Id"],
            "SenderFault": self.sender_fault,
            "Code": code,
            "Message": message,
        }
        answer = {"Successful": sent.get("Successful", []), "Failed": [failed]}
        return response(call.request, 200, json.dumps(answer).encode())


class _BreakingStream(io.BytesIO):
    """An object body whose connection breaks after ``limit`` bytes."""

    def __init__(self, data: bytes, limit: int):
        super().__init__(data)
        self.limit = limit

    def read(self, amt: int | None = None) -> bytes:  # type: ignore[override]
        if self.tell() >= self.limit:
            raise ProtocolError("Connection broken: injected", None)
        wanted = self.limit - self.tell() if amt is None else min(amt, self.limit - self.tell())
        return super().read(wanted)

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.read()


class BrokenObjectStream(Rule):
    """GetObject succeeds, but the body's connection breaks half-way through."""

    def __init__(self, select: Callable[[], bool]):
        super().__init__()
        self.select = select

    def apply(self, call: Call, execute: Execute) -> AWSResponse | None:
        if call.name != "s3:GetObject" or not self.select():
            return None
        whole = execute(call.request)
        data = whole.content
        self.injected += 1
        return AWSResponse(
            call.request.url,
            whole.status_code,
            whole.headers,
            _BreakingStream(data, len(data) // 2),
        )


class Persistent(Rule):
    """A permanent client error on every call the predicate picks, until ``enabled``
    is cleared (the fix is deployed): what makes a message poison."""

    def __init__(self, predicate: Callable[[Call], bool], code: str = "ValidationException"):
        super().__init__()
        self.predicate, self.code = predicate, code
        self.enabled = True

    def apply(self, call: Call, execute: Execute) -> AWSResponse | None:
        if not (self.enabled and self.predicate(call)):
            return None
        self.injected += 1
        if call.service == "s3":
            return xml_error(call.request, 403, self.code, "injected: permanent error")
        return json_error(call.request, 400, self.code, "injected: permanent error")


@dataclass
class _Crash:
    position: int
    after: bool


@dataclass
class FaultInjector:
    """Stands in front of moto on every client it is attached to."""

    rules: list[Rule] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    dead: bool = False
    _crash: _Crash | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def attach(self, client: Any) -> Any:
        events = client.meta.events
        events.unregister("before-send", botocore_stubber)
        events.register("before-send", self._before_send)
        return client

    def crash_at(self, position: int, *, after: bool) -> None:
        """Die just before (or after) request number ``position``, counted from now."""
        self.calls.clear()
        self.dead = False
        self._crash = _Crash(position, after)

    def revive(self) -> None:
        """A new process: the next invocation runs normally."""
        self.dead = False
        self._crash = None

    @property
    def armed(self) -> bool:
        """Whether calls are being counted for a crash (position 0: counted only)."""
        return self._crash is not None and not self.dead

    @property
    def crashed(self) -> bool:
        return self.dead

    def _before_send(self, request: AWSPreparedRequest, event_name: str, **_: Any) -> AWSResponse:
        _, service, operation = event_name.split(".")
        with self._lock:
            if self.dead:
                raise SimulatedCrash("the process is dead")
            self.calls.append(f"{service}:{operation}")
            call = Call(len(self.calls), service, operation, request)
            crash = self._crash
            if crash is not None and crash.position == call.position and not crash.after:
                self.dead = True
                raise SimulatedCrash(f"died before call {call.position} ({call.name})")

        def execute(req: AWSPreparedRequest) -> AWSResponse:
            answer = botocore_stubber(event_name=event_name, request=req)
            assert answer is not None, f"moto does not serve {call.name}"
            return answer

        answer = None
        for rule in self.rules:
            answer = rule.apply(call, execute)
            if answer is not None:
                break
        if answer is None:
            answer = execute(request)
        if crash is not None and crash.position == call.position and crash.after:
            with self._lock:
                self.dead = True
            raise SimulatedCrash(f"died after call {call.position} ({call.name})")
        return answer

    def injected(self) -> int:
        return sum(rule.injected for rule in self.rules)
