"""The per-invocation logging and metrics context (chalicelib.observability.invocation)."""

from __future__ import annotations

import json
import logging
import threading
import warnings

from chalicelib.observability import correlated, count, invocation, logger, metrics


def test_each_invocation_publishes_its_own_metrics_with_its_stage_and_no_warning(
    capsys, monkeypatch
):
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Powertools' "Dimension already added" fails the test
        for stage, rows in (("local", 3), ("local", 5), ("dev", 7)):
            with invocation("write_readings", stage):
                count("RowsWritten", rows)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    written = [(line["stage"], line["RowsWritten"]) for line in lines]
    assert written == [("local", [3.0]), ("local", [5.0]), ("dev", [7.0])]
    assert metrics.metric_set == {}


class _Lines(logging.Handler):
    """Formats each record on the thread that logs it, as the stdout handler does."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


def test_invocations_side_by_side_keep_their_own_log_keys():
    """The local runtime runs invocations on threads of one process; Lambda, one per process."""
    lines = _Lines()
    lines.setFormatter(logger.registered_formatter)
    logger._logger.addHandler(lines)
    both_tagged = threading.Barrier(2)
    both_logged = threading.Barrier(2)

    left_behind: dict[int, dict] = {}

    def invoke(n: int) -> None:
        with invocation(f"function-{n}", "local"), correlated(ingest_id=f"job-{n}"):
            both_tagged.wait(timeout=10)
            logger.info("writing")
            both_logged.wait(timeout=10)
        # What the next invocation on this thread would start with.
        left_behind[n] = dict(logger.thread_safe_get_current_keys())

    threads = [threading.Thread(target=invoke, args=(n,)) for n in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=20)
    finally:
        logger._logger.removeHandler(lines)
    tagged = sorted((line["function"], line["ingest_id"]) for line in lines.lines)
    assert tagged == [("function-0", "job-0"), ("function-1", "job-1")]
    assert left_behind == {0: {}, 1: {}}
