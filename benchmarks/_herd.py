"""The herd: many ``keyring get`` processes started together on a cold cache.

The cache's locks must turn them into exactly one token request and one
registry request, with every process printing the same token.
"""

from __future__ import annotations

import os
import statistics
from typing import Any

from benchmarks._cases import Case, check, prepare
from benchmarks._cloud import RequestLog
from benchmarks._measure import run_herd

__all__ = ["herd"]


def _round(case: Case, cloud: RequestLog, size: int) -> dict[str, Any]:
    prepare(case)
    cloud.clear()
    outcome = run_herd(case.argv, case.env, size)
    tokens, registry = cloud.counts()
    problems = [check(case, result) for result in outcome.results]
    failed = [problem for problem in problems if problem is not None]
    answers = {
        result.stdout.strip()
        for result, problem in zip(outcome.results, problems, strict=True)
        if problem is None
    }
    cpu_total = sum(result.cpu_ns or 0 for result in outcome.results) / 1e6
    expected = (1, 1, 0, 1)  # token requests, registry requests, failures, distinct tokens
    return {
        "wall_ms": round(outcome.wall_ns / 1e6, 3),
        # The herd cannot finish faster than its CPU time spread over every CPU;
        # a wall time far above that means processes sat waiting (for the lock).
        "cpu_ms_total": round(cpu_total, 3),
        "cpu_bound_ms": round(cpu_total / (os.cpu_count() or 1), 3),
        "slowest_process_ms": round(max(r.wall_ns for r in outcome.results) / 1e6, 3),
        "token_requests": tokens,
        "registry_requests": registry,
        "failed_processes": len(failed),
        "first_failure": failed[0] if failed else None,
        "distinct_tokens": len(answers),
        "verdict": "ok" if (tokens, registry, len(failed), len(answers)) == expected else "FAILED",
    }


def herd(case: Case, cloud: RequestLog, size: int, rounds: int) -> dict[str, Any]:
    """``rounds`` herds of ``size`` processes running ``case`` (a cold-cache case)."""
    results = [_round(case, cloud, size) for _ in range(rounds)]
    walls = [result["wall_ms"] for result in results]
    return {
        "processes": size,
        "identity_source": case.source,
        "rounds": results,
        "wall_ms_median": round(statistics.median(walls), 3) if walls else None,
        "verdict": "ok" if all(r["verdict"] == "ok" for r in results) else "FAILED",
    }
