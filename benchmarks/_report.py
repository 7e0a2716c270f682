"""Statistics, ratios, verdicts and the text table: the pure part of the benchmark."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "Stats",
    "format_ms",
    "format_ratio",
    "format_table",
    "ratio",
    "summarize",
    "verdict",
]


@dataclass(frozen=True)
class Stats:
    """Median, minimum and maximum of a sample, in milliseconds."""

    median_ms: float
    min_ms: float
    max_ms: float
    n: int

    def as_dict(self) -> dict[str, float | int]:
        return {
            "median_ms": round(self.median_ms, 3),
            "min_ms": round(self.min_ms, 3),
            "max_ms": round(self.max_ms, 3),
            "n": self.n,
        }


def summarize(samples_ns: Sequence[int]) -> Stats | None:
    """``None`` for an empty sample (a case that failed or a platform without CPU times)."""
    if not samples_ns:
        return None
    ms = [value / 1e6 for value in samples_ns]
    return Stats(statistics.median(ms), min(ms), max(ms), len(ms))


def ratio(value: Stats | None, reference: Stats | None) -> float | None:
    """``value``'s median over ``reference``'s median, or ``None`` when either is missing."""
    if value is None or reference is None or reference.median_ms <= 0:
        return None
    return value.median_ms / reference.median_ms


def verdict(wall_ratio: float | None, cpu_ratio: float | None, target: float | None) -> str:
    """``ok`` when both ratios meet the target, else which one is over; ``""`` without target."""
    if target is None:
        return ""
    if wall_ratio is None and cpu_ratio is None:
        return "n/a"
    over = [
        name
        for name, value in (("wall", wall_ratio), ("cpu", cpu_ratio))
        if value is not None and value > target
    ]
    if not over:
        return "ok"
    return "over (" + ", ".join(over) + ")"


def format_ms(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table: the first column left-aligned, the others right-aligned."""
    widths = [len(header) for header in headers]
    for row in rows:
        if len(row) != len(headers):
            raise ValueError(f"row has {len(row)} cells, expected {len(headers)}: {row!r}")
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.ljust(width) if index == 0 else cell.rjust(width)
            for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])
