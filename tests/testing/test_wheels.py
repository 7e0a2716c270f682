from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from menda.testing import build_wheel
from menda.testing.wheels import normalize_name, wheel_filename


def _record_rows(archive: zipfile.ZipFile, dist_info: str) -> list[list[str]]:
    text = archive.read(f"{dist_info}/RECORD").decode()
    return [line.split(",") for line in text.splitlines()]


def test_wheel_has_metadata_wheel_and_record_with_matching_hashes(tmp_path: Path) -> None:
    path = build_wheel(tmp_path, "Hello_World", "1.2.3", dependencies=["dep-one>=1", "two"])

    assert path == tmp_path / "hello_world-1.2.3-py3-none-any.whl"
    with zipfile.ZipFile(path) as archive:
        dist_info = "hello_world-1.2.3.dist-info"
        metadata = archive.read(f"{dist_info}/METADATA").decode()
        assert "Name: Hello_World\n" in metadata
        assert "Version: 1.2.3\n" in metadata
        assert "Requires-Dist: dep-one>=1\nRequires-Dist: two\n" in metadata
        wheel = archive.read(f"{dist_info}/WHEEL").decode()
        assert "Root-Is-Purelib: true" in wheel
        assert "Tag: py3-none-any" in wheel
        rows = _record_rows(archive, dist_info)
        assert sorted(row[0] for row in rows) == sorted(archive.namelist())
        for name, digest, size in rows:
            if name.endswith("RECORD"):
                assert (digest, size) == ("", "")
                continue
            data = archive.read(name)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            assert digest == "sha256=" + expected.decode()
            assert int(size) == len(data)
        assert archive.read("hello_world/__init__.py") == b'__version__ = "1.2.3"\n'


def test_wheel_is_byte_for_byte_reproducible(tmp_path: Path) -> None:
    first = build_wheel(tmp_path / "a", "pkg", "1.0").read_bytes()
    second = build_wheel(tmp_path / "b", "pkg", "1.0").read_bytes()
    assert first == second


def test_custom_modules_and_requires_python_are_written(tmp_path: Path) -> None:
    path = build_wheel(
        tmp_path,
        "tool",
        "0.1",
        modules={"tool_mod.py": "X = 1\n", "tool_pkg/__init__.py": ""},
        requires_python=">=3.8",
    )
    with zipfile.ZipFile(path) as archive:
        assert archive.read("tool_mod.py") == b"X = 1\n"
        assert "tool_pkg/__init__.py" in archive.namelist()
        assert "tool/__init__.py" not in archive.namelist()
        assert "Requires-Python: >=3.8\n" in archive.read("tool-0.1.dist-info/METADATA").decode()


@pytest.mark.parametrize("name", ["", "-lead", "trail-", "sp ace", "a/b"])
def test_invalid_project_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="project name"):
        build_wheel(tmp_path, name, "1.0")


def test_module_paths_outside_the_wheel_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="relative"):
        build_wheel(tmp_path, "pkg", "1.0", modules={"../evil.py": ""})


def test_pip_installs_the_wheel_and_it_imports(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "dist", "Tiny.Pkg", "2.0")
    target = tmp_path / "site"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-index",
            "--no-deps",
            "--isolated",
            "--disable-pip-version-check",
            "--target",
            str(target),
            str(wheel),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    check = subprocess.run(
        [sys.executable, "-c", "import tiny_pkg; print(tiny_pkg.__version__)"],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(target)},
        check=False,
    )
    assert check.stdout.strip() == "2.0", check.stderr


@settings(max_examples=50, deadline=None)
@given(st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,20}[A-Za-z0-9])?", fullmatch=True))
def test_normalized_names_are_lowercase_with_single_hyphens(name: str) -> None:
    normalized = normalize_name(name)
    assert normalized == normalized.lower()
    assert "_" not in normalized
    assert "." not in normalized
    assert "--" not in normalized
    assert normalize_name(normalized) == normalized
    assert wheel_filename(name, "1.0").endswith("-1.0-py3-none-any.whl")
    assert "-" not in wheel_filename(name, "1.0").split("-1.0-")[0]
