"""The ingest handler's memory does not grow with the file it reads.

Each file is ingested by the handler in a process of its own, streamed from a
moto server in this one (see :mod:`benchmarks.memory` for how the peak is
taken, and why not from ``ru_maxrss``). The larger file is about 14 MiB more
than the smaller: an ingest that held the body, its text, or its rows would
show that much more at its peak, and an ingest that streams shows none of it.
Nothing here depends on how fast the machine is.
"""

from __future__ import annotations

from benchmarks import memory

SMALL_ROWS = 50_000
LARGE_ROWS = 300_000
# Allocator noise between two runs is well under a MiB; holding the larger
# file once, as bytes or as text, would add about 14 MiB.
GROWTH_BOUND_MIB = 6.0
# The bound for 1M rows, checked here for a smaller file.
ABOVE_IDLE_BOUND_MIB = 100.0


def test_the_ingest_handlers_peak_memory_stays_flat_as_files_grow():
    figures = memory.measure([SMALL_ROWS, LARGE_ROWS])
    small, large = figures["results"]
    assert (small["rows_seen"], large["rows_seen"]) == (SMALL_ROWS, LARGE_ROWS)
    assert small["state"] == large["state"] == "RUNNING"  # parsed; no writer runs here
    assert large["file_mib"] - small["file_mib"] > 2 * GROWTH_BOUND_MIB
    # The peak must be the invocation's own, not the imports' before it.
    assert small["peak_is_invocations_own"] and large["peak_is_invocations_own"]
    assert large["peak_above_idle_mib"] - small["peak_above_idle_mib"] < GROWTH_BOUND_MIB
    assert large["peak_above_idle_mib"] < ABOVE_IDLE_BOUND_MIB
