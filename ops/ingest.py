"""``ingest replay INGEST_ID``: run an uploaded object's ingest again, idempotently.

Replay re-reads the object version the job names (its version id, or its ETag
through ``If-Match``) and goes through the same code as the ingest handler
(:func:`chalicelib.readings.ingest.replay`), here in the operator's process with the
operator's credentials. It is safe in every job state:

* totals are recorded with SET, so the job record ends with the same numbers;
* every chunk is sent again, and the writer's chunk markers turn a chunk that
  was already counted into a rewrite of the same items (idempotent puts) with
  no change to ``rows_written``;
* so a COMPLETED job stays COMPLETED with the same counts, a RUNNING job that
  lost chunks to the DLQ gets them again, and a FAILED job is retried.

The writer runs where it always runs (Lambda, or the local cloud's runtime),
so right after a replay the job may still be RUNNING; ``--follow`` waits.
"""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console

from chalicelib.errors import NotFound
from chalicelib.readings import ingest
from chalicelib.readings.jobs import DONE_STATES, FAILED, FINAL_STATES, RUNNING
from chalicelib.services import Services
from ops.target import Target
from ops.upload import DEFAULT_TIMEOUT, JobTimeout, describe_job, follow_job


def replay(target: Target, ingest_id: str) -> dict[str, Any]:
    """Replay one job against the target's stage; returns the job record after the ingest.

    Raises
    ------
    chalicelib.errors.NotFound
        When the stage has no job ``ingest_id``.
    """
    services = Services(target.stage_config.settings(), clients=target.clients)
    return ingest.replay(ingest_id, services)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("ingest", help="act on ingest jobs")
    commands = parser.add_subparsers(dest="ingest_command", required=True, metavar="ACTION")
    replay_parser = commands.add_parser(
        "replay", help="re-run an ingest job's object (safe to repeat)"
    )
    replay_parser.add_argument("ingest_id", help="the job's id (from status, logs or dlq peek)")
    replay_parser.add_argument(
        "--follow", action="store_true", help="wait until the writer has finished the job"
    )
    replay_parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds --follow waits"
    )
    replay_parser.add_argument("--json", action="store_true", help="print the job as JSON")
    replay_parser.set_defaults(run=run_replay)


def run_replay(args: argparse.Namespace, target: Target, console: Console) -> int:
    try:
        job = replay(target, args.ingest_id)
    except NotFound as error:
        console.print(f"[red]error:[/] {error.message} in stage {target.stage} (not found)")
        return 1
    if args.follow and job["state"] not in FINAL_STATES:
        services = Services(target.stage_config.settings(), clients=target.clients)
        try:
            job = follow_job(services.jobs, [args.ingest_id], console, timeout=args.timeout) or job
        except JobTimeout as error:
            console.print(f"[red]error:[/] {error}")
            return 1
    if args.json:
        console.print_json(data=job)
    else:
        console.print(f"replayed; {describe_job(job)}")
        if job["state"] == RUNNING:
            console.print("the writer finishes the job from the ingest queue (--follow waits)")
        if job.get("last_error") and job["state"] not in DONE_STATES:
            # Reopening cleared it, so this is an attempt since the replay: context, not a verdict.
            error = job["last_error"]
            console.print(f"last recorded error: {error['code']}: {error['message']}")
    return 1 if job["state"] == FAILED else 0
