"""The parts of benchmarks/ below the cases: the null plugin, -X importtime, statistics,
measuring a child. No environment is built and no timing is asserted."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from benchmarks._importtime import (
    ImportEntry,
    extra_modules,
    forbidden_imported,
    import_figure,
    parse_importtime,
    self_time_us,
    top_level,
)
from benchmarks._measure import machine_busy_ns, run_herd, run_once
from benchmarks._nullwheel import ENTRY_POINT_NAME, MODULE_NAME, build_null_backend_wheel
from benchmarks._report import format_table
from benchmarks._stats import Stats, ratio, ratio_interval, summarize, verdict

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


def test_http_and_locking_packages_are_flagged_on_the_warm_path() -> None:
    modules = ["requests.adapters", "urllib3", "filelock._api", "menda.core_auth._cache", "json"]
    assert forbidden_imported(modules) == ["filelock._api", "requests.adapters", "urllib3"]


def test_import_figure_counts_only_modules_beyond_the_known_ones(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    figure = import_figure(
        Path(sys.executable),
        ["-c", "import colorsys"],
        env,
        known=set(),
        runs=2,
        target_ms=1000.0,
    )
    assert figure["status"] == "ok"
    assert "colorsys" in figure["modules"]
    assert figure["runs"] == 2
    assert figure["self_ms_min"] <= figure["self_ms_median"] <= figure["self_ms_max"]
    failed = import_figure(
        Path(sys.executable), ["-c", "raise SystemExit(3)"], env, known=set(), runs=2, target_ms=1
    )
    assert failed == {"status": "failed", "reason": "exit 3", "target_ms": 1}


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


def test_ratio_interval_brackets_the_ratio_and_narrows_without_noise() -> None:
    reference = [100, 104, 98, 101, 99, 103, 97, 102]
    noisy = [105, 112, 99, 108, 101, 110, 98, 107]
    low, high = ratio_interval(noisy, reference) or (0.0, 0.0)
    point = summarize(noisy), summarize(reference)
    assert low <= (ratio(*point) or 0) <= high
    assert low < high
    assert ratio_interval([100] * 5, [50] * 5) == (2.0, 2.0)
    assert ratio_interval([1, 2], [1, 2, 3]) is None
    assert ratio_interval(noisy, reference) == ratio_interval(noisy, reference)  # seeded


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


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/stat is Linux's")
def test_run_once_says_how_much_cpu_the_rest_of_the_machine_used_meanwhile() -> None:
    before = machine_busy_ns()
    result = run_once([sys.executable, "-c", "pass"], {"PATH": "/usr/bin:/bin"})
    after = machine_busy_ns()
    assert before is not None
    assert after is not None
    assert after >= before
    assert result.others_cpu_ns is not None
    assert result.others_cpu_ns >= 0


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
