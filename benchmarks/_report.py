"""The report: each case's figures as JSON-ready data, and the text printed at the end."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks._cases import Case
from benchmarks._importtime import FORBIDDEN_ON_WARM_PATH
from benchmarks._stats import ratio, ratio_interval, summarize, verdict

__all__ = [
    "case_report",
    "format_ms",
    "format_ratio",
    "format_table",
    "print_report",
    "side_by_side",
    "table",
]


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


def case_report(case: Case, reference: Case) -> dict[str, Any]:
    """One case's figures, its ratios against ``reference`` (the baseline) and its verdict."""
    wall, cpu = summarize(case.wall_ns), summarize(case.cpu_ns)
    ref_wall, ref_cpu = summarize(reference.wall_ns), summarize(reference.cpu_ns)
    wall_ratio, cpu_ratio = ratio(wall, ref_wall), ratio(cpu, ref_cpu)
    intervals = {
        measure: None if interval is None else [round(bound, 4) for bound in interval]
        for measure, interval in (
            ("wall", ratio_interval(case.wall_ns, reference.wall_ns)),
            ("cpu", ratio_interval(case.cpu_ns, reference.cpu_ns)),
        )
    }
    return {
        "key": case.key,
        "label": case.label,
        "env": case.env_name,
        "argv": [Path(case.argv[0]).name, *case.argv[1:]] if case.argv else [],
        "identity_source": case.source,
        "cache": case.cache_mode,
        "pairs_with": case.pairs_with,
        "status": case.status,
        "reason": case.reason,
        "wall": None if wall is None else wall.as_dict(),
        "cpu": None if cpu is None else cpu.as_dict(),
        "ratio_wall": None if wall_ratio is None else round(wall_ratio, 4),
        "ratio_cpu": None if cpu_ratio is None else round(cpu_ratio, 4),
        # 95 % bootstrap intervals of the ratios: differences inside them are noise.
        "ratio_wall_interval": intervals["wall"],
        "ratio_cpu_interval": intervals["cpu"],
        "target": case.target,
        "verdict": verdict(wall_ratio, cpu_ratio, case.target) if case.active else case.status,
        "expected_requests": None if case.expected is None else "{}+{}".format(*case.expected),
        "requests_per_run": dict(case.requests),
        "disturbed_runs_discarded": case.disturbed,
        "failed_runs": len(case.failures),
        "failures": sorted(set(case.failures))[:5],
        "notes": sorted(set(case.notes))[:5],
    }


def _requests(rep: Mapping[str, Any]) -> str:
    seen = rep["requests_per_run"]
    return ", ".join(f"{k} x{v}" for k, v in sorted(seen.items())) or "-"


def _interval(rep: Mapping[str, Any], measure: str) -> str:
    bounds = rep[f"ratio_{measure}_interval"]
    return "-" if bounds is None or rep["key"] == "baseline" else f"{bounds[0]:.3f}-{bounds[1]:.3f}"


def _median(rep: Mapping[str, Any], measure: str) -> float | None:
    stats = rep[measure]
    return None if stats is None else float(stats["median_ms"])


def table(reports: Sequence[Mapping[str, Any]]) -> str:
    """Every case: medians, spread, ratios, target, verdict, requests per run."""
    headers = ["case", "wall med", "wall min-max", "CPU med", "wall ratio", "95% interval"]
    headers += ["CPU ratio", "95% interval", "target", "verdict", "requests", "n (discarded)"]
    rows = []
    for rep in reports:
        wall = rep["wall"]
        rows.append(
            [
                rep["label"],
                format_ms(_median(rep, "wall")),
                "-" if wall is None else f"{wall['min_ms']:.1f}-{wall['max_ms']:.1f}",
                format_ms(_median(rep, "cpu")),
                format_ratio(rep["ratio_wall"]),
                _interval(rep, "wall"),
                format_ratio(rep["ratio_cpu"]),
                _interval(rep, "cpu"),
                "-" if rep["target"] is None else f"<= {rep['target']:.2f}",
                rep["verdict"] or "",
                _requests(rep),
                f"{0 if wall is None else wall['n']} ({rep['disturbed_runs_discarded']})",
            ]
        )
    return format_table(headers, rows)


def side_by_side(reports: Sequence[Mapping[str, Any]]) -> str:
    """Each reference case beside the menda case it pairs with: ratios and requests."""
    by_key = {rep["key"]: rep for rep in reports}
    headers = ["case", "menda-keyring", "ratio", "requests", "reference", "ratio", "requests"]
    rows = []
    for peer in reports:
        ours = by_key.get(peer["pairs_with"] or "")
        if ours is None:
            continue
        rows.append(
            [
                peer["label"].split(", ", 1)[-1],
                format_ms(_median(ours, "wall")),
                format_ratio(ours["ratio_wall"]),
                _requests(ours),
                format_ms(_median(peer, "wall")) if peer["wall"] else peer["status"],
                format_ratio(peer["ratio_wall"]),
                _requests(peer),
            ]
        )
    return format_table(headers, rows)


def _print_imports(imports: Mapping[str, Any]) -> None:
    print("\nimport self time beyond keyring's own modules (-X importtime, median):")
    if imports["status"] != "ok":
        print(f"  failed: {imports['reason']}")
        return
    figures = [("import menda.keyring.backend", imports["backend_import"])]
    figures += [(f"warm get_password, {k}", fig) for k, fig in imports["warm_path"].items()]
    for label, fig in figures:
        if fig["status"] != "ok":
            print(f"  {label}: failed: {fig['reason']}")
            continue
        print(
            f"  {label}: {fig['self_ms_median']:.2f} ms "
            f"(min {fig['self_ms_min']:.2f}, max {fig['self_ms_max']:.2f}; "
            f"target <= {fig['target_ms']:.0f} ms) {fig['verdict']}"
        )
        ranked = sorted(fig["modules"].items(), key=lambda item: -item[1])
        listed = ", ".join(f"{name} {micros}" for name, micros in ranked)
        print(f"    modules (self time in us, largest first): {listed or '(none)'}")
        if "forbidden_imported" in fig:
            found = ", ".join(fig["forbidden_imported"]) or "none"
            forbidden = ", ".join(FORBIDDEN_ON_WARM_PATH)
            print(f"    {forbidden} on this path: {found} -> {fig['forbidden_verdict']}")


def _print_herd(herd: Mapping[str, Any]) -> None:
    print("\nherd (M2M from the environment, cold cache, processes started together):")
    if "rounds" not in herd:
        print(f"  {herd['verdict']}: {herd.get('reason')}")
        return
    print(
        f"  {herd['processes']} processes: wall {herd['wall_ms_median']:.1f} ms "
        f"(median of {len(herd['rounds'])}); one cold call: "
        f"{format_ms(herd['single_cold_wall_ms_median'])} ms"
    )
    for index, one in enumerate(herd["rounds"], 1):
        extra = (
            f"; {one['failed_processes']} failed: {one['first_failure']}"
            if one["failed_processes"]
            else ""
        )
        print(
            f"  round {index}: {one['wall_ms']:.1f} ms (CPU {one['cpu_ms_total']:.0f} ms in "
            f"all, so >= {one['cpu_bound_ms']:.0f} ms on {os.cpu_count()} CPUs), "
            f"{one['token_requests']} token + {one['registry_requests']} registry requests "
            f"(expected 1 + 1), {one['distinct_tokens']} distinct token(s) -> "
            f"{one['verdict']}{extra}"
        )


def print_report(result: Mapping[str, Any]) -> None:
    info, config = result["machine"], result["config"]
    print(
        f"menda-keyring start-up benchmark, {info['date']}: {info['platform']}, "
        f"{info['cpu_count']} CPUs, load {info['load_average_at_start']}, "
        f"Python {info['python']}, keyring {info['keyring']}, {info['uv']}"
    )
    print(
        f"medians of {config['runs']} interleaved runs per case (after "
        f"{config['warmup_rounds']} warm-up rounds); times in ms; ratios against the baseline;\n"
        "requests: token+registry requests per run x runs; n (discarded): runs counted (runs "
        f"discarded because other processes used > {config['disturbed_above_ms']:.0f} ms of "
        "CPU meanwhile); 95% interval: a bootstrap interval of the ratio (noise alone)\n"
    )
    cases = result["cases"]
    print(table(cases))
    for rep in cases:
        if rep["reason"]:
            print(f"  {rep['key']}: {rep['status']}: {rep['reason']}")
        if rep["failed_runs"]:
            print(f"  {rep['key']}: {rep['failed_runs']} runs failed: {'; '.join(rep['failures'])}")
        for note in rep["notes"]:
            print(f"  {rep['key']}: note: {note}")
    print("\nside by side with the reference (wall medians in ms, ratios against the baseline):")
    print(side_by_side(cases))
    _print_imports(result["import_time"])
    _print_herd(result["herd"])
