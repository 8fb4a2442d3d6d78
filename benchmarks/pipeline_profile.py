"""Where the local cloud's time goes while it ingests a file: a cProfile of every thread.

``python -m benchmarks.pipeline_profile [ROWS] [--out FILE]`` runs the same
pipeline as :mod:`benchmarks.throughput` (a local cloud on free ports, one
generated file uploaded, timed to the job's completion) with a profiler on
every thread the process starts: moto's request threads, the pollers, the
handler invocations. cProfile sees one thread at a time, so each thread gets
its own profiler and the statistics are merged at the end, grouped by the
thread's role. Under the GIL the threads take turns on one interpreter, so the
grouped totals say what the whole run spent its interpreter time on.

The profiler slows everything several times over; compare the shares, not the
absolute times. Profiles kept for the record are in ``benchmarks/profiles/``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import threading
import time
from collections import defaultdict

PROFILED: list[tuple[str, cProfile.Profile]] = []
_lock = threading.Lock()


def role(thread_name: str) -> str:
    """The part of the local cloud a thread belongs to, from the names its creators give."""
    if "process_request_thread" in thread_name:
        return "moto server (request threads)"
    if thread_name.startswith("localcloud-batch-"):
        return "runtime batch threads (" + thread_name.removeprefix("localcloud-batch-") + ")"
    if thread_name.startswith(("localcloud-sqs-", "localcloud-stream-", "localcloud-poller")):
        return "runtime pollers"
    if thread_name.startswith("localcloud-"):
        function = thread_name.removeprefix("localcloud-").rsplit("-", 1)[0]
        return f"handler {function}"
    return "other"


def _install() -> None:
    run = threading.Thread.run

    def profiled_run(self: threading.Thread) -> None:
        # CPU time of this thread only: time spent waiting on locks, sockets and
        # the GIL is not work, and wall time would count it in every thread.
        profile = cProfile.Profile(time.thread_time)
        with _lock:
            PROFILED.append((self.name, profile))
        profile.enable()
        try:
            run(self)
        finally:
            profile.disable()

    threading.Thread.run = profiled_run  # type: ignore[method-assign]


def _stats(profiles: list[cProfile.Profile]) -> pstats.Stats | None:
    stats = None
    for profile in profiles:
        try:
            if stats is None:
                stats = pstats.Stats(profile)
            else:
                stats.add(profile)
        except TypeError:  # a thread that never ran any Python
            continue
    return stats


def report(seconds: float, rows: int, top: int = 25) -> str:
    groups: dict[str, list[cProfile.Profile]] = defaultdict(list)
    for name, profile in PROFILED:
        groups[role(name)].append(profile)
    out = io.StringIO()
    out.write(f"{rows} rows in {seconds:.2f} s under the profiler\n\n")
    totals = {}
    for group, profiles in groups.items():
        stats = _stats(profiles)
        if stats is not None:
            totals[group] = (stats, stats.total_tt)  # type: ignore[attr-defined]
    grand = sum(t for _, t in totals.values()) or 1.0
    out.write("CPU time by thread role (share of all profiled time)\n")
    for group, (_, total) in sorted(totals.items(), key=lambda kv: -kv[1][1]):
        out.write(f"  {total:8.2f} s  {100 * total / grand:5.1f} %  {group}\n")
    everything = _stats([p for _, p in PROFILED])
    if everything is not None:
        out.write(f"\n== all threads: top {top} by own time ==\n")
        buffer = io.StringIO()
        everything.stream = buffer  # type: ignore[attr-defined]
        everything.sort_stats("tottime").print_stats(top)
        out.write(_trim(buffer.getvalue()))
    for group, (stats, _) in sorted(totals.items(), key=lambda kv: -kv[1][1]):
        if group == "other":
            continue
        buffer = io.StringIO()
        stats.stream = buffer  # type: ignore[attr-defined]
        stats.sort_stats("cumulative").print_stats(top)
        out.write(f"\n== {group}: top {top} by cumulative time ==\n")
        out.write(_trim(buffer.getvalue()))
    return out.getvalue()


def _trim(text: str) -> str:
    # pstats prints a preamble (file names, totals) before the table.
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line.lstrip().startswith("ncalls"):
            return "\n".join(lines[index:]) + "\n"
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("rows", type=int, nargs="?", default=20_000)
    parser.add_argument("--out", help="write the summary here as well as to stdout")
    args = parser.parse_args(argv)
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    _install()
    from benchmarks.throughput import pipeline_rate
    from localcloud.cloud import LocalCloud

    with LocalCloud(aws_port=0, api_port=0, serve_api=False) as cloud:
        started = time.perf_counter()
        pipeline_rate(cloud, args.rows, timeout=max(300.0, args.rows / 20))
        seconds = time.perf_counter() - started
    text = report(seconds, args.rows)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
