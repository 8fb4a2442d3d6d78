"""Markdown building blocks for ``benchmarks/report.md``."""

from __future__ import annotations

from typing import Any


def table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def number(value: float) -> str:
    """Thousands separated; two decimals below 100."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"
