"""What the console's JSON routes answer, and the actions its buttons take.

Reads go through AWS APIs on the local endpoint (the same snapshot as
``python -m ops status``) and through the app's own REST API. Every action
that changes state is one that already exists: a redrive, a peek and a replay
are the ``ops`` functions the CLI calls; placing and moving orders and the
CSV upload are requests to the app's API, as any client makes them.
"""

from __future__ import annotations

import csv
import http.client
import io
import json
import urllib.error
import urllib.request
import uuid
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.orders import events as order_events
from chalicelib.orders.model import ORDER_ID
from chalicelib.orders.states import Status
from chalicelib.services import Services
from chalicelib.streamrecords import lambda_record
from localcloud.console import metrics, pipeline
from ops import events, mail
from ops.dlq import DEFAULT_PEEK, DEFAULT_REDRIVE
from ops.failures import replay_failures
from ops.peek import peek
from ops.queues import UnknownQueueError, queue_url, resolve_failure_queue, resolve_queue
from ops.redrive import redrive
from ops.snapshot import snapshot, stock_snapshot
from ops.target import Target
from ops.upload import Upload

AWS_ERRORS = (ClientError, BotoCoreError)
API_TIMEOUT_SECONDS = 30
ORDERS_SHOWN = 200
REJECTS_SHOWN = 500


class ConsoleError(Exception):
    """A request the console refuses, with the HTTP status to answer."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class ApiAnswer:
    status: int
    body: Any
    headers: dict[str, str]


class Backend:
    def __init__(self, target: Target, api_endpoint: str | None):
        self.target = target
        self.api_endpoint = api_endpoint.rstrip("/") if api_endpoint else None

    # -- the app's API, as a client ----------------------------------------------

    def api(self, method: str, path: str, body: Any = None, headers: dict | None = None):
        if not self.api_endpoint:
            raise ConsoleError(503, "the app's API is not served by this local cloud")
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.api_endpoint + path, data=data, method=method, headers=dict(headers or {})
        )
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=API_TIMEOUT_SECONDS) as response:
                payload = response.read()
                code, answer_headers = response.status, dict(response.headers)
        except urllib.error.HTTPError as error:
            payload, code, answer_headers = error.read(), error.code, dict(error.headers)
        except OSError as error:
            raise ConsoleError(
                503, f"the app's API at {self.api_endpoint} is not answering: {error}"
            ) from None
        return ApiAnswer(code, json.loads(payload) if payload else None, answer_headers)

    # -- reads ------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        waiting = []
        try:
            self.target.clients.sqs.list_queues(MaxResults=1)
        except AWS_ERRORS as error:
            waiting.append(f"moto at {self.target.endpoint()} ({type(error).__name__})")
        if self.api_endpoint:
            try:
                self.api("GET", "/health")
            except ConsoleError:
                waiting.append(f"the app's API at {self.api_endpoint}")
        return {
            "ready": not waiting,
            "waiting_for": waiting,
            "stage": self.target.stage,
            "aws_endpoint": self.target.endpoint(),
            "api_endpoint": self.api_endpoint,
        }

    def map(self) -> dict[str, Any]:
        return pipeline.build(self.target.stack)

    def state(self) -> dict[str, Any]:
        target = self.target
        snap = snapshot(target.clients, target.stack, target.outputs, jobs_limit=10)
        dlq_keys = {q.key: q.dlq_key for q in target.stack.queues}
        for row in snap["queues"]:
            row["dlq_key"] = dlq_keys.get(row["key"], row["key"])
        sources = {s.function: s.source_key for s in target.stack.event_sources}
        for item in snap["streams"]["items"]:
            item["table"] = sources.get(item["function"])
        try:
            snap["durations"] = metrics.last_durations(target.clients("cloudwatch"), target.stack)
        except AWS_ERRORS as error:
            snap["durations"], snap["durations_error"] = {}, str(error)
        return snap

    def series(self) -> dict[str, Any]:
        return metrics.series(self.target.clients("cloudwatch"), self.target.stack)

    def alarms(self) -> list[dict[str, Any]]:
        clients = self.target.clients
        return metrics.alarms(
            clients("cloudwatch"), clients.sqs, self.target.stack, self.target.outputs
        )

    def jobs(self) -> Any:
        return self._ok(self.api("GET", "/ingests?limit=20"))

    def rejects(self, ingest_id: str) -> dict[str, Any]:
        job = self._ok(self.api("GET", f"/ingests/{ingest_id}"))
        key = job.get("rejects_key")
        if not key:
            return {"ingest_id": ingest_id, "header": [], "rows": [], "truncated": False}
        body = self.target.clients.s3.get_object(Bucket=job["bucket"], Key=key)["Body"]
        reader = csv.reader(io.TextIOWrapper(body, encoding="utf-8", newline=""))
        header = next(reader, [])
        rows = [row for _, row in zip(range(REJECTS_SHOWN + 1), reader, strict=False)]
        return {
            "ingest_id": ingest_id,
            "header": header,
            "rows": rows[:REJECTS_SHOWN],
            "truncated": len(rows) > REJECTS_SHOWN,
        }

    def products(self) -> dict[str, Any]:
        return stock_snapshot(
            self.target.clients.dynamodb, self.target.stack, exact=True, limit=100
        )

    def orders(self, wanted: str | None) -> dict[str, Any]:
        """Orders, newest first, optionally of one status (a Scan: the local cloud only)."""
        if wanted and wanted not in set(Status):
            raise ConsoleError(400, f"status must be one of {', '.join(Status)}")
        args: dict[str, Any] = {
            "TableName": self.target.stack.settings.orders_table,
            "ProjectionExpression": "order_id, customer_id, #s, #t, version, created_at",
            "ExpressionAttributeNames": {"#s": "status", "#t": "total"},
        }
        if wanted:
            args["FilterExpression"] = "#s = :s"
            args["ExpressionAttributeValues"] = {":s": {"S": wanted}}
        found = []
        for page in self.target.clients.dynamodb.get_paginator("scan").paginate(**args):
            found.extend(
                {name: next(iter(value.values())) for name, value in item.items()}
                for item in page["Items"]
            )
        found.sort(key=lambda o: o.get("created_at", ""), reverse=True)
        return {"items": found[:ORDERS_SHOWN], "count": len(found)}

    def order(self, order_id: str) -> dict[str, Any]:
        if not ORDER_ID.fullmatch(order_id):
            raise ConsoleError(400, "order_id must be 32 hexadecimal characters")
        order = self._ok(self.api("GET", f"/orders/{order_id}"))
        mails = [m for m in self.mail() if order_id in m.get("Subject", "")]
        return {"order": order, "mails": mails, "events": self._events(order_id)}

    def _events(self, order_id: str) -> list[dict[str, Any]]:
        """The order's domain events, read back from the orders stream with the publisher's code.

        The local stream is one shard that is never trimmed, so its whole history
        is there; on AWS the stream keeps 24 hours, and the console never runs there.
        """
        arn = self.target.outputs.tables["orders"]["stream_arn"]
        streams = self.target.clients("dynamodbstreams")
        shards = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
        found: dict[int, dict[str, Any]] = {}
        for shard in shards:
            iterator = streams.get_shard_iterator(
                StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            while iterator:
                page = streams.get_records(ShardIterator=iterator, Limit=1000)
                for raw in page["Records"]:
                    if raw["dynamodb"]["Keys"]["order_id"]["S"] != order_id:
                        continue
                    event = order_events.event_from_record(lambda_record(raw, arn))
                    if event is not None:
                        found[event.version] = asdict(event)
                if not page["Records"]:
                    break
                iterator = page.get("NextShardIterator")
        return [found[v] for v in sorted(found)]

    def mail(self) -> list[dict[str, Any]]:
        return mail.fetch(self.target.endpoint("ses"))

    def peek(self, name: str) -> dict[str, Any]:
        dlq = self._dead_letters(name)
        sqs = self.target.clients.sqs
        carries = self.target.stack.carries(dlq)
        messages = peek(sqs, queue_url(sqs, dlq), DEFAULT_PEEK, carries=carries)
        return {"dlq": dlq, "messages": [m.to_dict() for m in messages]}

    # -- actions ----------------------------------------------------------------

    def redrive(self, name: str) -> dict[str, Any]:
        stack, sqs = self.target.stack, self.target.clients.sqs
        if resolve_failure_queue(stack, name) is not None:
            raise ConsoleError(409, f"{name} holds records of failed invocations: replay it")
        queue = self._queue(name)
        result = redrive(
            sqs,
            queue_url(sqs, queue.dlq_name),
            queue_url(sqs, queue.name),
            DEFAULT_REDRIVE,
            fifo=queue.fifo,
        )
        return {"dlq": queue.dlq_name, "queue": queue.name, **result.to_dict()}

    def replay(self, name: str) -> dict[str, Any]:
        stack, target = self.target.stack, self.target
        failures = resolve_failure_queue(stack, name)
        if failures is None:
            raise ConsoleError(404, f"{name} is not an on-failure queue")
        if any(s.on_failure_queue_key == failures.key for s in stack.event_sources):
            # A stream mapping's failures describe record ranges: re-read and publish them.
            result = events.replay(target, DEFAULT_REDRIVE)
        else:
            sqs = target.clients.sqs
            services = Services(target.stage_config.settings(), clients=target.clients)
            result = replay_failures(sqs, queue_url(sqs, failures.name), services, DEFAULT_REDRIVE)
        return {"queue": failures.name, **result.to_dict()}

    def place_order(self, body: Any) -> ApiAnswer:
        # A key per click: a retried request from this page cannot order twice.
        return self.api("POST", "/orders", body, {"Idempotency-Key": f"console-{uuid.uuid4()}"})

    def move_order(self, order_id: str, body: Any) -> ApiAnswer:
        if not ORDER_ID.fullmatch(order_id):
            raise ConsoleError(400, "order_id must be 32 hexadecimal characters")
        return self.api("PATCH", f"/orders/{order_id}", body)

    def upload(self, filename: str, data: bytes) -> dict[str, Any]:
        """The app's presigned upload, done for the browser (moto's S3 sends no CORS headers)."""
        grant = self.api("POST", "/uploads", {"filename": filename})
        if grant.status != 201:
            return {"status": grant.status, "error": grant.body}
        etag, version_id = _send_upload(grant.body, filename, data)
        if not etag:
            # moto answers a POST form with neither header (docs/local-cloud-semantics.md).
            head = self.target.clients.s3.head_object(
                Bucket=grant.body["bucket"], Key=grant.body["key"]
            )
            etag, version_id = head["ETag"].strip('"'), head.get("VersionId")
        uploaded = Upload(grant.body["bucket"], grant.body["key"], etag, version_id)
        # The ids the job may have, most likely first (see ops.upload.Upload.ingest_ids).
        return {"status": 201, "key": uploaded.key, "ingest_ids": list(uploaded.ingest_ids)}

    # -- helpers ----------------------------------------------------------------

    def _queue(self, name: str) -> Any:
        try:
            return resolve_queue(self.target.stack, name)
        except UnknownQueueError as error:
            raise ConsoleError(404, str(error)) from None

    def _dead_letters(self, name: str) -> str:
        failures = resolve_failure_queue(self.target.stack, name)
        return failures.name if failures else self._queue(name).dlq_name

    @staticmethod
    def _ok(answer: ApiAnswer) -> Any:
        if answer.status >= 400:
            message = (
                (answer.body or {}).get("message", "") if isinstance(answer.body, dict) else ""
            )
            raise ConsoleError(answer.status, message or f"the API answered {answer.status}")
        return answer.body


def _send_upload(grant: dict[str, Any], filename: str, data: bytes) -> tuple[str, str | None]:
    """Upload as the grant says (a presigned PUT, or a POST form); returns (ETag, version id).

    http.client rather than urllib: urllib gives a bodied request a form
    Content-Type, which a presigned PUT did not sign and which moto's server
    takes for a form and empties.
    """
    parts = urlsplit(grant["url"])
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    headers: dict[str, str] = {}
    if grant.get("method", "PUT") == "PUT":
        method, body = "PUT", data
    else:
        boundary = uuid.uuid4().hex
        form = io.BytesIO()
        for name, value in grant.get("fields", {}).items():
            form.write(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            )
            form.write(f"{value}\r\n".encode())
        form.write(
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: text/csv\r\n\r\n".encode()
        )
        form.write(data + f"\r\n--{boundary}--\r\n".encode())
        method, body = "POST", form.getvalue()
        headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=API_TIMEOUT_SECONDS)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        answer = response.read()
        if response.status >= 300:
            raise ConsoleError(502, f"the upload was refused ({response.status}): {answer[:200]!r}")
        return response.getheader("ETag", "").strip('"'), response.getheader("x-amz-version-id")
    finally:
        connection.close()
