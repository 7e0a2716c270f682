"""Cached test environments survive the interpreter that built them going away.

CI runs the suite a second time under ``uv run --python 3.10 --isolated``: that
run's own venv is deleted when it ends, and tool environments built on it were
left with a dangling ``bin/python`` that the next CI run found and used.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from menda.testing.published import base_interpreter, build_venv, script

pytestmark = pytest.mark.skipif(shutil.which("uv") is None, reason="uv builds the environments")


def _version_of(python: str | Path) -> str:
    argv = [
        str(python),
        "-c",
        "import sys; print(sys.version_info[:2], sys.prefix == sys.base_prefix)",
    ]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()


def test_base_interpreter_is_this_python_outside_any_venv() -> None:
    base = Path(base_interpreter())

    assert base.is_file()
    assert not (base.parent.parent / "pyvenv.cfg").exists()
    version = f"({sys.version_info[0]}, {sys.version_info[1]})"
    assert _version_of(base) == f"{version} True"


def test_a_cached_venv_whose_interpreter_is_gone_is_built_again(tmp_path: Path) -> None:
    # A venv to stand in for `uv run --isolated`'s, then a cached one built on it.
    scratch = tmp_path / "scratch"
    uv = shutil.which("uv")
    assert uv is not None
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    made = subprocess.run(
        [uv, "venv", "--quiet", "--python", base_interpreter(), str(scratch)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    root = tmp_path / "cache"
    first = build_venv(root, "tool", [], python=str(script(scratch, "python")))
    shutil.rmtree(scratch)
    if script(first, "python").exists():
        pytest.skip("uv resolved the scratch venv to its base; nothing dangles here")

    again = build_venv(root, "tool", [], python=base_interpreter())

    assert again == first
    assert _version_of(script(again, "python")).endswith("False")


def test_a_usable_cached_venv_is_reused(tmp_path: Path) -> None:
    first = build_venv(tmp_path, "tool", [], python=base_interpreter())
    (first / "marker").write_text("kept")

    again = build_venv(tmp_path, "tool", [], python=base_interpreter())

    assert (again / "marker").read_text() == "kept"
