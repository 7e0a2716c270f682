"""Start-up cost of menda-keyring, measured against the cheapest possible keyring plugin.

Run from the repository root::

    uv run python benchmarks/run.py [--runs 20] [--json benchmarks/results/latest.json]

See benchmarks/README.md for what each row means. This module only wires the
parts together: environments (``_envs``), cases (``_cases``, ``_homes``), the
emulator (``_cloud``), timing (``_timing``), import figures (``_importtime``),
the herd (``_herd``) and the report (``_report``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `python benchmarks/run.py` puts benchmarks/ first, not the root
    sys.path.insert(0, str(REPO))

from benchmarks._cases import (  # noqa: E402
    CA_SERVICE,
    CA_USERNAME,
    OTHER_SERVICE,
    OTHER_USERNAME,
    Case,
    codeartifact_case,
    make_cases,
)
from benchmarks._cloud import Cloud  # noqa: E402
from benchmarks._herd import herd  # noqa: E402
from benchmarks._homes import SOURCES  # noqa: E402
from benchmarks._importtime import import_figures  # noqa: E402
from benchmarks._report import case_report, print_report  # noqa: E402
from benchmarks._timing import DISTURBED_NS, run_rounds  # noqa: E402

from benchmarks import _envs  # noqa: E402


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=None, help="timed runs per case (default 20)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default 2)")
    parser.add_argument(
        "--extra-rounds",
        type=int,
        default=None,
        help="at most this many rounds more, to replace disturbed runs (default: runs / 2)",
    )
    parser.add_argument("--herd", type=int, default=None, help="processes in the herd (32)")
    parser.add_argument("--herd-rounds", type=int, default=None, help="herds to start (3)")
    parser.add_argument(
        "--import-runs", type=int, default=None, help="-X importtime runs per figure (11)"
    )
    parser.add_argument("--quick", action="store_true", help="smoke check: 5 runs, a herd of 8")
    parser.add_argument(
        "--json",
        type=Path,
        default=REPO / "benchmarks" / "results" / "latest.json",
        help="where to write the results (default benchmarks/results/latest.json)",
    )
    parser.add_argument(
        "--env-dir",
        type=Path,
        default=None,
        help=f"where to build the environments (default {_envs.default_env_root()})",
    )
    parser.add_argument(
        "--reuse-envs",
        action="store_true",
        help="reuse environments already built in --env-dir (skips rebuilding the wheels!)",
    )
    parser.add_argument(
        "--no-peer",
        action="store_true",
        help=f"skip the reference backend ({_envs.REFERENCE_REQUIREMENT})",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed of the case order")
    args = parser.parse_args(argv)
    quick = args.quick
    args.runs = args.runs if args.runs is not None else (5 if quick else 20)
    args.herd = args.herd if args.herd is not None else (8 if quick else 32)
    args.herd_rounds = args.herd_rounds if args.herd_rounds is not None else (1 if quick else 3)
    args.import_runs = args.import_runs if args.import_runs is not None else (3 if quick else 11)
    args.extra_rounds = args.extra_rounds if args.extra_rounds is not None else args.runs // 2
    if args.runs < 1 or args.herd < 1 or args.warmup < 0 or args.extra_rounds < 0:
        parser.error("--runs and --herd must be at least 1, --warmup and --extra-rounds at least 0")
    return args


@contextlib.contextmanager
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="menda-bench-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def build_envs(
    args: argparse.Namespace, uv: str, keyring_version: str
) -> tuple[_envs.Venv, _envs.Venv, _envs.Venv | None, str | None]:
    root: Path = args.env_dir or _envs.default_env_root()
    python = sys.executable
    log(f"building environments in {root} (keyring=={keyring_version}) …")
    baseline = _envs.build_baseline(uv, root, python, keyring_version, reuse=args.reuse_envs)
    log("  baseline: keyring + null plugin ready")
    menda = _envs.build_menda(uv, REPO, root, python, keyring_version, reuse=args.reuse_envs)
    log("  menda: keyring + menda-keyring wheels ready")
    reference: _envs.Venv | None = None
    reason: str | None = None
    if args.no_peer:
        reason = "skipped (--no-peer)"
    else:
        try:
            reference = _envs.build_reference(
                uv, root, python, keyring_version, reuse=args.reuse_envs
            )
            log(f"  reference: keyring + {_envs.REFERENCE_REQUIREMENT} ready")
        except _envs.EnvError as exc:
            reason = f"could not install {_envs.REFERENCE_REQUIREMENT}: {exc}"
            log(f"  reference: unavailable: {reason}")
    return menda, baseline, reference, reason


def machine_info(uv: str, keyring_version: str, reference_version: str | None) -> dict[str, Any]:
    def git(*args: str) -> str | None:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else None

    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": None if load is None else [round(x, 2) for x in load],
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "keyring": keyring_version,
        "reference_menda_keyring": reference_version,
        "uv": _envs.uv_version(uv),
        "git_commit": git("rev-parse", "HEAD"),
        "git_dirty": bool(git("status", "--porcelain")),
    }


def measure_all(
    args: argparse.Namespace,
    tmp: Path,
    cloud: Cloud,
    envs: tuple[_envs.Venv, _envs.Venv, _envs.Venv | None, str | None],
) -> tuple[list[Case], dict[str, Any], dict[str, Any]]:
    """The cases timed side by side, then the import figures, then the herd."""
    menda, baseline, reference, reason = envs
    ids = cloud.identities
    cases = make_cases(
        tmp, menda=menda, baseline=baseline, reference=reference, reference_reason=reason, ids=ids
    )
    by_key = {case.key: case for case in cases}
    log("probing each case once …")
    run_rounds(
        cases,
        cloud,
        runs=args.runs,
        warmup=args.warmup,
        extra_rounds=args.extra_rounds,
        seed=args.seed,
        progress=log,
    )

    log(f"import times ({args.import_runs} runs each) …")
    imports = import_figures(
        menda_python=menda.python,
        baseline_python=baseline.python,
        baseline_env=by_key["baseline"].env,
        warm_envs={
            source: by_key[f"menda_warm_{source}"].env
            for source in SOURCES
            if by_key[f"menda_warm_{source}"].active
        },
        service=(CA_SERVICE, CA_USERNAME),
        other=(OTHER_SERVICE, OTHER_USERNAME),
        runs=args.import_runs,
    )

    cold = by_key["menda_cold"]
    herd_report: dict[str, Any]
    if cold.active:
        log(f"herd: {args.herd} processes x {args.herd_rounds} …")
        herd_case = codeartifact_case(
            tmp, "herd", "herd", venv=menda, source="env", ids=ids, cache_mode="cold"
        )
        herd_report = herd(herd_case, cloud, args.herd, args.herd_rounds)
    else:
        herd_report = {"verdict": "not run", "reason": "the cold case failed"}
    herd_report["single_cold_wall_ms_median"] = (
        round(statistics.median(cold.wall_ns) / 1e6, 3) if cold.wall_ns else None
    )
    return cases, imports, herd_report


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    uv = _envs.find_uv()
    keyring_version = importlib.metadata.version("keyring")
    try:
        envs = build_envs(args, uv, keyring_version)
    except _envs.EnvError as exc:
        log(f"cannot build the environments: {exc}")
        return 2
    reference = envs[2]
    reference_version = (
        None if reference is None else _envs.distribution_version(reference, _envs.REFERENCE_DIST)
    )
    info = machine_info(uv, keyring_version, reference_version)

    cloud = Cloud()
    try:
        with workdir() as tmp:
            cases, imports, herd_report = measure_all(args, tmp, cloud, envs)
    finally:
        cloud.stop()

    baseline = next(case for case in cases if case.key == "baseline")
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    info["load_average_at_end"] = None if load is None else [round(x, 2) for x in load]
    result = {
        "machine": info,
        "config": {
            "runs": args.runs,
            "warmup_rounds": args.warmup,
            "extra_rounds_at_most": args.extra_rounds,
            "disturbed_above_ms": DISTURBED_NS / 1e6,
            "herd_processes": args.herd,
            "herd_rounds": args.herd_rounds,
            "import_runs": args.import_runs,
            "seed": args.seed,
            "other_service": [OTHER_SERVICE, OTHER_USERNAME],
            "codeartifact_service": [CA_SERVICE, CA_USERNAME],
        },
        "cases": [case_report(case, baseline) for case in cases],
        "import_time": imports,
        "herd": herd_report,
    }
    print_report(result)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    log(f"wrote {args.json}")
    broken = any(case.status == "failed" or case.failures for case in cases)
    broken = broken or herd_report.get("verdict") == "FAILED"
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
