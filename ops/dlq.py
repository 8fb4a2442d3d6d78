"""``dlq peek|redrive|replay QUEUE``: look into a dead-letter queue, move it back, or replay it.

QUEUE is a queue of the stage's declaration, by key (``ingest``,
``s3-events``), by name, or by its DLQ's key or name; ``peek`` and
``redrive`` act on that queue's DLQ, and ``redrive`` sends to the queue
itself. QUEUE can also be an on-failure queue (``ingest-failures``, where
Lambda puts the asynchronous invocations it gave up on): ``peek`` shows its
records, and ``replay`` ingests again the objects they name (there is no
source queue to redrive to). URLs come from ``GetQueueUrl`` on the declared
names, so the same command finds the local cloud's queues and a real
account's. The logic is in :mod:`ops.peek`, :mod:`ops.redrive` and :mod:`ops.failures`; this
module only parses arguments and prints.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table

from chalicelib.orders.handlers import REJECTION_ATTRIBUTES
from chalicelib.services import Services
from ops.failures import FailureReplayResult, replay_failures
from ops.peek import PeekedMessage, abbreviate, peek
from ops.queues import UnknownQueueError, queue_url, resolve_failure_queue, resolve_queue
from ops.redrive import RedriveResult, redrive
from ops.target import Target

DEFAULT_PEEK = 10
DEFAULT_REDRIVE = 1000
# The table's body column is a hint; --json or --full show more.
TABLE_BODY_CHARS = 120


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("dlq", help="peek into or redrive a dead-letter queue")
    commands = parser.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")

    peek_parser = commands.add_parser("peek", help="show a DLQ's messages without consuming them")
    peek_parser.add_argument("queue", help="queue key or name (ingest, s3-events, ...)")
    peek_parser.add_argument(
        "--max", type=_positive, default=DEFAULT_PEEK, help=f"messages to show ({DEFAULT_PEEK})"
    )
    peek_parser.add_argument("--full", action="store_true", help="print whole bodies")
    peek_parser.add_argument("--json", action="store_true", help="print JSON")
    peek_parser.set_defaults(run=run_peek)

    redrive_parser = commands.add_parser(
        "redrive", help="move a DLQ's messages back to their source queue"
    )
    redrive_parser.add_argument("queue", help="queue key or name (ingest, s3-events, ...)")
    redrive_parser.add_argument(
        "--max",
        type=_positive,
        default=DEFAULT_REDRIVE,
        help=f"messages to move at most ({DEFAULT_REDRIVE}; never more than the DLQ held)",
    )
    redrive_parser.add_argument("--json", action="store_true", help="print JSON")
    redrive_parser.set_defaults(run=run_redrive)

    replay_parser = commands.add_parser(
        "replay", help="ingest again what an on-failure queue's records name"
    )
    replay_parser.add_argument("queue", help="on-failure queue key or name (ingest-failures)")
    replay_parser.add_argument(
        "--max",
        type=_positive,
        default=DEFAULT_REDRIVE,
        help=f"records at most ({DEFAULT_REDRIVE})",
    )
    replay_parser.add_argument("--json", action="store_true", help="print JSON")
    replay_parser.set_defaults(run=run_replay)


def _dead_letters(target: Target, name: str) -> str:
    """The name of the queue that holds what failed: a DLQ, or an on-failure queue."""
    failures = resolve_failure_queue(target.stack, name)
    return failures.name if failures else resolve_queue(target.stack, name).dlq_name


def run_peek(args: argparse.Namespace, target: Target, console: Console) -> int:
    try:
        dlq_name = _dead_letters(target, args.queue)
    except UnknownQueueError as error:
        console.print(f"[red]error:[/] {error}")
        return 2
    sqs = target.clients.sqs
    carries = target.stack.carries(dlq_name)
    messages = peek(sqs, queue_url(sqs, dlq_name), args.max, carries=carries)
    if args.json:
        console.print_json(
            data={"dlq": dlq_name, "messages": [m.to_dict(full_body=args.full) for m in messages]}
        )
        return 0
    if not messages:
        console.print(f"{dlq_name} is empty")
        return 0
    console.print(render_peek(dlq_name, messages, full=args.full))
    return 0


def render_peek(dlq_name: str, messages: list[PeekedMessage], full: bool = False) -> Table:
    table = Table(title=f"{dlq_name}: {len(messages)} message(s), not consumed", show_lines=True)
    for column in ("message id", "receives", "sent (UTC)", "eventflow", "body"):
        table.add_column(column, overflow="fold")
    for m in messages:
        # The consumer's own verdict first: it knows why better than any decoding.
        details = [f"rejected: {m.rejected['code']}: {m.rejected['reason']}"] if m.rejected else []
        details.append(describe_summary(m.summary))
        others = {k: v for k, v in m.message_attributes.items() if k not in REJECTION_ATTRIBUTES}
        if others:
            details.append(
                "attributes: "
                + ", ".join(f"{k}={v.get('StringValue', '<binary>')}" for k, v in others.items())
            )
        table.add_row(
            m.message_id,
            str(m.receive_count),
            _timestamp(m.sent_at_ms),
            "\n".join(details),
            m.body if full else abbreviate(m.body, TABLE_BODY_CHARS),
        )
    return table


def describe_summary(summary: dict) -> str:
    kind = summary.get("kind")
    if kind == "chunk":
        return (
            f"chunk {summary['seq']} (run {summary['run']}) of ingest {summary['ingest_id']}, "
            f"{summary['rows']} rows"
        )
    if kind == "s3-notification":
        return (
            "\n".join(
                f"s3://{o['bucket']}/{o['key']} → ingest {o['ingest_id']}"
                for o in summary["objects"]
            )
            or "S3 notification with no ingestible object"
        )
    if kind == "s3-test-event":
        return "S3 test event"
    if kind == "intake":
        if summary["type"] == "order_created":
            return (
                f"intake order_created (key {summary['idempotency_key']}) for customer "
                f"{summary['customer_id']}, {summary['items']} line(s)"
            )
        return f"intake {summary['type']}: order {summary['order_id']} → {summary['status']}"
    if kind == "order-event":
        return (
            f"{summary['event_type']} of order {summary['order_id']} v{summary['version']}: "
            f"{summary['old_status'] or '(new)'} → {summary['new_status']} "
            f"(event {summary['event_id']})"
        )
    if kind == "stream-failure":
        return (
            f"{summary['function']} gave up on {summary['records']} stream record(s) after "
            f"{summary['attempts']} attempt(s) ({summary['condition']}): shard "
            f"{summary['shard']}, sequence numbers {summary['first_sequence']} to "
            f"{summary['last_sequence']}; python -m ops events replay publishes them"
        )
    if kind == "async-failure":
        objects = "\n".join(
            f"s3://{o['bucket']}/{o['key']} → ingest {o['ingest_id']}" for o in summary["objects"]
        )
        return (
            f"{summary['function']} gave up after {summary['attempts']} attempt(s) "
            f"({summary['condition']}): {summary['error']}\n{objects or 'no ingestible object'}"
        )
    return str(summary.get("problem"))


def _timestamp(ms: int | None) -> str:
    if ms is None:
        return "?"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def run_redrive(args: argparse.Namespace, target: Target, console: Console) -> int:
    failures = resolve_failure_queue(target.stack, args.queue)
    if failures is not None:
        console.print(
            f"[red]error:[/] {failures.name} holds records of failed invocations, which have "
            f"no source queue; replay them: python -m ops dlq replay {failures.key}"
        )
        return 2
    try:
        queue = resolve_queue(target.stack, args.queue)
    except UnknownQueueError as error:
        console.print(f"[red]error:[/] {error}")
        return 2
    sqs = target.clients.sqs
    result = redrive(
        sqs,
        queue_url(sqs, queue.dlq_name),
        queue_url(sqs, queue.name),
        args.max,
        fifo=queue.fifo,
    )
    if args.json:
        console.print_json(data={"dlq": queue.dlq_name, "queue": queue.name, **result.to_dict()})
    else:
        print_redrive(console, queue.dlq_name, queue.name, result)
    return 0 if result.ok else 1


def print_redrive(console: Console, dlq: str, source: str, result: RedriveResult) -> None:
    console.print(
        f"moved {result.moved} message(s) from {dlq} to {source}; "
        f"{len(result.failed)} failed and stay in the DLQ "
        f"(it held {result.held_at_start} when the redrive started)"
    )
    if result.returned:
        console.print(
            f"[yellow]{len(result.returned)} moved message(s) failed again and were back in the "
            f"DLQ before the redrive ended; they were left there (dlq peek shows why)[/]"
        )
    for failure in result.failed:
        console.print(f"  [red]failed[/] {failure.message_id}: {failure.code} {failure.reason}")
    if result.not_deleted:
        console.print(
            f"[yellow]{len(result.not_deleted)} message(s) were sent but are still in the DLQ "
            "(delete failed); redriving them again is a no-op for the consumers[/]"
        )
    if result.aborted:
        console.print(f"[red]stopped:[/] SQS refused a whole batch: {result.aborted}")


def run_replay(args: argparse.Namespace, target: Target, console: Console) -> int:
    failures = resolve_failure_queue(target.stack, args.queue)
    if failures is None:
        known = ", ".join(q.key for q in target.stack.failure_queues) or "none in this stage"
        console.print(
            f"[red]error:[/] {args.queue!r} is not an on-failure queue (known: {known}); "
            "a DLQ's messages go back with dlq redrive"
        )
        return 2
    sqs = target.clients.sqs
    services = Services(target.stage_config.settings(), clients=target.clients)
    result = replay_failures(sqs, queue_url(sqs, failures.name), services, args.max)
    if args.json:
        console.print_json(data={"queue": failures.name, **result.to_dict()})
    else:
        print_replay(console, failures.name, result)
    return 0 if result.ok else 1


def print_replay(console: Console, name: str, result: FailureReplayResult) -> None:
    console.print(
        f"replayed {len(result.replayed)} record(s) from {name}; "
        f"{len(result.failed)} failed and stay in the queue"
    )
    for record in result.replayed:
        for job in record.jobs:
            console.print(f"  ingest {job['ingest_id']} {job['state']}")
    for record in result.failed:
        console.print(f"  [red]failed[/] {record.message_id}: {record.error}")
