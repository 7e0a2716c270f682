"""The workspace layout: PEP 420 namespace, wheels that install side by side."""

from __future__ import annotations

import email.parser
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = {
    "menda-error": "error",
    "menda-core-auth": "core_auth",
    "menda-cloud-client": "cloud_client",
    "menda-keyring": "keyring",
}
ALL_MEMBERS = {**PUBLISHED, "menda-testing": "testing"}


def test_no_namespace_init_anywhere() -> None:
    strays = sorted(ROOT.glob("packages/*/src/menda/__init__.py"))
    assert strays == [], "menda is a PEP 420 namespace: remove " + ", ".join(map(str, strays))


@pytest.mark.parametrize(("dist", "leaf"), ALL_MEMBERS.items())
def test_each_member_has_its_files(dist: str, leaf: str) -> None:
    pkg = ROOT / "packages" / dist
    for name in ("pyproject.toml", "README.md", "CHANGELOG.md"):
        assert (pkg / name).is_file(), f"{dist} lacks {name}"
    assert (pkg / "src" / "menda" / leaf / "py.typed").is_file()
    assert (pkg / "src" / "menda" / leaf / "__init__.py").is_file()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    uv = os.environ.get("UV") or shutil.which("uv")
    if not uv:
        pytest.skip("uv is not on PATH")
    out = tmp_path_factory.mktemp("dist")
    wheels: dict[str, Path] = {}
    for dist in PUBLISHED:
        subprocess.run(
            [uv, "build", "--package", dist, "--no-sources", "--out-dir", str(out / dist)],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        (whl,) = (out / dist).glob("*.whl")
        (sdist,) = (out / dist).glob("*.tar.gz")
        assert sdist.stat().st_size > 0
        wheels[dist] = whl
    return wheels


@pytest.mark.parametrize(("dist", "leaf"), PUBLISHED.items())
def test_wheel_holds_only_its_leaf_under_the_namespace(
    built: dict[str, Path], dist: str, leaf: str
) -> None:
    with zipfile.ZipFile(built[dist]) as zf:
        names = zf.namelist()
    code = [n for n in names if ".dist-info/" not in n]
    assert code, f"{dist} wheel is empty"
    assert all(n.startswith(f"menda/{leaf}/") for n in code), code
    assert f"menda/{leaf}/py.typed" in names
    assert "menda/__init__.py" not in names


def _member_version(dist: str) -> str:
    text = (ROOT / "packages" / dist / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r'^version = "([^"]+)"', text, flags=re.MULTILINE)
    assert match, dist
    return match.group(1)


@pytest.mark.parametrize("dist", PUBLISHED)
def test_wheel_dependencies_on_members_carry_real_ranges(built: dict[str, Path], dist: str) -> None:
    with zipfile.ZipFile(built[dist]) as zf:
        meta_name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        meta = email.parser.Parser().parsestr(zf.read(meta_name).decode())
    requires = meta.get_all("Requires-Dist") or []
    for req in requires:
        m = re.match(r"(menda-[a-z-]+)\s*(.*)", req)
        if m:
            # The range admits the member's own minor series and nothing newer.
            major, minor = _member_version(m.group(1)).split(".")[:2]
            lower, upper = f">={major}.{minor}", f"<{major}.{int(minor) + 1}"
            assert lower in m.group(2) and upper in m.group(2), req
    assert meta["Requires-Python"] == ">=3.10"
