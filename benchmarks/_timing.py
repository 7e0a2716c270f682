"""Timing the cases: one probe each, then interleaved rounds in a shuffled order.

A timed run during which the rest of the machine used more than
``DISTURBED_NS`` of CPU (another session's tests, say) is discarded, and extra
rounds of the cases that lack samples make up for it, up to a limit.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable, Sequence

from benchmarks._cases import Case, check, first_lines, prepare
from benchmarks._cloud import RequestLog
from benchmarks._measure import run_once

__all__ = ["DISTURBED_NS", "measure", "probe", "run_rounds"]

# This process's own share (spawning, the emulator answering) stays well below it.
DISTURBED_NS = 50_000_000


def probe(case: Case, cloud: RequestLog) -> None:
    """One untimed run: fills the cache of warm cases and disables a broken case."""
    if case.cache_mode in ("warm", "access") and case.own_cache is not None:
        shutil.rmtree(case.own_cache, ignore_errors=True)
    prepare(case)
    cloud.clear()
    result = run_once(case.argv, case.env)
    problem = check(case, result)
    if problem is not None:
        case.status = "failed"
        case.reason = problem
        return
    if result.stderr.strip():
        case.notes.append(f"stderr not empty: {first_lines(result.stderr)}")


def measure(case: Case, cloud: RequestLog, *, record: bool) -> None:
    """One run: prepare the cache, spawn, check the answer and the requests it made.

    With ``record``, its times count unless the run was disturbed.
    """
    prepare(case)
    cloud.clear()
    result = run_once(case.argv, case.env)
    counts = cloud.counts()
    problem = check(case, result)
    if problem is not None:
        case.failures.append(problem)
        return
    if case.expected is not None and counts != case.expected:
        case.notes.append(
            f"made {counts[0]} token + {counts[1]} registry requests, "
            f"expected {case.expected[0]} + {case.expected[1]}"
        )
    if record and (result.others_cpu_ns or 0) > DISTURBED_NS:
        case.disturbed += 1
    elif record:
        case.wall_ns.append(result.wall_ns)
        if result.cpu_ns is not None:
            case.cpu_ns.append(result.cpu_ns)
        if case.uses_keyring:
            case.requests[f"{counts[0]}+{counts[1]}"] += 1


def run_rounds(
    cases: Sequence[Case],
    cloud: RequestLog,
    *,
    runs: int,
    warmup: int,
    extra_rounds: int,
    seed: int | None,
    progress: Callable[[str], None],
) -> None:
    """Probe every case, then run the active ones ``warmup + runs`` times, interleaved.

    Each round runs every case once, in a new shuffled order, so drift of the
    machine (another tenant, thermal throttling) spreads over all cases alike.
    Then up to ``extra_rounds`` rounds of the cases with fewer than ``runs``
    samples (their disturbed runs were discarded).
    """
    for case in cases:
        if case.active:
            probe(case, cloud)
            if not case.active:
                progress(f"  {case.key}: FAILED: {case.reason}")
    active = [case for case in cases if case.active]
    rng = random.Random(seed)
    total = warmup + runs
    progress(f"measuring {len(active)} cases, {warmup} warm-up + {runs} rounds, interleaved …")
    for round_index in range(total):
        _round(active, cloud, rng, record=round_index >= warmup)
        if (round_index + 1) % 5 == 0 or round_index + 1 == total:
            progress(f"  round {round_index + 1}/{total}")
    for extra in range(extra_rounds):
        short = [case for case in active if len(case.wall_ns) < runs]
        if not short:
            break
        if extra == 0:
            discarded = sum(case.disturbed for case in active)
            progress(f"  {discarded} disturbed runs discarded; extra rounds for {len(short)} cases")
        _round(short, cloud, rng, record=True)


def _round(cases: Sequence[Case], cloud: RequestLog, rng: random.Random, *, record: bool) -> None:
    order = list(cases)
    rng.shuffle(order)
    for case in order:
        measure(case, cloud, record=record)
