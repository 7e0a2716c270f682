"""The cheap parts of benchmarks/: no environments are built and nothing is timed."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # benchmarks/ is a script folder, not an installed package
    sys.path.insert(0, str(REPO))

from benchmarks._importtime import (  # noqa: E402
    ImportEntry,
    extra_modules,
    parse_importtime,
    self_time_us,
    top_level,
)
from benchmarks._measure import run_herd, run_once  # noqa: E402
from benchmarks._nullwheel import (  # noqa: E402
    ENTRY_POINT_NAME,
    MODULE_NAME,
    build_null_backend_wheel,
)
from benchmarks._report import (  # noqa: E402
    Stats,
    format_table,
    ratio,
    summarize,
    verdict,
)

from benchmarks import run  # noqa: E402

# -- the baseline plugin wheel -------------------------------------------------------------


def test_null_wheel_record_lists_every_file_with_its_hash(tmp_path: Path) -> None:
    wheel = build_null_backend_wheel(tmp_path)
    assert wheel.name == f"{MODULE_NAME}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        record_name = next(name for name in names if name.endswith(".dist-info/RECORD"))
        rows = archive.read(record_name).decode().splitlines()
        listed = {}
        for row in rows:
            path, digest, size = row.rsplit(",", 2)
            listed[path] = (digest, size)
        assert set(listed) == names
        assert listed[record_name] == ("", "")
        for name in names - {record_name}:
            data = archive.read(name)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            assert listed[name] == ("sha256=" + expected.decode(), str(len(data)))
        entry_points = next(name for name in names if name.endswith("entry_points.txt"))
        assert archive.read(entry_points).decode() == (
            f"[keyring.backends]\n{ENTRY_POINT_NAME} = {MODULE_NAME}\n"
        )
        assert not any(name.endswith("__init__.py") for name in names)


def test_null_wheel_is_reproducible(tmp_path: Path) -> None:
    first = build_null_backend_wheel(tmp_path / "a").read_bytes()
    second = build_null_backend_wheel(tmp_path / "b").read_bytes()
    assert first == second


def test_null_backend_answers_none_with_priority_9_through_its_entry_point(
    tmp_path: Path,
) -> None:
    # In a child process: keyring registers every backend subclass globally, and this
    # one, at priority 9, would take over keyring in the test process.
    wheel = build_null_backend_wheel(tmp_path)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from importlib.metadata import entry_points\n"
        "(ep,) = [e for e in entry_points(group='keyring.backends') if e.name == sys.argv[2]]\n"
        "module = ep.load()\n"
        "backend = module.NullKeyring()\n"
        "assert module.NullKeyring.priority == 9\n"
        "assert backend.get_password('https://pypi.org/simple/', 'u') is None\n"
        "print(ep.value)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(wheel), ENTRY_POINT_NAME],
        capture_output=True,
        text=True,
        check=False,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == MODULE_NAME


# -- -X importtime -------------------------------------------------------------------------

IMPORTTIME = """\
import time: self [us] | cumulative | imported package
import time:       120 |        120 |   _json
import time:       300 |        420 | json
import time:        50 |         50 |     menda.keyring._service
import time:       200 |        250 |   menda.keyring.backend
some warning from the program
import time: garbage | 1 | x
"""


def test_importtime_parser_keeps_module_lines_and_skips_the_rest() -> None:
    assert parse_importtime(IMPORTTIME) == [
        ImportEntry("_json", 120, 120),
        ImportEntry("json", 300, 420),
        ImportEntry("menda.keyring._service", 50, 50),
        ImportEntry("menda.keyring.backend", 200, 250),
    ]


def test_only_modules_keyring_did_not_import_count_against_us() -> None:
    entries = parse_importtime(IMPORTTIME)
    extra = extra_modules(entries, known={"_json", "json"})
    assert [entry.module for entry in extra] == ["menda.keyring._service", "menda.keyring.backend"]
    assert self_time_us(extra) == 250
    assert top_level("urllib3.util.retry") == "urllib3"


# -- statistics, verdicts, table ------------------------------------------------------------


def test_summary_is_median_min_max_in_milliseconds() -> None:
    stats = summarize([3_000_000, 1_000_000, 2_000_000, 10_000_000])
    assert stats == Stats(median_ms=2.5, min_ms=1.0, max_ms=10.0, n=4)
    assert summarize([]) is None


def test_ratio_is_median_over_reference_median() -> None:
    reference = Stats(100.0, 90.0, 120.0, 20)
    assert ratio(Stats(103.0, 100.0, 110.0, 20), reference) == pytest.approx(1.03)
    assert ratio(None, reference) is None
    assert ratio(reference, None) is None


@pytest.mark.parametrize(
    ("wall", "cpu", "target", "expected"),
    [
        (1.01, 1.00, 1.02, "ok"),
        (1.02, 1.02, 1.02, "ok"),
        (1.03, 1.01, 1.02, "over (wall)"),
        (1.00, 1.05, 1.02, "over (cpu)"),
        (1.10, 1.10, 1.05, "over (wall, cpu)"),
        (1.01, None, 1.02, "ok"),
        (None, None, 1.02, "n/a"),
        (5.0, 5.0, None, ""),
    ],
)
def test_verdict_names_the_measure_over_target(
    wall: float | None, cpu: float | None, target: float | None, expected: str
) -> None:
    assert verdict(wall, cpu, target) == expected


def test_table_aligns_columns_and_rejects_ragged_rows() -> None:
    text = format_table(["case", "ms"], [["a", "1.0"], ["longer name", "123.4"]])
    lines = text.splitlines()
    assert lines[0] == "case            ms"
    assert lines[1] == "-----------  -----"
    assert lines[2] == "a              1.0"
    assert lines[3] == "longer name  123.4"
    with pytest.raises(ValueError, match="cells"):
        format_table(["a", "b"], [["only one"]])


def _case(key: str, walls: list[int], cpus: list[int], target: float | None = None) -> run.Case:
    case = run.Case(key, key, "menda", ["/venv/bin/keyring", "get", "x", "y"], {}, target=target)
    case.wall_ns.extend(walls)
    case.cpu_ns.extend(cpus)
    return case


def test_case_report_gives_ratios_against_the_baseline_and_the_table_shows_them() -> None:
    baseline = _case("baseline", [100_000_000] * 3, [90_000_000] * 3)
    ours = _case("menda_other", [101_000_000] * 3, [95_000_000] * 3, target=1.02)
    ours.requests["0+0"] += 3
    report = run.case_report(ours, baseline)
    assert report["ratio_wall"] == pytest.approx(1.01)
    assert report["ratio_cpu"] == pytest.approx(95 / 90, abs=1e-4)
    assert report["verdict"] == "over (cpu)"
    assert report["argv"] == ["keyring", "get", "x", "y"]
    text = run.table([run.case_report(baseline, baseline), report])
    assert "1.010" in text
    assert "over (cpu)" in text
    assert "0+0 x3" in text


def test_an_unavailable_case_is_reported_not_measured() -> None:
    baseline = _case("baseline", [100_000_000], [90_000_000])
    peer = run.Case("peer_other", "peer", "peer", [], {}, status="unavailable", reason="no PyPI")
    report = run.case_report(peer, baseline)
    assert (report["verdict"], report["reason"], report["wall"]) == ("unavailable", "no PyPI", None)
    assert "unavailable" in run.table([report])


# -- cache states and run checks -------------------------------------------------------------


def test_access_only_state_deletes_registry_tokens_and_keeps_the_access_token(
    tmp_path: Path,
) -> None:
    (tmp_path / "menda-bench.token").write_text("{}")
    (tmp_path / "registry-0123abcd.token").write_text("{}")
    (tmp_path / "registry-0123abcd.token.lock").write_text("")
    case = run.Case("a", "a", "menda", [], {}, cache_mode="access", cache_dir=tmp_path)
    run.prepare(case)
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "menda-bench.token",
        "registry-0123abcd.token.lock",
    ]
    case.cache_mode = "cold"
    run.prepare(case)
    assert not tmp_path.exists()


def test_codeartifact_run_without_a_password_is_a_failure_not_a_timing() -> None:
    case = run.Case("c", "c", "menda", [], {}, expects_token=True)
    ok = run_once([sys.executable, "-c", "print('t0ken')"], {"PATH": "/usr/bin:/bin"})
    empty = run_once([sys.executable, "-c", "pass"], {"PATH": "/usr/bin:/bin"})
    failed = run_once(
        [sys.executable, "-c", "import sys; sys.stderr.write('no login\\n'); sys.exit(1)"],
        {"PATH": "/usr/bin:/bin"},
    )
    assert run.check(case, ok) is None
    assert "empty stdout" in (run.check(case, empty) or "")
    assert run.check(case, failed) == "exit 1; stderr: no login"


# -- measuring children ------------------------------------------------------------------------


@pytest.mark.posix
@pytest.mark.skipif(sys.platform == "win32", reason="CPU time of a child needs os.wait4")
def test_run_once_reports_exit_status_output_and_child_cpu_time() -> None:
    result = run_once(
        [sys.executable, "-c", "import sys; print('out'); sys.exit(3)"], {"PATH": "/usr/bin:/bin"}
    )
    assert result.returncode == 3
    assert result.stdout.strip() == b"out"
    assert result.cpu_ns is not None
    assert result.cpu_ns > 0
    assert result.wall_ns > 0
    assert not result.timed_out


def test_run_once_kills_a_child_past_its_timeout() -> None:
    result = run_once(
        [sys.executable, "-c", "import time; time.sleep(60)"],
        {"PATH": "/usr/bin:/bin"},
        timeout=0.3,
    )
    assert result.timed_out
    assert result.returncode != 0


def test_herd_waits_for_every_child() -> None:
    outcome = run_herd([sys.executable, "-c", "print('hi')"], {"PATH": "/usr/bin:/bin"}, 3)
    assert [r.stdout.strip() for r in outcome.results] == [b"hi"] * 3
    assert outcome.wall_ns >= max(r.wall_ns for r in outcome.results)
