"""What is measured: the cases, the cache state each one needs, and what a run must show.

A case is one command in one environment and one home. See benchmarks/README.md
for the rows and their targets.
"""

from __future__ import annotations

import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from benchmarks._envs import Venv
from benchmarks._homes import Identities, Source, child_env, make_home, own_cache_dir
from benchmarks._measure import RunResult

__all__ = [
    "CA_SERVICE",
    "CA_USERNAME",
    "EXPECTED_REQUESTS",
    "OTHER_SERVICE",
    "OTHER_USERNAME",
    "REFERENCE_LABEL",
    "TARGET_OTHER",
    "TARGET_WARM",
    "CacheMode",
    "Case",
    "check",
    "codeartifact_case",
    "first_lines",
    "make_cases",
    "prepare",
]

OTHER_SERVICE = "https://pypi.org/simple/"
OTHER_USERNAME = "__token__"
CA_SERVICE = (
    "https://menda-private-058264169513.d.codeartifact.eu-west-1.amazonaws.com"
    "/pypi/menda-plugins/simple/"
)
CA_USERNAME = "aws"

TARGET_OTHER = 1.02
TARGET_WARM = 1.05
REFERENCE_LABEL = "reference menda-keyring 0.0.2"

CacheMode = Literal["none", "warm", "access", "cold"]
Requests = tuple[int, int]  # (token requests, registry requests) in one run
# What one run of menda-keyring must ask menda cloud, per cache state.
EXPECTED_REQUESTS: dict[CacheMode, Requests] = {
    "none": (0, 0),
    "warm": (0, 0),
    "access": (0, 1),
    "cold": (1, 1),
}

# menda-keyring on the CodeArtifact URL: (key, label, identity source, cache state, target).
_MENDA_CODEARTIFACT: tuple[tuple[str, str, Source, CacheMode, float | None], ...] = (
    ("menda_warm_env", "menda-keyring, warm, M2M from the environment", "env", "warm", TARGET_WARM),
    ("menda_warm_profile", "menda-keyring, warm, M2M profile", "profile", "warm", TARGET_WARM),
    ("menda_warm_u2m", "menda-keyring, warm, U2M login in .token", "u2m", "warm", TARGET_WARM),
    ("menda_access", "menda-keyring, M2M env, access token cached", "env", "access", None),
    ("menda_cold", "menda-keyring, M2M env, cold cache", "env", "cold", None),
)
# The reference beside each of our rows: (key, label suffix, source, CodeArtifact?,
# requests per run, the menda case it stands beside). It caches no registry token,
# and no M2M access token either: nothing writes the `.token` sections it looks in.
_REFERENCE: tuple[tuple[str, str, Source, bool, Requests, str], ...] = (
    ("ref_other", "other URL", "env", False, (0, 0), "menda_other"),
    ("ref_env", "M2M from the environment", "env", True, (1, 1), "menda_warm_env"),
    ("ref_profile", "M2M profile", "profile", True, (1, 1), "menda_warm_profile"),
    ("ref_u2m", "U2M login in .token", "u2m", True, (0, 1), "menda_warm_u2m"),
)


@dataclass
class Case:
    key: str
    label: str
    env_name: str
    argv: list[str]
    env: dict[str, str]
    target: float | None = None
    cache_mode: CacheMode = "none"
    home: Path | None = None
    source: Source | None = None
    expected: Requests | None = (0, 0)  # None: not a keyring run, nothing to count
    expects_token: bool = False
    pairs_with: str | None = None  # for a reference case: the menda case it stands beside
    status: Literal["ok", "failed", "unavailable"] = "ok"
    reason: str | None = None
    wall_ns: list[int] = field(default_factory=list)
    cpu_ns: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    disturbed: int = 0  # timed runs discarded: other processes were busy meanwhile
    notes: list[str] = field(default_factory=list)
    requests: Counter[str] = field(default_factory=Counter)

    @property
    def active(self) -> bool:
        return self.status == "ok"

    @property
    def uses_keyring(self) -> bool:
        return self.expected is not None

    @property
    def own_cache(self) -> Path | None:
        return None if self.home is None else own_cache_dir(self.home)


def _keyring(venv: Venv, service: str, username: str) -> list[str]:
    return [str(venv.keyring), "get", service, username]


def _in_home(
    tmp: Path, key: str, venv: Venv, source: Source, ids: Identities
) -> tuple[Path, dict[str, str]]:
    home = tmp / "homes" / key
    return home, child_env(home, venv.keyring.parent, make_home(home, source, ids))


def codeartifact_case(
    tmp: Path,
    key: str,
    label: str,
    *,
    venv: Venv,
    source: Source,
    ids: Identities,
    cache_mode: CacheMode = "none",
    expected: Requests | None = None,
    target: float | None = None,
    pairs_with: str | None = None,
) -> Case:
    """``keyring get <CodeArtifact URL> aws`` (the call uv makes), in a home of its own."""
    home, env = _in_home(tmp, key, venv, source, ids)
    return Case(
        key,
        label,
        venv.name,
        _keyring(venv, CA_SERVICE, CA_USERNAME),
        env,
        target=target,
        cache_mode=cache_mode,
        home=home,
        source=source,
        expected=EXPECTED_REQUESTS[cache_mode] if expected is None else expected,
        expects_token=True,
        pairs_with=pairs_with,
    )


def _other_url_case(
    tmp: Path,
    key: str,
    label: str,
    venv: Venv,
    ids: Identities,
    *,
    target: float | None = None,
    pairs_with: str | None = None,
) -> Case:
    """``keyring get https://pypi.org/simple/ __token__``: a URL no menda backend owns."""
    # An identity is configured, as on any developer's machine; it must not be used.
    home, env = _in_home(tmp, key, venv, "env", ids)
    argv = _keyring(venv, OTHER_SERVICE, OTHER_USERNAME)
    return Case(key, label, venv.name, argv, env, target=target, home=home, pairs_with=pairs_with)


def make_cases(
    tmp: Path,
    *,
    menda: Venv,
    baseline: Venv,
    reference: Venv | None,
    reference_reason: str | None,
    ids: Identities,
) -> list[Case]:
    _, floor_env = _in_home(tmp, "floor", baseline, "env", ids)
    floor_argv = [str(baseline.python), "-c", "pass"]
    cases = [
        Case(
            "floor", "python -c pass (floor)", baseline.name, floor_argv, floor_env, expected=None
        ),
        _other_url_case(
            tmp, "baseline", "baseline: keyring + null plugin, other URL", baseline, ids
        ),
        _other_url_case(
            tmp, "menda_other", "menda-keyring, other URL", menda, ids, target=TARGET_OTHER
        ),
    ]
    for key, label, source, mode, target in _MENDA_CODEARTIFACT:
        cases.append(
            codeartifact_case(
                tmp, key, label, venv=menda, source=source, ids=ids, cache_mode=mode, target=target
            )
        )
    for key, suffix, source, on_codeartifact, expected, pairs_with in _REFERENCE:
        label = f"{REFERENCE_LABEL}, {suffix}"
        if reference is None:
            cases.append(
                Case(key, label, "reference", [], {}, status="unavailable", reason=reference_reason)
            )
        elif on_codeartifact:
            cases.append(
                codeartifact_case(
                    tmp,
                    key,
                    label,
                    venv=reference,
                    source=source,
                    ids=ids,
                    expected=expected,
                    pairs_with=pairs_with,
                )
            )
        else:
            cases.append(_other_url_case(tmp, key, label, reference, ids, pairs_with=pairs_with))
    return cases


def prepare(case: Case) -> None:
    """Put our cache in the state the case measures (outside the timed region).

    Only menda-keyring's own directory is touched; the CLI's ``.token`` stays.
    """
    cache = case.own_cache
    if cache is None:
        return
    if case.cache_mode == "cold":
        shutil.rmtree(cache, ignore_errors=True)
    elif case.cache_mode == "access" and cache.is_dir():
        for path in cache.glob("registry-*.json"):
            path.unlink()


def first_lines(data: bytes, count: int = 3) -> str:
    lines = data.decode("utf-8", "replace").strip().splitlines()
    text = " | ".join(line.strip() for line in lines[:count])
    return text + (" | …" if len(lines) > count else "") if text else "(nothing)"


def check(case: Case, result: RunResult) -> str | None:
    """Why this run does not count, or None when it does."""
    if result.timed_out:
        return "timed out"
    if case.expects_token:
        if result.returncode != 0:
            return f"exit {result.returncode}; stderr: {first_lines(result.stderr)}"
        if not result.stdout.strip():
            return "exit 0 with empty stdout (uv would take that as an empty password)"
        return None
    if not case.uses_keyring and result.returncode != 0:
        return f"exit {result.returncode}; stderr: {first_lines(result.stderr)}"
    if result.stdout.strip():
        return f"printed a password for a service it does not own (exit {result.returncode})"
    return None
