"""Import-time figures: ``python -X importtime`` parsed, and self time beyond keyring's own.

Installers run the ``keyring`` command, so what it imports is keyring's cost,
not ours: a figure sums the self time of every module that the baseline's own
``keyring get <other URL>`` does not import.
"""

from __future__ import annotations

import statistics
import subprocess
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "FORBIDDEN_ON_WARM_PATH",
    "TARGET_BACKEND_IMPORT_MS",
    "TARGET_WARM_IMPORT_MS",
    "ImportEntry",
    "extra_modules",
    "forbidden_imported",
    "import_figure",
    "import_figures",
    "parse_importtime",
    "self_time_us",
    "top_level",
]

TARGET_BACKEND_IMPORT_MS = 3.0
TARGET_WARM_IMPORT_MS = 5.0
FORBIDDEN_ON_WARM_PATH = ("requests", "urllib3", "filelock")

_PREFIX = "import time:"


@dataclass(frozen=True)
class ImportEntry:
    """One line of ``-X importtime``: a module imported for the first time."""

    module: str
    self_us: int
    cumulative_us: int


def parse_importtime(stderr: str) -> list[ImportEntry]:
    """The entries of ``-X importtime`` output, in the order Python printed them.

    Lines that are not import-time lines (warnings, a traceback) and the
    header line are skipped.
    """
    entries: list[ImportEntry] = []
    for line in stderr.splitlines():
        if not line.startswith(_PREFIX):
            continue
        fields = line[len(_PREFIX) :].split("|")
        if len(fields) != 3:
            continue
        self_text, cumulative_text, name = fields
        try:
            self_us = int(self_text.strip())
            cumulative_us = int(cumulative_text.strip())
        except ValueError:  # the header: "self [us] | cumulative | imported package"
            continue
        entries.append(ImportEntry(name.strip(), self_us, cumulative_us))
    return entries


def extra_modules(entries: Iterable[ImportEntry], known: Collection[str]) -> list[ImportEntry]:
    """The entries whose module is not in ``known`` (what keyring itself imports)."""
    return [entry for entry in entries if entry.module not in known]


def self_time_us(entries: Iterable[ImportEntry]) -> int:
    return sum(entry.self_us for entry in entries)


def top_level(module: str) -> str:
    return module.split(".", 1)[0]


# -- the figures ---------------------------------------------------------------------------


def _importtime(
    python: Path, args: Sequence[str], env: Mapping[str, str]
) -> tuple[int, list[ImportEntry]]:
    done = subprocess.run(
        [str(python), "-X", "importtime", *args],
        env=dict(env),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    return done.returncode, parse_importtime(done.stderr)


def import_figure(
    python: Path,
    args: Sequence[str],
    env: Mapping[str, str],
    *,
    known: Collection[str],
    runs: int,
    target_ms: float,
) -> dict[str, Any]:
    """Median self time of the modules beyond ``known`` over ``runs`` runs, and which they are."""
    totals: list[tuple[int, list[ImportEntry]]] = []
    for _ in range(runs):
        code, entries = _importtime(python, args, env)
        if code != 0:
            return {"status": "failed", "reason": f"exit {code}", "target_ms": target_ms}
        extras = extra_modules(entries, known)
        totals.append((self_time_us(extras), extras))
    totals.sort(key=lambda item: item[0])
    median_ms = statistics.median(total for total, _ in totals) / 1000
    _, representative = totals[len(totals) // 2]
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


def forbidden_imported(modules: Iterable[str]) -> list[str]:
    """The modules whose package must stay off the warm path (HTTP and locking)."""
    return sorted(name for name in modules if top_level(name) in FORBIDDEN_ON_WARM_PATH)


def import_figures(
    *,
    menda_python: Path,
    baseline_python: Path,
    baseline_env: Mapping[str, str],
    warm_envs: Mapping[str, Mapping[str, str]],
    service: tuple[str, str],
    other: tuple[str, str],
    runs: int,
) -> dict[str, Any]:
    """``import menda.keyring.backend``, and a warm ``keyring get`` per identity source.

    ``warm_envs`` maps each identity source to the environment of its warm case,
    whose cache holds a valid registry token.
    """
    # The reference is what the `keyring` command itself imports to answer
    # "no" for another URL in the baseline env: installers run that command,
    # so its modules (argparse, json, ...) are already paid for.
    code, entries = _importtime(baseline_python, ["-m", "keyring", "get", *other], baseline_env)
    if code not in (0, 1):
        return {"status": "failed", "reason": f"keyring get (baseline) exited {code}"}
    known = {entry.module for entry in entries}
    backend = import_figure(
        menda_python,
        ["-c", "import keyring.backend; import menda.keyring.backend"],
        baseline_env,
        known=known,
        runs=runs,
        target_ms=TARGET_BACKEND_IMPORT_MS,
    )
    warm: dict[str, dict[str, Any]] = {}
    for source, env in warm_envs.items():
        figure = import_figure(
            menda_python,
            ["-m", "keyring", "get", *service],
            env,
            known=known,
            runs=runs,
            target_ms=TARGET_WARM_IMPORT_MS,
        )
        if figure["status"] == "ok":
            figure["forbidden_imported"] = forbidden_imported(figure["modules"])
            figure["forbidden_verdict"] = "FAILED" if figure["forbidden_imported"] else "ok"
        warm[source] = figure
    return {
        "status": "ok",
        "reference": "modules of `keyring get <other url>` in the baseline env",
        "backend_import": backend,
        "warm_path": warm,
    }
