"""The cases of benchmarks/run.py: who each one is, what its home holds, what a run must
show, and how the report lays them side by side. Structure only: nothing is timed."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from benchmarks._cases import (
    CA_SERVICE,
    OTHER_SERVICE,
    TARGET_OTHER,
    TARGET_WARM,
    Case,
    check,
    make_cases,
    prepare,
)
from benchmarks._envs import Venv
from benchmarks._herd import herd
from benchmarks._homes import PROFILE, SOURCES, Identities, cache_dir, own_cache_dir
from benchmarks._measure import RunResult, run_once
from benchmarks._report import case_report, side_by_side, table
from benchmarks._timing import measure, run_rounds

from benchmarks import _timing as timing
from benchmarks import run
from menda.core_auth import resolve_identity
from menda.testing import CLI_TOKEN_KEYS, read_cli_token_file

MENDA_KEYS = [
    "floor",
    "baseline",
    "menda_other",
    "menda_warm_env",
    "menda_warm_profile",
    "menda_warm_u2m",
    "menda_access",
    "menda_cold",
]
REFERENCE_KEYS = ["ref_other", "ref_env", "ref_profile", "ref_u2m"]
PATH = {"PATH": "/usr/bin:/bin"}


def _cases(
    tmp_path: Path, venvs: dict[str, Venv], ids: Identities, *, reference: bool = True
) -> list[Case]:
    return make_cases(
        tmp_path / "work",
        menda=venvs["menda"],
        baseline=venvs["baseline"],
        reference=venvs["ref"] if reference else None,
        reference_reason=None if reference else "skipped (--no-peer)",
        ids=ids,
    )


@pytest.fixture
def cases(tmp_path: Path, venvs: dict[str, Venv], ids: Identities) -> dict[str, Case]:
    return {case.key: case for case in _cases(tmp_path, venvs, ids)}


# -- the cases -------------------------------------------------------------------------------


def test_every_identity_source_is_measured_warm_with_a_target_and_the_reference_beside_it(
    cases: dict[str, Case],
) -> None:
    assert list(cases) == MENDA_KEYS + REFERENCE_KEYS
    for source in SOURCES:
        ours = cases[f"menda_warm_{source}"]
        assert (ours.source, ours.cache_mode, ours.target) == (source, "warm", TARGET_WARM)
        peer = cases[f"ref_{source}"]
        assert (peer.source, peer.pairs_with, peer.target) == (source, ours.key, None)
        assert ours.argv[1:] == peer.argv[1:] == ["get", CA_SERVICE, "aws"]
    assert cases["menda_other"].target == TARGET_OTHER
    assert cases["ref_other"].pairs_with == "menda_other"
    assert cases["ref_other"].argv[1:] == ["get", OTHER_SERVICE, "__token__"]
    assert {cases[k].source for k in ("menda_access", "menda_cold")} == {"env"}


def test_each_case_runs_its_own_environment_in_a_home_of_its_own(
    cases: dict[str, Case], venvs: dict[str, Venv]
) -> None:
    env_of = {"menda": "menda", "baseline": "baseline", "ref": "ref"}
    for case in cases.values():
        venv = venvs[env_of[case.env_name]]
        assert Path(case.argv[0]).parent == venv.keyring.parent
    homes = [case.env["HOME"] for case in cases.values()]
    assert len(set(homes)) == len(homes)
    # Files in their default places: the reference reads nothing else.
    assert not any(
        "MENDA_TOKEN_CACHE_DIR" in c.env or "MENDA_CONFIG_FILE" in c.env for c in cases.values()
    )


@pytest.mark.parametrize(
    ("key", "requests"),
    [
        ("menda_other", (0, 0)),
        ("menda_warm_env", (0, 0)),
        ("menda_warm_profile", (0, 0)),
        ("menda_warm_u2m", (0, 0)),
        ("menda_access", (0, 1)),
        ("menda_cold", (1, 1)),
        # The reference caches no registry token, and no M2M token either.
        ("ref_other", (0, 0)),
        ("ref_env", (1, 1)),
        ("ref_profile", (1, 1)),
        ("ref_u2m", (0, 1)),
    ],
)
def test_each_case_says_how_many_token_and_registry_requests_a_run_makes(
    cases: dict[str, Case], key: str, requests: tuple[int, int]
) -> None:
    assert cases[key].expected == requests
    assert cases[key].expects_token == (cases[key].argv[2] == CA_SERVICE)


def test_the_floor_is_not_a_keyring_run(cases: dict[str, Case]) -> None:
    floor = cases["floor"]
    assert floor.argv[1:] == ["-c", "pass"]
    assert not floor.uses_keyring


def test_without_the_reference_its_cases_are_reported_unavailable(
    tmp_path: Path, venvs: dict[str, Venv], ids: Identities
) -> None:
    cases = _cases(tmp_path, venvs, ids, reference=False)
    peers = [case for case in cases if case.key.startswith("ref_")]
    assert [case.key for case in peers] == REFERENCE_KEYS
    assert {(case.status, case.reason) for case in peers} == {
        ("unavailable", "skipped (--no-peer)")
    }


# -- the homes -------------------------------------------------------------------------------


def test_env_home_has_the_trio_and_no_config_file(cases: dict[str, Case], ids: Identities) -> None:
    case = cases["menda_warm_env"]
    assert (case.env["MENDA_HOST"], case.env["MENDA_CLIENT_ID"]) == (ids.host, ids.env_client[0])
    assert case.env["MENDA_CLIENT_SECRET"] == ids.env_client[1]
    assert case.home is not None
    assert not (case.home / ".menda").exists()


def test_profile_home_has_an_m2m_profile_chosen_by_menda_profile_id(
    cases: dict[str, Case], ids: Identities
) -> None:
    case = cases["menda_warm_profile"]
    assert case.env["MENDA_PROFILE_ID"] == PROFILE
    assert not {"MENDA_HOST", "MENDA_CLIENT_ID"} & set(case.env)
    assert case.home is not None
    config = (case.home / ".menda" / "mendacfg").read_text()
    assert f"[{PROFILE}]" in config
    assert "auth_type = m2m" in config
    assert f"client_id = {ids.profile_client[0]}" in config


def test_u2m_home_has_the_login_in_the_cli_token_file(
    cases: dict[str, Case], ids: Identities
) -> None:
    case = cases["menda_warm_u2m"]
    assert not any(name.startswith("MENDA_") for name in case.env)
    assert case.home is not None
    sections = read_cli_token_file(cache_dir(case.home) / ".token")
    assert list(sections) == ["default"]
    assert list(sections["default"]) == list(CLI_TOKEN_KEYS)
    assert sections["default"]["access_token"] == ids.login["access_token"]
    assert "auth_type = u2m" in (case.home / ".menda" / "mendacfg").read_text()


@pytest.mark.parametrize(
    ("key", "source", "cache_key"),
    [
        ("menda_warm_env", "env", "m2m-env:bench-env"),
        ("menda_warm_profile", f"profile:{PROFILE}", f"m2m-profile:{PROFILE}"),
        ("menda_warm_u2m", "profile:default", "u2m-profile:default"),
    ],
)
def test_our_resolution_sees_the_identity_source_each_home_is_for(
    cases: dict[str, Case],
    monkeypatch: pytest.MonkeyPatch,
    key: str,
    source: str,
    cache_key: str,
) -> None:
    case = cases[key]
    monkeypatch.setenv("HOME", case.env["HOME"])
    monkeypatch.setenv("USERPROFILE", case.env["HOME"])
    identity = resolve_identity(case.env)
    assert (identity.source, identity.cache_key) == (source, cache_key)


# -- cache states and run checks -------------------------------------------------------------


def _fill(home: Path) -> Path:
    own = own_cache_dir(home)
    own.mkdir(parents=True)
    for name in ("m2m-env%3Abench-env.json", "registry-0123abcd.json", "registry-0123abcd.lock"):
        (own / name).write_text("{}")
    (cache_dir(home) / ".token").write_text("[default]\n")
    return own


def test_access_state_deletes_registry_tokens_and_cold_our_whole_directory_never_token(
    tmp_path: Path,
) -> None:
    own = _fill(tmp_path)
    case = Case("a", "a", "menda", [], {}, cache_mode="access", home=tmp_path)
    prepare(case)
    assert sorted(path.name for path in own.iterdir()) == [
        "m2m-env%3Abench-env.json",
        "registry-0123abcd.lock",
    ]
    case.cache_mode = "cold"
    prepare(case)
    assert not own.exists()
    assert (cache_dir(tmp_path) / ".token").exists()


@pytest.mark.parametrize("mode", ["none", "warm"])
def test_warm_and_stateless_cases_leave_the_cache_alone(tmp_path: Path, mode: Any) -> None:
    own = _fill(tmp_path)
    prepare(Case("w", "w", "menda", [], {}, cache_mode=mode, home=tmp_path))
    assert len(list(own.iterdir())) == 3


def test_codeartifact_run_without_a_password_is_a_failure_not_a_timing() -> None:
    case = Case("c", "c", "menda", [], {}, expects_token=True)
    ok = run_once([sys.executable, "-c", "print('t0ken')"], PATH)
    empty = run_once([sys.executable, "-c", "pass"], PATH)
    failed = run_once(
        [sys.executable, "-c", "import sys; sys.stderr.write('no login\\n'); sys.exit(1)"], PATH
    )
    assert check(case, ok) is None
    assert "empty stdout" in (check(case, empty) or "")
    assert check(case, failed) == "exit 1; stderr: no login"
    other = Case("o", "o", "menda", [], {})
    assert "does not own" in (check(other, ok) or "")


# -- timing and the herd, against a stand-in for the emulator -------------------------------


class FakeCloud:
    """Answers the request counts a test decides; the cases never talk to it."""

    def __init__(self, counts: tuple[int, int]) -> None:
        self.answer = counts
        self.cleared = 0

    def clear(self) -> None:
        self.cleared += 1

    def counts(self) -> tuple[int, int]:
        return self.answer


@pytest.fixture
def undisturbed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Count every real run: other sessions may keep this machine busy while tests run."""
    monkeypatch.setattr(timing, "DISTURBED_NS", 10**15)


def _printer(key: str, expected: tuple[int, int] | None = (0, 1)) -> Case:
    argv = [sys.executable, "-c", "print('t0ken')"]
    return Case(key, key, "menda", argv, PATH, expected=expected, expects_token=True)


@pytest.mark.usefixtures("undisturbed")
def test_a_run_records_its_time_and_requests_and_notes_unexpected_requests() -> None:
    case = _printer("c")
    measure(case, FakeCloud((1, 1)), record=True)
    assert len(case.wall_ns) == 1
    assert dict(case.requests) == {"1+1": 1}
    assert case.notes == ["made 1 token + 1 registry requests, expected 0 + 1"]
    measure(case, FakeCloud((0, 1)), record=False)
    assert len(case.wall_ns) == 1


@pytest.mark.usefixtures("undisturbed")
def test_rounds_probe_first_then_run_every_active_case_interleaved() -> None:
    good, broken = _printer("good"), _printer("broken")
    broken.argv = [sys.executable, "-c", "raise SystemExit(2)"]
    messages: list[str] = []
    cloud = FakeCloud((0, 1))
    run_rounds(
        [good, broken],
        cloud,
        runs=3,
        warmup=1,
        extra_rounds=2,
        seed=7,
        progress=messages.append,
    )
    assert (good.status, len(good.wall_ns), dict(good.requests)) == ("ok", 3, {"0+1": 3})
    assert broken.status == "failed"
    assert broken.reason is not None
    assert broken.reason.startswith("exit 2")
    assert not broken.wall_ns
    assert any("broken: FAILED" in message for message in messages)


def _disturbed_every(nth: int) -> Any:
    """A stand-in for run_once: every ``nth`` run, other processes used 60 ms of CPU."""
    calls = [0]

    def fake(argv: list[str], env: dict[str, str]) -> RunResult:
        calls[0] += 1
        others = 60_000_000 if calls[0] % nth == 0 else 1_000_000
        return RunResult(100_000_000, 90_000_000, 0, b"t0ken\n", b"", False, others)

    return fake


def test_a_disturbed_run_is_discarded_not_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timing, "run_once", _disturbed_every(2))
    case = _printer("c")
    measure(case, FakeCloud((0, 1)), record=True)
    measure(case, FakeCloud((0, 1)), record=True)
    assert (len(case.wall_ns), case.disturbed, dict(case.requests)) == (1, 1, {"0+1": 1})
    assert timing.DISTURBED_NS < 60_000_000


def test_extra_rounds_replace_disturbed_runs_up_to_their_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(timing, "run_once", _disturbed_every(3))
    case = _printer("c")
    messages: list[str] = []
    cloud = FakeCloud((0, 1))
    run_rounds([case], cloud, runs=4, warmup=0, extra_rounds=5, seed=1, progress=messages.append)
    # probe, then runs 2..5 (one disturbed: 3), then extra rounds until 4 are counted.
    assert (len(case.wall_ns), case.disturbed) == (4, 2)
    assert any("disturbed runs discarded" in message for message in messages)
    capped = _printer("capped")
    monkeypatch.setattr(timing, "run_once", _disturbed_every(1))
    run_rounds([capped], cloud, runs=3, warmup=0, extra_rounds=2, seed=1, progress=messages.append)
    assert (len(capped.wall_ns), capped.disturbed) == (0, 5)


def test_herd_passes_with_one_token_and_one_registry_request_and_one_answer() -> None:
    case = _printer("herd", expected=(1, 1))
    report = herd(case, FakeCloud((1, 1)), 3, 2)
    assert report["verdict"] == "ok"
    assert [r["distinct_tokens"] for r in report["rounds"]] == [1, 1]
    assert herd(case, FakeCloud((2, 1)), 2, 1)["verdict"] == "FAILED"


# -- the report ------------------------------------------------------------------------------


def _timed(key: str, walls: list[int], cpus: list[int], **options: Any) -> Case:
    case = Case(key, key, "menda", ["/venv/bin/keyring", "get", "x", "y"], {}, **options)
    case.wall_ns.extend(walls)
    case.cpu_ns.extend(cpus)
    return case


def test_case_report_gives_ratios_against_the_baseline_and_the_table_shows_them() -> None:
    baseline = _timed("baseline", [100_000_000] * 3, [90_000_000] * 3)
    ours = _timed("menda_other", [101_000_000] * 3, [95_000_000] * 3, target=1.02)
    ours.requests["0+0"] += 3
    report = case_report(ours, baseline)
    assert report["ratio_wall"] == pytest.approx(1.01)
    assert report["ratio_cpu"] == pytest.approx(95 / 90, abs=1e-4)
    assert report["verdict"] == "over (cpu)"
    assert report["argv"] == ["keyring", "get", "x", "y"]
    assert report["expected_requests"] == "0+0"
    text = table([case_report(baseline, baseline), report])
    assert "1.010" in text
    assert "over (cpu)" in text
    assert "0+0 x3" in text
    assert "3 (0)" in text


def test_an_unavailable_case_is_reported_not_measured() -> None:
    baseline = _timed("baseline", [100_000_000], [90_000_000])
    peer = Case("ref_env", "peer", "ref", [], {}, status="unavailable", reason="no PyPI")
    report = case_report(peer, baseline)
    assert (report["verdict"], report["reason"], report["wall"]) == ("unavailable", "no PyPI", None)
    assert "unavailable" in table([report])


def test_side_by_side_puts_each_reference_case_on_the_row_of_ours() -> None:
    baseline = _timed("baseline", [100_000_000], [90_000_000])
    ours = _timed("menda_warm_u2m", [102_000_000], [90_000_000], target=1.05)
    peer = _timed("ref_u2m", [150_000_000], [120_000_000], pairs_with="menda_warm_u2m")
    peer.label = "reference menda-keyring 0.0.2, U2M login in .token"
    peer.requests["0+1"] += 1
    reports: list[Mapping[str, Any]] = [case_report(c, baseline) for c in (baseline, ours, peer)]
    lines = side_by_side(reports).splitlines()
    assert len(lines) == 3  # header, rule, one pair
    assert lines[2].split()[:4] == ["U2M", "login", "in", ".token"]
    assert lines[2].split()[4:] == ["102.0", "1.020", "-", "150.0", "1.500", "0+1", "x1"]


def test_quick_runs_fewer_rounds_and_a_smaller_herd() -> None:
    quick = run.parse_args(["--quick"])
    assert (quick.runs, quick.herd, quick.herd_rounds, quick.import_runs) == (5, 8, 1, 3)
    assert quick.extra_rounds == 2
    full = run.parse_args([])
    assert (full.runs, full.herd, full.herd_rounds, full.import_runs) == (20, 32, 3, 11)
    assert full.extra_rounds == 10
    with pytest.raises(SystemExit):
        run.parse_args(["--runs", "0"])
