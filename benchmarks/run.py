"""Start-up cost of menda-keyring, measured against the cheapest possible keyring plugin.

Run from the repository root::

    uv run python benchmarks/run.py [--runs 20] [--json benchmarks/results/latest.json]

See benchmarks/README.md for what each row means.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import platform
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `python benchmarks/run.py` puts benchmarks/ first, not the root
    sys.path.insert(0, str(REPO))

from benchmarks._importtime import (  # noqa: E402
    ImportEntry,
    extra_modules,
    parse_importtime,
    self_time_us,
    top_level,
)
from benchmarks._measure import RunResult, run_herd, run_once  # noqa: E402
from benchmarks._report import (  # noqa: E402
    format_ms,
    format_ratio,
    format_table,
    ratio,
    summarize,
    verdict,
)

from benchmarks import _envs  # noqa: E402

OTHER_SERVICE = "https://pypi.org/simple/"
OTHER_USERNAME = "__token__"
CA_SERVICE = (
    "https://menda-private-058264169513.d.codeartifact.eu-west-1.amazonaws.com"
    "/pypi/menda-plugins/simple/"
)
CA_USERNAME = "aws"
CLIENT_ID = "menda-bench"

TARGET_OTHER = 1.02
TARGET_WARM = 1.05
TARGET_BACKEND_IMPORT_MS = 3.0
TARGET_WARM_IMPORT_MS = 5.0
FORBIDDEN_ON_WARM_PATH = ("requests", "urllib3", "filelock")

CacheMode = Literal["none", "warm", "access", "cold"]
# (token requests, registry requests) one run must make, per cache state.
EXPECTED_REQUESTS: dict[CacheMode, tuple[int, int]] = {
    "none": (0, 0),
    "warm": (0, 0),
    "access": (0, 1),
    "cold": (1, 1),
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Case:
    key: str
    label: str
    env_name: str
    argv: list[str]
    env: dict[str, str]
    target: float | None = None
    cache_mode: CacheMode = "none"
    cache_dir: Path | None = None
    expects_token: bool = False
    uses_keyring: bool = True
    status: Literal["ok", "failed", "unavailable"] = "ok"
    reason: str | None = None
    wall_ns: list[int] = field(default_factory=list)
    cpu_ns: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    requests: Counter[str] = field(default_factory=Counter)

    @property
    def active(self) -> bool:
        return self.status == "ok"


def _first_lines(data: bytes, count: int = 3) -> str:
    lines = data.decode("utf-8", "replace").strip().splitlines()
    text = " | ".join(line.strip() for line in lines[:count])
    return text + (" | …" if len(lines) > count else "") if text else "(nothing)"


def child_env(
    home: Path, venv: _envs.Venv, cloud_url: str, secret: str, cache_dir: Path
) -> dict[str, str]:
    """A clean environment: temporary home, M2M against the emulator, no proxies."""
    env = {
        "HOME": str(home),
        "USERPROFILE": str(home),
        "PATH": os.pathsep.join([str(venv.keyring.parent), "/usr/bin", "/bin"]),
        "LANG": "C.UTF-8",
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        # keyrings.codeartifact uses boto3: never let it wander off to an instance metadata service.
        "AWS_EC2_METADATA_DISABLED": "true",
        "MENDA_HOST": cloud_url,
        "MENDA_CLIENT_ID": CLIENT_ID,
        "MENDA_CLIENT_SECRET": secret,
        "MENDA_TOKEN_CACHE_DIR": str(cache_dir),
    }
    if sys.platform == "win32":
        for name in ("SYSTEMROOT", "TEMP", "TMP"):
            if name in os.environ:
                env[name] = os.environ[name]
    return env


def prepare(case: Case) -> None:
    """Put the token cache in the state the case measures (outside the timed region)."""
    if case.cache_dir is None:
        return
    if case.cache_mode == "cold":
        shutil.rmtree(case.cache_dir, ignore_errors=True)
    elif case.cache_mode == "access" and case.cache_dir.is_dir():
        for path in case.cache_dir.glob("registry-*.token"):
            path.unlink()


def check(case: Case, result: RunResult) -> str | None:
    """Why this run does not count, or None when it does."""
    if result.timed_out:
        return "timed out"
    if case.expects_token:
        if result.returncode != 0:
            return f"exit {result.returncode}; stderr: {_first_lines(result.stderr)}"
        if not result.stdout.strip():
            return "exit 0 with empty stdout (uv would take that as an empty password)"
        return None
    if not case.uses_keyring and result.returncode != 0:
        return f"exit {result.returncode}; stderr: {_first_lines(result.stderr)}"
    if result.stdout.strip():
        return f"printed a password for a service it does not own (exit {result.returncode})"
    return None


class Cloud:
    """The emulator, or nothing when menda.testing cannot start one."""

    def __init__(self, secret: str) -> None:
        from menda.testing import MendaCloudEmulator

        self.emulator = MendaCloudEmulator()
        self.emulator.start()
        self.emulator.add_m2m_client(CLIENT_ID, secret)

    @property
    def url(self) -> str:
        return self.emulator.url

    def clear(self) -> None:
        self.emulator.clear_log()

    def counts(self) -> tuple[int, int]:
        return self.emulator.count("token"), self.emulator.count("registry")

    def stop(self) -> None:
        self.emulator.stop()


def measure(case: Case, cloud: Cloud, *, record: bool) -> None:
    prepare(case)
    cloud.clear()
    result = run_once(case.argv, case.env)
    counts = cloud.counts()
    problem = check(case, result)
    if problem is not None:
        case.failures.append(problem)
        return
    if case.uses_keyring and counts != EXPECTED_REQUESTS[case.cache_mode]:
        case.notes.append(
            f"made {counts[0]} token + {counts[1]} registry requests, expected {{}} + {{}}".format(
                *EXPECTED_REQUESTS[case.cache_mode]
            )
        )
    if record:
        case.wall_ns.append(result.wall_ns)
        if result.cpu_ns is not None:
            case.cpu_ns.append(result.cpu_ns)
        if case.uses_keyring:
            case.requests[f"{counts[0]}+{counts[1]}"] += 1


def probe(case: Case, cloud: Cloud) -> None:
    """One untimed run: fills the cache for warm cases and disables a broken case."""
    if case.cache_mode == "warm" and case.cache_dir is not None:
        shutil.rmtree(case.cache_dir, ignore_errors=True)
    if case.cache_mode == "access" and case.cache_dir is not None:
        shutil.rmtree(case.cache_dir, ignore_errors=True)
    prepare(case)
    cloud.clear()
    result = run_once(case.argv, case.env)
    problem = check(case, result)
    if problem is not None:
        case.status = "failed"
        case.reason = problem
        return
    if result.stderr.strip() and case.env_name != "peer":
        case.notes.append(f"stderr not empty: {_first_lines(result.stderr)}")
    elif result.stderr.strip():
        case.notes.append(f"stderr: {_first_lines(result.stderr, 1)}")


# -- import time ---------------------------------------------------------------------------


def _importtime(
    python: Path, args: list[str], env: dict[str, str]
) -> tuple[int, list[ImportEntry]]:
    done = subprocess.run(
        [str(python), "-X", "importtime", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    return done.returncode, parse_importtime(done.stderr)


def _import_figure(
    python: Path,
    args: list[str],
    env: dict[str, str],
    *,
    known: set[str],
    runs: int,
    target_ms: float,
) -> dict[str, Any]:
    totals: list[tuple[int, list[ImportEntry]]] = []
    for _ in range(runs):
        code_ok, entries = _importtime(python, args, env)
        if code_ok != 0:
            return {"status": "failed", "reason": f"exit {code_ok}", "target_ms": target_ms}
        extras = extra_modules(entries, known)
        totals.append((self_time_us(extras), extras))
    totals.sort(key=lambda item: item[0])
    median_us = statistics.median(total for total, _ in totals)
    _, representative = totals[len(totals) // 2]
    median_ms = median_us / 1000
    return {
        "status": "ok",
        "self_ms_median": round(median_ms, 3),
        "self_ms_min": round(totals[0][0] / 1000, 3),
        "self_ms_max": round(totals[-1][0] / 1000, 3),
        "runs": runs,
        "target_ms": target_ms,
        "verdict": "ok" if median_ms <= target_ms else "over",
        "modules": {entry.module: entry.self_us for entry in representative},
    }


def import_figures(
    menda: _envs.Venv, baseline: _envs.Venv, env: dict[str, str], runs: int
) -> dict[str, Any]:
    # The reference is what the `keyring` command itself imports to answer
    # "no" for another URL in the baseline env: installers run that command,
    # so its modules (argparse, json, ...) are already paid for.
    code, entries = _importtime(
        baseline.python, ["-m", "keyring", "get", OTHER_SERVICE, OTHER_USERNAME], env
    )
    if code not in (0, 1):
        return {"status": "failed", "reason": f"keyring get (baseline) exited {code}"}
    known = {entry.module for entry in entries}
    backend = _import_figure(
        menda.python,
        ["-c", "import keyring.backend; import menda.keyring.backend"],
        env,
        known=known,
        runs=runs,
        target_ms=TARGET_BACKEND_IMPORT_MS,
    )
    warm = _import_figure(
        menda.python,
        ["-m", "keyring", "get", CA_SERVICE, CA_USERNAME],
        env,
        known=known,
        runs=runs,
        target_ms=TARGET_WARM_IMPORT_MS,
    )
    if warm["status"] == "ok":
        forbidden = sorted(
            name for name in warm["modules"] if top_level(name) in FORBIDDEN_ON_WARM_PATH
        )
        warm["forbidden_imported"] = forbidden
        warm["forbidden_verdict"] = "ok" if not forbidden else "FAILED"
    return {
        "status": "ok",
        "reference": "modules of `keyring get <other url>` in the baseline env",
        "backend_import": backend,
        "warm_path": warm,
    }


# -- herd ----------------------------------------------------------------------------------


def herd(case: Case, cloud: Cloud, size: int, rounds: int) -> dict[str, Any]:
    results: list[dict[str, Any]] = []
    for _ in range(rounds):
        prepare(case)
        cloud.clear()
        outcome = run_herd(case.argv, case.env, size)
        tokens, registry = cloud.counts()
        failed = [r for r in outcome.results if check(case, r) is not None]
        distinct = len({r.stdout.strip() for r in outcome.results if check(case, r) is None})
        cpu_total = sum(r.cpu_ns or 0 for r in outcome.results) / 1e6
        results.append(
            {
                "wall_ms": round(outcome.wall_ns / 1e6, 3),
                # The herd cannot finish faster than its CPU time spread over every CPU;
                # a wall time far above that means processes sat waiting (for the lock).
                "cpu_ms_total": round(cpu_total, 3),
                "cpu_bound_ms": round(cpu_total / (os.cpu_count() or 1), 3),
                "slowest_process_ms": round(max(r.wall_ns for r in outcome.results) / 1e6, 3),
                "token_requests": tokens,
                "registry_requests": registry,
                "failed_processes": len(failed),
                "first_failure": None if not failed else check(case, failed[0]),
                "distinct_tokens": distinct,
                "verdict": "ok"
                if (tokens, registry, len(failed), distinct) == (1, 1, 0, 1)
                else "FAILED",
            }
        )
    walls = [r["wall_ms"] for r in results]
    return {
        "processes": size,
        "rounds": results,
        "wall_ms_median": round(statistics.median(walls), 3) if walls else None,
        "verdict": "ok" if all(r["verdict"] == "ok" for r in results) else "FAILED",
    }


# -- output --------------------------------------------------------------------------------


def case_report(case: Case, reference: Case) -> dict[str, Any]:
    wall, cpu = summarize(case.wall_ns), summarize(case.cpu_ns)
    ref_wall, ref_cpu = summarize(reference.wall_ns), summarize(reference.cpu_ns)
    wall_ratio, cpu_ratio = ratio(wall, ref_wall), ratio(cpu, ref_cpu)
    return {
        "key": case.key,
        "label": case.label,
        "env": case.env_name,
        "argv": [Path(case.argv[0]).name, *case.argv[1:]] if case.argv else [],
        "cache": case.cache_mode,
        "status": case.status,
        "reason": case.reason,
        "wall": None if wall is None else wall.as_dict(),
        "cpu": None if cpu is None else cpu.as_dict(),
        "ratio_wall": None if wall_ratio is None else round(wall_ratio, 4),
        "ratio_cpu": None if cpu_ratio is None else round(cpu_ratio, 4),
        "target": case.target,
        "verdict": verdict(wall_ratio, cpu_ratio, case.target) if case.active else case.status,
        "requests_per_run": dict(case.requests),
        "failed_runs": len(case.failures),
        "failures": sorted(set(case.failures))[:5],
        "notes": sorted(set(case.notes))[:5],
    }


def table(reports: Sequence[dict[str, Any]]) -> str:
    headers = [
        "case",
        "wall med",
        "wall min-max",
        "CPU med",
        "wall ratio",
        "CPU ratio",
        "target",
        "verdict",
        "requests",
    ]
    rows = []
    for rep in reports:
        wall = rep["wall"]
        cpu_med = rep["cpu"]["median_ms"] if rep["cpu"] else None
        rows.append(
            [
                rep["label"],
                format_ms(None if wall is None else wall["median_ms"]),
                "-" if wall is None else f"{wall['min_ms']:.1f}-{wall['max_ms']:.1f}",
                format_ms(cpu_med),
                format_ratio(rep["ratio_wall"]),
                format_ratio(rep["ratio_cpu"]),
                "-" if rep["target"] is None else f"<= {rep['target']:.2f}",
                rep["verdict"] or "",
                ", ".join(f"{k} x{v}" for k, v in sorted(rep["requests_per_run"].items())) or "-",
            ]
        )
    return format_table(headers, rows)


def machine_info(uv: str, keyring_version: str, peer_version: str | None) -> dict[str, Any]:
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
        "keyrings.codeartifact": peer_version,
        "uv": _envs.uv_version(uv),
        "git_commit": git("rev-parse", "HEAD"),
        "git_dirty": bool(git("status", "--porcelain")),
    }


# -- main ----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=None, help="timed runs per case (default 20)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default 2)")
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
    parser.add_argument("--no-peer", action="store_true", help="skip keyrings.codeartifact")
    parser.add_argument("--seed", type=int, default=None, help="seed of the case order")
    args = parser.parse_args(argv)
    quick = args.quick
    args.runs = args.runs if args.runs is not None else (5 if quick else 20)
    args.herd = args.herd if args.herd is not None else (8 if quick else 32)
    args.herd_rounds = args.herd_rounds if args.herd_rounds is not None else (1 if quick else 3)
    args.import_runs = args.import_runs if args.import_runs is not None else (3 if quick else 11)
    if args.runs < 1 or args.herd < 1 or args.warmup < 0:
        parser.error("--runs and --herd must be at least 1, --warmup at least 0")
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
    peer: _envs.Venv | None = None
    peer_reason: str | None = None
    if args.no_peer:
        peer_reason = "skipped (--no-peer)"
    else:
        try:
            peer = _envs.build_peer(uv, root, python, keyring_version, reuse=args.reuse_envs)
            log(f"  peer: keyring + {_envs.PEER_DIST} ready")
        except _envs.EnvError as exc:
            peer_reason = f"could not install {_envs.PEER_DIST}: {exc}"
            log(f"  peer: unavailable: {peer_reason}")
    return menda, baseline, peer, peer_reason


def make_cases(
    tmp: Path,
    *,
    menda: _envs.Venv,
    baseline: _envs.Venv,
    peer: _envs.Venv | None,
    peer_reason: str | None,
    cloud_url: str,
    secret: str,
) -> list[Case]:
    home = tmp / "home"
    home.mkdir()

    def env(venv: _envs.Venv, name: str) -> tuple[dict[str, str], Path]:
        cache = tmp / "caches" / name
        return child_env(home, venv, cloud_url, secret, cache), cache

    def keyring(venv: _envs.Venv, service: str, username: str) -> list[str]:
        return [str(venv.keyring), "get", service, username]

    cases = []
    floor_env, _ = env(baseline, "floor")
    cases.append(
        Case(
            "floor",
            "python -c pass (floor)",
            "baseline",
            [str(baseline.python), "-c", "pass"],
            floor_env,
            uses_keyring=False,
        )
    )
    base_env, base_cache = env(baseline, "baseline")
    cases.append(
        Case(
            "baseline",
            "baseline: keyring + null plugin, other URL",
            "baseline",
            keyring(baseline, OTHER_SERVICE, OTHER_USERNAME),
            base_env,
            cache_dir=base_cache,
        )
    )
    other_env, other_cache = env(menda, "menda-other")
    cases.append(
        Case(
            "menda_other",
            "menda-keyring, other URL",
            "menda",
            keyring(menda, OTHER_SERVICE, OTHER_USERNAME),
            other_env,
            target=TARGET_OTHER,
            cache_dir=other_cache,
        )
    )
    codeartifact: tuple[tuple[str, str, CacheMode, float | None], ...] = (
        ("menda_warm", "menda-keyring, CodeArtifact, warm cache", "warm", TARGET_WARM),
        ("menda_access", "menda-keyring, CodeArtifact, access token cached", "access", None),
        ("menda_cold", "menda-keyring, CodeArtifact, cold cache", "cold", None),
    )
    for key, label, mode, target in codeartifact:
        case_env, cache = env(menda, key)
        cases.append(
            Case(
                key,
                label,
                "menda",
                keyring(menda, CA_SERVICE, CA_USERNAME),
                case_env,
                target=target,
                cache_mode=mode,
                cache_dir=cache,
                expects_token=True,
            )
        )
    if peer is not None:
        peer_env, peer_cache = env(peer, "peer")
        cases.append(
            Case(
                "peer_other",
                f"peer: {_envs.PEER_DIST}, other URL",
                "peer",
                keyring(peer, OTHER_SERVICE, OTHER_USERNAME),
                peer_env,
                cache_dir=peer_cache,
            )
        )
    else:
        cases.append(
            Case(
                "peer_other",
                f"peer: {_envs.PEER_DIST}, other URL",
                "peer",
                [],
                {},
                status="unavailable",
                reason=peer_reason,
            )
        )
    return cases


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    uv = _envs.find_uv()
    keyring_version = importlib.metadata.version("keyring")
    try:
        menda, baseline, peer, peer_reason = build_envs(args, uv, keyring_version)
    except _envs.EnvError as exc:
        log(f"cannot build the environments: {exc}")
        return 2
    peer_version = None if peer is None else _envs.distribution_version(peer, _envs.PEER_DIST)
    info = machine_info(uv, keyring_version, peer_version)

    secret = secrets.token_urlsafe(24)
    cloud = Cloud(secret)
    try:
        with workdir() as tmp:
            cases = make_cases(
                tmp,
                menda=menda,
                baseline=baseline,
                peer=peer,
                peer_reason=peer_reason,
                cloud_url=cloud.url,
                secret=secret,
            )
            by_key = {case.key: case for case in cases}
            log("probing each case once …")
            for case in cases:
                if case.active:
                    probe(case, cloud)
                    if not case.active:
                        log(f"  {case.key}: FAILED: {case.reason}")
            active = [case for case in cases if case.active]
            rng = random.Random(args.seed)
            total = args.warmup + args.runs
            log(
                f"measuring {len(active)} cases, {args.warmup} warm-up + {args.runs} rounds, "
                "interleaved …"
            )
            for round_index in range(total):
                order = list(active)
                rng.shuffle(order)
                for case in order:
                    measure(case, cloud, record=round_index >= args.warmup)
                if (round_index + 1) % 5 == 0 or round_index + 1 == total:
                    log(f"  round {round_index + 1}/{total}")

            log(f"import times ({args.import_runs} runs each) …")
            warm = by_key["menda_warm"]
            imports = import_figures(menda, baseline, warm.env, args.import_runs)

            cold = by_key["menda_cold"]
            if cold.active:
                log(f"herd: {args.herd} processes x {args.herd_rounds} …")
                herd_env = dict(cold.env)
                herd_cache = tmp / "caches" / "herd"
                herd_env["MENDA_TOKEN_CACHE_DIR"] = str(herd_cache)
                herd_case = Case(
                    "herd",
                    "herd",
                    "menda",
                    cold.argv,
                    herd_env,
                    cache_mode="cold",
                    cache_dir=herd_cache,
                    expects_token=True,
                )
                herd_report = herd(herd_case, cloud, args.herd, args.herd_rounds)
            else:
                herd_report = {"verdict": "not run", "reason": "the cold case failed"}
            herd_report["single_cold_wall_ms_median"] = (
                None
                if summarize(cold.wall_ns) is None
                else round(statistics.median(cold.wall_ns) / 1e6, 3)
            )
    finally:
        cloud.stop()

    reference = by_key["baseline"]
    reports = [case_report(case, reference) for case in cases]
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    info["load_average_at_end"] = None if load is None else [round(x, 2) for x in load]
    result = {
        "machine": info,
        "config": {
            "runs": args.runs,
            "warmup_rounds": args.warmup,
            "herd_processes": args.herd,
            "herd_rounds": args.herd_rounds,
            "import_runs": args.import_runs,
            "seed": args.seed,
            "other_service": [OTHER_SERVICE, OTHER_USERNAME],
            "codeartifact_service": [CA_SERVICE, CA_USERNAME],
        },
        "cases": reports,
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


def print_report(result: dict[str, Any]) -> None:
    info = result["machine"]
    print(
        f"menda-keyring start-up benchmark, {info['date']}: {info['platform']}, "
        f"{info['cpu_count']} CPUs, load {info['load_average_at_start']}, "
        f"Python {info['python']}, keyring {info['keyring']}, {info['uv']}"
    )
    config = result["config"]
    print(
        f"medians of {config['runs']} interleaved runs per case (after "
        f"{config['warmup_rounds']} warm-up rounds); times in ms; ratios against the baseline\n"
    )
    print(table(result["cases"]))
    for rep in result["cases"]:
        if rep["reason"]:
            print(f"  {rep['key']}: {rep['status']}: {rep['reason']}")
        if rep["failed_runs"]:
            print(f"  {rep['key']}: {rep['failed_runs']} runs failed: {'; '.join(rep['failures'])}")
        for note in rep["notes"]:
            print(f"  {rep['key']}: note: {note}")

    imports = result["import_time"]
    print("\nimport self time beyond keyring's own modules (-X importtime, median):")
    if imports["status"] != "ok":
        print(f"  failed: {imports['reason']}")
    else:
        for key, label in (
            ("backend_import", "import menda.keyring.backend"),
            ("warm_path", "warm CodeArtifact get_password"),
        ):
            fig = imports[key]
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
        warm = imports["warm_path"]
        if warm["status"] == "ok":
            forbidden = ", ".join(FORBIDDEN_ON_WARM_PATH)
            found = ", ".join(warm["forbidden_imported"]) or "none"
            print(f"  {forbidden} on the warm path: {found} -> {warm['forbidden_verdict']}")

    herd_report = result["herd"]
    print("\nherd (cold cache, processes started together):")
    if "rounds" not in herd_report:
        print(f"  {herd_report['verdict']}: {herd_report.get('reason')}")
    else:
        single = herd_report["single_cold_wall_ms_median"]
        print(
            f"  {herd_report['processes']} processes: wall {herd_report['wall_ms_median']:.1f} ms "
            f"(median of {len(herd_report['rounds'])}); one cold call: {format_ms(single)} ms"
        )
        for index, herd_round in enumerate(herd_report["rounds"], 1):
            extra = (
                f"; {herd_round['failed_processes']} failed: {herd_round['first_failure']}"
                if herd_round["failed_processes"]
                else ""
            )
            print(
                f"  round {index}: {herd_round['wall_ms']:.1f} ms "
                f"(CPU {herd_round['cpu_ms_total']:.0f} ms in all, so >= "
                f"{herd_round['cpu_bound_ms']:.0f} ms on {os.cpu_count()} CPUs), "
                f"{herd_round['token_requests']} token + {herd_round['registry_requests']} "
                f"registry requests (expected 1 + 1), {herd_round['distinct_tokens']} distinct "
                f"token(s) -> {herd_round['verdict']}{extra}"
            )


if __name__ == "__main__":
    sys.exit(main())
