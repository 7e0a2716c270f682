"""Statistics, ratios and verdicts: the arithmetic of the benchmark, nothing else."""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Stats", "ratio", "ratio_interval", "summarize", "verdict"]


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


def ratio_interval(
    samples: Sequence[int],
    reference: Sequence[int],
    *,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float] | None:
    """A bootstrap interval of the ratio of medians: how far noise alone moves it.

    Both samples are resampled with replacement, independently; ``None`` when
    either has fewer than 3 values.
    """
    if len(samples) < 3 or len(reference) < 3:
        return None
    rng = random.Random(seed)
    ratios = sorted(
        statistics.median(rng.choices(samples, k=len(samples)))
        / statistics.median(rng.choices(reference, k=len(reference)))
        for _ in range(resamples)
    )
    tail = (1 - confidence) / 2
    low = ratios[int(tail * (resamples - 1))]
    high = ratios[int((1 - tail) * (resamples - 1))]
    return low, high


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
