"""What must hold on Linux, macOS and Windows alike (issue 7, item 4).

Tests marked for one OS are skipped here and run in the GitHub matrix.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from menda.core_auth import TokenCache, default_cache_dir, default_config_path

TESTS = Path(__file__).resolve().parent
windows_only = pytest.mark.skipif(sys.platform != "win32", reason="Windows behaviour")
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX behaviour")


# ----------------------------------------------------------------------------- home


def test_default_paths_come_from_path_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Path, "home", classmethod(lambda cls: tmp_path))
    assert default_config_path(environ={}) == tmp_path / ".menda" / "mendacfg"
    assert default_cache_dir(environ={}) == tmp_path / ".menda" / "tokens" / "cache"
    assert TokenCache(environ={}).directory == tmp_path / ".menda" / "tokens" / "cache"


@posix_only
def test_home_is_HOME_on_posix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("USERPROFILE", str(tmp_path / "profile"))
    assert default_config_path(environ={}) == tmp_path / "home" / ".menda" / "mendacfg"
    assert default_cache_dir(environ={}) == tmp_path / "home" / ".menda" / "tokens" / "cache"


@windows_only
def test_home_is_USERPROFILE_on_windows_not_HOME(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("USERPROFILE", str(tmp_path / "profile"))
    assert default_config_path(environ={}) == tmp_path / "profile" / ".menda" / "mendacfg"
    assert default_cache_dir(environ={}) == tmp_path / "profile" / ".menda" / "tokens" / "cache"


def test_path_overrides_win_over_the_home(tmp_path: Path) -> None:
    environ = {
        "MENDA_CONFIG_FILE": str(tmp_path / "cfg"),
        "MENDA_TOKEN_CACHE_DIR": str(tmp_path / "cache"),
    }
    assert default_config_path(environ=environ) == tmp_path / "cfg"
    assert default_cache_dir(environ=environ) == tmp_path / "cache"


# ----------------------------------------------------------------------------- file modes


def test_cache_writes_and_reads_on_every_os(tmp_path: Path) -> None:
    cache = TokenCache(tmp_path / "a" / "cache")
    assert cache.write_entry("ci.prod", {"x": 1})
    assert cache.read_entry("ci.prod") == {"x": 1}
    assert cache.path_for("ci.prod").name == "ci%2Eprod.json"
    assert cache.path_for("ci.prod").parent == cache.entries_dir


def _guard_names(tree: ast.Module, source: str) -> set[str]:
    """Module-level names bound to a marker whose source mentions the platform."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and _mentions_platform(
            ast.get_source_segment(source, node.value) or ""
        ):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def _mentions_platform(text: str) -> bool:
    return any(word in text for word in ("win32", "os.name", "sys.platform", "posix"))


def _checks_modes(text: str) -> bool:
    return any(word in text for word in ("S_IMODE", "0o600", "0o700", ".chmod(0"))


def _unguarded_mode_tests() -> list[str]:
    found: list[str] = []
    for path in sorted(TESTS.rglob("test_*.py")):
        if path.resolve() == Path(__file__).resolve():
            continue
        source = path.read_text(encoding="utf-8")
        if not _checks_modes(source):
            continue
        tree = ast.parse(source)
        module_guarded = "pytestmark" in _guard_names(tree, source)
        guards = _guard_names(tree, source)
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            if not node.name.startswith("test") or module_guarded:
                continue
            body = ast.get_source_segment(source, node) or ""
            if not _checks_modes(body):
                continue
            decorators = [ast.get_source_segment(source, d) or "" for d in node.decorator_list]
            guarded = any(_mentions_platform(d) or d in guards for d in decorators)
            if not guarded and not _mentions_platform(body):
                found.append(f"{path.relative_to(TESTS)}::{node.name}")
    return found


def test_file_mode_assertions_are_skipped_on_windows() -> None:
    # Windows has no POSIX modes (chmod only toggles read-only): each test that
    # asserts or sets one must be skipped there, or check sys.platform itself.
    assert _unguarded_mode_tests() == []


# ----------------------------------------------------------------------------- the lock


def test_lock_excludes_a_second_handle_in_the_same_process(tmp_path: Path) -> None:
    # flock (POSIX) and msvcrt.locking (Windows) both lock per open file, so a
    # second open of the same lock file must wait, and here give up.
    cache = TokenCache(tmp_path / "cache")
    with cache.lock("ci-bot") as first:
        assert first
        with TokenCache(tmp_path / "cache").lock("ci-bot", timeout=0.1) as second:
            assert not second
        with cache.lock("other-key", timeout=0.1) as other:
            assert other
    with cache.lock("ci-bot", timeout=0.1) as again:
        assert again


_HOLDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from menda.core_auth import TokenCache

    with TokenCache(Path(sys.argv[1])).lock("ci-bot") as held:
        print("held" if held else "not held", flush=True)
        sys.stdin.readline()
    """
)


def test_lock_excludes_another_process(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(tmp_path / "cache")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        with TokenCache(tmp_path / "cache").lock("ci-bot", timeout=0.2) as held:
            assert not held
    finally:
        holder.communicate("\n", timeout=30)
    assert holder.returncode == 0
    with TokenCache(tmp_path / "cache").lock("ci-bot", timeout=5) as held:
        assert held


@windows_only
def test_windows_lock_goes_through_msvcrt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Through import_module: on other systems mypy's msvcrt stub has none of these names.
    msvcrt: Any = importlib.import_module("msvcrt")

    calls: list[int] = []
    real = msvcrt.locking

    def spy(fd: int, mode: int, nbytes: int) -> Any:
        calls.append(mode)
        return real(fd, mode, nbytes)

    monkeypatch.setattr(msvcrt, "locking", spy)
    cache = TokenCache(tmp_path / "cache")
    with cache.lock("ci-bot") as held:
        assert held
        assert cache.write_entry("ci-bot", {"x": 1})  # writing beside a held lock works
    assert calls[0] == msvcrt.LK_NBLCK
    assert calls[-1] == msvcrt.LK_UNLCK
    assert cache.read_entry("ci-bot") == {"x": 1}
