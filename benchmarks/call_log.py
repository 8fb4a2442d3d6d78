"""A log of the AWS calls a run makes, and its replay from one client against moto alone.

:class:`CallLog` hooks boto3 clients (a whole session, or single clients) and
keeps each call that got an answer, in the order the answers came: who made
it, its operation, a copy of its parameters and whether moto refused it. The
local cloud's pollers are logged too, but only the calls that move events
(a receive that got messages, the delete after it, a stream read that got
records): what Lambda's own pollers would do per order. Their empty polls
are counted, not logged; they cost an idle cloud the same with no order.

:class:`Replay` sends logged calls again, in order, from one thread,
to a fresh moto process provisioned from the same declaration, and
times them: the rate at which moto alone serves the very calls the pipeline
made, with none of the pipeline's own work (HTTP, handlers, pollers,
waiting). Calls that name a live object by an id only the live moto gave
out (receipt handles, shard iterators, queue URLs with its port) are
re-pointed at the replay's own.
"""

from __future__ import annotations

import copy
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore import xform_name
from botocore.exceptions import ClientError

from chalicelib.aws import Clients, client_config
from infra.provision import Provisioner
from infra.resources import Stack
from localcloud.motoprocess import MotoProcess

POLLER = "poller"
SETUP = "setup"
HOST = "127.0.0.1"
MAX_RECEIVE = 10  # SQS's most messages per receive and per delete batch
_PARAMS = "eventflow_bench_params"
_DELIVERING = {"ReceiveMessage": "Messages", "GetRecords": "Records"}
# A poller's other calls (checking whether a queue is idle, opening a shard) are
# the runtime's housekeeping, not the delivery of any order's events.
_HOUSEKEEPING = {"GetQueueAttributes", "GetQueueUrl", "DescribeStream", "GetShardIterator"}


@dataclass
class Call:
    caller: str
    operation: str  # "service:Operation"
    params: dict[str, Any]
    refused: bool
    tag: Any  # what the run was doing (the bench's level); None before tagging


@dataclass
class CallLog:
    calls: list[Call] = field(default_factory=list)
    empty_polls: Counter[Any] = field(default_factory=Counter)
    tag: Any = None
    recording: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def attach_session(self, session: Any, caller: Callable[[], str]) -> None:
        """Log every call of clients made from ``session`` from now on, as ``caller()``."""
        session.events.register("before-parameter-build", _keep_params)
        session.events.register("after-call", lambda **kw: self._answered(caller(), **kw))

    def attach_poller(self, client: Any) -> None:
        """Log the calls of a poller's client that move events."""
        client.meta.events.register("before-parameter-build", _keep_params)
        client.meta.events.register("after-call", lambda **kw: self._polled(**kw))

    def _answered(self, caller: str, model: Any, http_response: Any, context: dict, **_: Any):
        if not self.recording or _PARAMS not in context:
            return  # not recording, or a call that began before the log was attached
        name = f"{model.service_model.service_name}:{model.name}"
        refused = http_response.status_code >= 300
        with self._lock:
            self.calls.append(Call(caller, name, context[_PARAMS], refused, self.tag))

    def _polled(self, model: Any, parsed: dict, **kwargs: Any) -> None:
        if model.name in _HOUSEKEEPING:
            return
        key = _DELIVERING.get(model.name)
        if key is not None and not parsed.get(key):
            if self.recording:
                with self._lock:
                    self.empty_polls[self.tag] += 1
            return
        self._answered(POLLER, model=model, **kwargs)

    def of(self, tag: Any = None, poller: bool = False) -> list[Call]:
        """The app's calls (or, with ``poller``, the pollers') made under ``tag``
        (under any tag but :data:`SETUP` if None)."""
        return [
            c
            for c in self.calls
            if (c.tag == tag if tag is not None else c.tag != SETUP)
            and (c.caller == POLLER) == poller
        ]

    def tagged(self, tag: Any) -> list[Call]:
        """Every call logged under ``tag``, the app's and the pollers', in order."""
        return [c for c in self.calls if c.tag == tag]


def _keep_params(params: dict, context: dict, **_: Any) -> None:
    # A copy: the caller's dicts may be reused or changed after the call.
    context[_PARAMS] = copy.deepcopy(params)


def count(calls: list[Call]) -> Counter[str]:
    return Counter(c.operation for c in calls)


# -- the replay ----------------------------------------------------------------------


class _Replayer:
    """Sends logged calls to one moto, re-pointing live-only ids at its own."""

    def __init__(self, clients: Clients, outputs: Any):
        self.clients = clients
        self.queue_urls = {q["url"].rsplit("/", 1)[1]: q["url"] for q in outputs.queues.values()}
        self.handles: dict[str, deque[str]] = {}
        self.refused: Counter[str] = Counter()
        # The orders table's stream is the one the pollers read.
        arn = outputs.tables["orders"]["stream_arn"]
        streams = clients("dynamodbstreams")
        [shard] = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
        self.iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]

    def send(self, call: Call) -> None:
        service, operation = call.operation.split(":")
        params = dict(call.params)
        if "QueueUrl" in params:
            params["QueueUrl"] = self.queue_urls[params["QueueUrl"].rsplit("/", 1)[1]]
        special = {
            "ReceiveMessage": self.receive,
            "DeleteMessageBatch": self.delete_batch,
            "DeleteMessage": self.delete,
            "GetRecords": self.get_records,
        }.get(operation)
        try:
            if special is not None:
                special(self.clients(service), params)
            else:
                getattr(self.clients(service), xform_name(operation))(**params)
        except ClientError as error:
            self.refused[f"{call.operation} {error.response['Error']['Code']}"] += 1

    def receive(self, sqs: Any, params: dict) -> None:
        # As many as a receive may take: the live log is in the order the answers came,
        # so a long poll that got a publish's messages may come before that publish,
        # and what this receive misses must not be left to deepen the queue.
        params = {**params, "WaitTimeSeconds": 0, "MaxNumberOfMessages": MAX_RECEIVE}
        got = sqs.receive_message(**params).get("Messages", [])
        self.handles.setdefault(params["QueueUrl"], deque()).extend(m["ReceiptHandle"] for m in got)

    def delete_batch(self, sqs: Any, params: dict) -> None:
        handles = self.handles.get(params["QueueUrl"], deque())
        entries = [
            {"Id": str(n), "ReceiptHandle": handles.popleft()}
            for n in range(min(MAX_RECEIVE, len(handles)))
        ]
        if entries:
            sqs.delete_message_batch(QueueUrl=params["QueueUrl"], Entries=entries)

    def delete(self, sqs: Any, params: dict) -> None:
        handles = self.handles.get(params["QueueUrl"])
        if handles:
            sqs.delete_message(QueueUrl=params["QueueUrl"], ReceiptHandle=handles.popleft())

    def depth(self) -> int:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        total = 0
        for url in self.queue_urls.values():
            got = self.clients.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)
            total += sum(int(v) for v in got["Attributes"].values())
        return total

    def get_records(self, streams: Any, params: dict) -> None:
        got = streams.get_records(ShardIterator=self.iterator, Limit=params.get("Limit", 1000))
        self.iterator = got.get("NextShardIterator", self.iterator)


class Replay:
    """A fresh moto process, provisioned from ``stack``, that logged calls are sent to
    again from one thread: untimed (:meth:`catch_up`) to make the state the live run
    had, or timed (:meth:`time`). Kept beside the live cloud for the whole run, so
    that each batch of calls is timed right after the live run made it, under the
    same load of the machine."""

    def __init__(self, stack: Stack):
        self._stack = stack
        self._moto = MotoProcess(HOST, 0)
        self._replayer: _Replayer | None = None

    def __enter__(self) -> Replay:
        import boto3

        self._moto.start()
        try:
            port = self._moto.get_host_and_port()[1]
            defaults = {
                "endpoint_url": f"http://{HOST}:{port}",
                "region_name": "us-east-1",
                "aws_access_key_id": "testing",
                "aws_secret_access_key": "testing",
            }
            clients = Clients(boto3.session.Session(), client_config(), defaults)
            self._replayer = _Replayer(clients, Provisioner(clients).apply(self._stack))
            for service in ("dynamodb", "sns", "sqs", "ses", "sts"):
                clients(service)  # built before any clock starts, as the live run's were
        except BaseException:
            self._moto.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._moto.stop()

    def catch_up(self, calls: list[Call]) -> None:
        assert self._replayer is not None
        for call in calls:
            self._replayer.send(call)
        self._replayer.refused.clear()

    def time(self, calls: list[Call]) -> dict[str, Any]:
        """Seconds to send ``calls`` again, the rate, and what either moto refused."""
        replayer = self._replayer
        assert replayer is not None
        spent: Counter[str] = Counter()
        started = time.perf_counter()
        for call in calls:
            before = time.perf_counter()
            replayer.send(call)
            spent[call.operation] += time.perf_counter() - before
        seconds = time.perf_counter() - started
        refused = dict(sorted(replayer.refused.items()))
        replayer.refused.clear()
        return {
            "seconds": round(seconds, 3),
            "calls": len(calls),
            "calls_per_s": round(len(calls) / seconds, 1),
            # Where moto's time went: milliseconds per call of each operation.
            "ms_per_call": {
                op: round(1000 * spent[op] / n, 2) for op, n in sorted(count(calls).items())
            },
            # Messages the replay left in its queues (a deeper queue is slower in moto).
            "left_in_queues": replayer.depth(),
            "refused_live": sum(c.refused for c in calls),
            "refused_replay": sum(refused.values()),
            "refused_replay_by_code": refused,
        }
