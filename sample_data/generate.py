"""Writes a large, deterministic readings CSV: ``python sample_data/generate.py ROWS OUT``.

The same seed and row count always give the same bytes, so benchmarks and
tests can compare runs. Rows are written as they are generated, so a
million-row file needs no more memory than a ten-row one.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from typing import TextIO

HEADER = ["timestamp", "location", "source", "local_dest", "local_avg", "remote_dest", "remote_avg"]
START_EPOCH = 1717200000
SOURCES = ("wired", "wireless")


def write_rows(
    out: TextIO, rows: int, seed: int = 7, bad_every: int = 0, locations: int = 50
) -> None:
    """Write ``rows`` data rows; every ``bad_every``-th row has a non-numeric latency."""
    rng = random.Random(seed)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for n in range(rows):
        location = f"site-{n % locations:03d}"
        source = SOURCES[(n // locations) % 2]
        # Unique per (location, source): no two rows overwrite each other.
        timestamp = f"{START_EPOCH + n // (2 * locations) * 10}.{n % 1000:03d}"
        local_avg = f"{rng.uniform(0.1, 9.9):.2f}"
        if bad_every and (n + 1) % bad_every == 0:
            local_avg = "n/a"
        writer.writerow(
            [
                timestamp,
                location,
                source,
                f"router-{n % 7}",
                local_avg,
                f"probe-{n % 3}",
                f"{rng.uniform(5, 150):.2f}",
            ]
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("rows", type=int)
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--bad-every", type=int, default=0)
    args = parser.parse_args(argv)
    with open(args.out, "w", newline="") as out:
        write_rows(out, args.rows, args.seed, args.bad_every)
    return 0


if __name__ == "__main__":
    sys.exit(main())
