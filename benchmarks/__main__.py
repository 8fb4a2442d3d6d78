"""``python -m benchmarks [--quick] [--out DIR] [--only SECTION ...]``: the whole bench.

Runs each section of :mod:`benchmarks.sections` in a fresh process, one after
another (they share the machine's cores, so never side by side), models the
cost from the counted calls, and writes ``results.json``, ``report.md`` and
``plots/*.png`` into ``DIR`` (``benchmarks/`` by default). ``make bench`` runs
it. ``--quick`` uses tiny sizes: a smoke test of the machinery, in well under
a minute, whose figures mean nothing. ``--only`` re-runs some sections and
keeps the others' figures from ``DIR/results.json`` (each section notes when
it ran).

A section that fails is reported as failed (with the end of its output) and
the others still run; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import cost, report
from benchmarks.sections import SECTIONS

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def machine() -> dict[str, Any]:
    processor = platform.processor()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                processor = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "processor": processor,
        "python": platform.python_version(),
        "os": platform.platform(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def run_section(name: str, quick: bool, scratch: Path) -> tuple[dict[str, Any] | None, dict]:
    out = scratch / f"{name}.json"
    command = [sys.executable, "-m", "benchmarks.sections", name, str(out)]
    if quick:
        command.append("--quick")
    print(f"bench: {name} ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    seconds = round(time.perf_counter() - started, 1)
    if done.returncode != 0 or not out.exists():
        tail = (done.stdout + done.stderr)[-2000:]
        print(f"bench: {name} FAILED after {seconds} s:\n{tail}", file=sys.stderr, flush=True)
        return None, {"seconds": seconds, "status": "failed", "output": tail}
    print(f"bench: {name} done in {seconds} s", file=sys.stderr, flush=True)
    return json.loads(out.read_text()), {"seconds": seconds, "status": "ok"}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def kept_sections(path: Path, quick: bool, rerun: list[str]) -> dict[str, Any]:
    """The sections of an earlier ``results.json`` that this run does not re-run: its
    figures and their status, in SECTIONS' order. Nothing from a run of the other
    kind (quick or full), whose figures would not compare."""
    try:
        earlier = json.loads(path.read_text())
    except (OSError, ValueError):
        return {"sections": {}}
    if earlier.get("quick") != quick:
        return {"sections": {}}
    kept: dict[str, Any] = {"sections": {}}
    for name in SECTIONS:
        if name in rerun or name not in earlier.get("sections", {}):
            continue
        kept["sections"][name] = {
            "ran_at": earlier.get("started"),
            **earlier["sections"][name],
        }
        if name in earlier:
            kept[name] = earlier[name]
    return kept


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    parser.add_argument("--out", type=Path, default=HERE, help="where results and report go")
    parser.add_argument("--only", nargs="+", choices=sorted(SECTIONS), help="some sections only")
    parser.add_argument(
        "--render",
        action="store_true",
        help="only re-price and re-render the report from OUT/results.json",
    )
    args = parser.parse_args(argv)
    if args.render:
        # The cost is a model of the measured calls: re-priced from prices.json.
        results = json.loads((args.out / "results.json").read_text())
        results["cost"] = cost.model(
            results.get("calls"), results.get("orders"), cost.load_prices()
        )
        (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
        print(f"bench: wrote {report.render(results, args.out)}", file=sys.stderr)
        return 0
    names = args.only or list(SECTIONS)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results: dict[str, Any] = {
        "started": _now(),
        "quick": args.quick,
        "machine": machine(),
        "sections": {},
    }
    if args.only:
        # The other sections keep their figures from the last run of the same kind.
        results.update(kept_sections(args.out / "results.json", args.quick, names))
        results["only"] = names
    with tempfile.TemporaryDirectory(prefix="eventflow-bench-") as scratch:
        for name in names:
            ran_at = _now()
            result, status = run_section(name, args.quick, Path(scratch))
            results["sections"][name] = {**status, "ran_at": ran_at}
            results.pop(name, None)
            if result is not None:
                results[name] = result
    results["sections"] = {n: results["sections"][n] for n in SECTIONS if n in results["sections"]}
    results["cost"] = cost.model(results.get("calls"), results.get("orders"), cost.load_prices())
    results["seconds"] = round(time.perf_counter() - started, 1)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    path = report.render(results, args.out)
    print(f"bench: wrote {args.out / 'results.json'} and {path}", file=sys.stderr)
    failed = [n for n, s in results["sections"].items() if s["status"] != "ok"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
