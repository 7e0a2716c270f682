"""Real installers (uv, pip, twine) against the fake CodeArtifact through the proxy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from menda.testing import FakeCodeArtifact, build_wheel

pytestmark = pytest.mark.e2e

DOMAIN, OWNER, REGION, REPO = "menda-private", "058264169513", "eu-west-1", "plugins"
HOST = f"{DOMAIN}-{OWNER}.d.codeartifact.{REGION}.amazonaws.com"
GOOD = "caat_good-token"


class FixedTokenValidator:
    def __init__(self, token: str = GOOD) -> None:
        self.token = token

    def validate_registry_token(self, token: str, *, domain: str, owner: str, region: str) -> bool:
        return token == self.token and (domain, owner, region) == (DOMAIN, OWNER, REGION)


def _clean_env(ca: FakeCodeArtifact, tmp_path: Path) -> dict[str, str]:
    """The installer env, without the machine's pip/uv configuration or indexes."""
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PIP_", "UV_", "MENDA_", "TWINE_", "VIRTUAL_ENV"))
    }
    env = ca.installer_env(base)
    env.update(
        HOME=str(tmp_path / "home"),
        PIP_CONFIG_FILE=os.devnull,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_CACHE_DIR="1",
        PIP_CERT=str(ca.ca_pem_path),
        UV_NO_CONFIG="1",
        UV_CACHE_DIR=str(tmp_path / "uv-cache"),
        UV_PYTHON_DOWNLOADS="never",
        PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
    )
    return env


def _authed(index_url: str, token: str = GOOD) -> str:
    return index_url.replace("https://", f"https://aws:{token}@", 1)


def _uv_install(uv: str, python: Path, index_url: str, *args: str) -> list[str]:
    return [uv, "pip", "install", "--python", str(python), "--index-url", index_url, *args]


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture
def uv() -> str:
    path = shutil.which("uv")
    if path is None:
        pytest.skip("uv is not installed")
    return path


@pytest.fixture
def ca() -> Iterator[FakeCodeArtifact]:
    with FakeCodeArtifact(FixedTokenValidator()) as server:
        yield server


@pytest.fixture
def venv_python(uv: str, tmp_path: Path, ca: FakeCodeArtifact) -> Path:
    venv = tmp_path / "venv"
    result = _run([uv, "venv", str(venv), "--python", sys.executable], _clean_env(ca, tmp_path))
    assert result.returncode == 0, result.stderr
    scripts = venv / ("Scripts" if sys.platform == "win32" else "bin")
    return scripts / ("python.exe" if sys.platform == "win32" else "python")


def _import_version(python: Path | str, module: str, path: Path | None = None) -> str:
    env = {"PYTHONPATH": str(path)} if path else None
    result = subprocess.run(
        [str(python), "-c", f"import {module}; print({module}.__version__)"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_uv_pip_install_from_the_genuine_host_name(
    uv: str, ca: FakeCodeArtifact, venv_python: Path, tmp_path: Path
) -> None:
    index_url = ca.add_repository(DOMAIN, OWNER, REGION, REPO)
    ca.add_package(index_url, "menda-plugin", "1.0", dependencies=["menda_dep>=2"])
    ca.add_package(index_url, "Menda.Dep", "2.1")

    result = _run(
        _uv_install(uv, venv_python, _authed(index_url), "menda-plugin"),
        _clean_env(ca, tmp_path),
    )

    assert result.returncode == 0, result.stderr
    assert _import_version(venv_python, "menda_plugin") == "1.0"
    assert _import_version(venv_python, "menda_dep") == "2.1"
    assert ca.requests.count(host=HOST, status=401) == 0
    assert ca.requests.count(host=HOST, path=f"/pypi/{REPO}/simple/menda-plugin/", status=200) >= 1
    assert GOOD not in result.stderr + result.stdout


def test_uv_fails_cleanly_with_a_bad_token(
    uv: str, ca: FakeCodeArtifact, venv_python: Path, tmp_path: Path
) -> None:
    index_url = ca.add_repository(DOMAIN, OWNER, REGION, REPO)
    ca.add_package(index_url, "menda-plugin", "1.0")

    result = _run(
        _uv_install(uv, venv_python, _authed(index_url, "expired"), "menda-plugin"),
        _clean_env(ca, tmp_path),
    )

    assert result.returncode != 0
    assert "401" in result.stderr or "Unauthorized" in result.stderr, result.stderr
    assert ca.requests.count(host=HOST, status=401, auth_presented=True) >= 1


def test_uv_resolves_private_and_public_indexes_together(
    uv: str, ca: FakeCodeArtifact, venv_python: Path, tmp_path: Path
) -> None:
    index_url = ca.add_repository(DOMAIN, OWNER, REGION, REPO)
    ca.add_package(index_url, "menda-plugin", "1.0", dependencies=["public-dep"])
    ca.add_public_package("public-dep", "4.0")

    result = _run(
        _uv_install(
            uv,
            venv_python,
            _authed(index_url),
            "--extra-index-url",
            ca.public_index_url,
            "--index-strategy",
            "unsafe-best-match",
            "menda-plugin",
        ),
        _clean_env(ca, tmp_path),
    )

    assert result.returncode == 0, result.stderr
    assert _import_version(venv_python, "public_dep") == "4.0"
    assert ca.requests.count(via="direct", path="/public/simple/public-dep/") >= 1


def test_pip_install_through_the_proxy_with_the_test_ca(
    ca: FakeCodeArtifact, tmp_path: Path
) -> None:
    index_url = ca.add_repository(DOMAIN, OWNER, REGION, REPO)
    ca.add_package(index_url, "menda-plugin", "1.0", dependencies=["menda-dep"])
    ca.add_package(index_url, "menda-dep", "2.1")
    target = tmp_path / "site"

    result = _run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--target",
            str(target),
            "--index-url",
            _authed(index_url),
            "--cert",
            str(ca.ca_pem_path),
            "menda-plugin",
        ],
        _clean_env(ca, tmp_path),
    )

    assert result.returncode == 0, result.stderr
    assert _import_version(sys.executable, "menda_plugin", target) == "1.0"
    assert _import_version(sys.executable, "menda_dep", target) == "2.1"


def test_twine_upload_then_uv_install(
    uv: str, ca: FakeCodeArtifact, venv_python: Path, tmp_path: Path
) -> None:
    pytest.importorskip("twine")
    index_url = ca.add_repository(DOMAIN, OWNER, REGION, REPO)
    wheel = build_wheel(tmp_path / "dist", "uploaded-plugin", "0.3")
    env = _clean_env(ca, tmp_path)
    env.update(TWINE_USERNAME="aws", TWINE_PASSWORD=GOOD, TWINE_NON_INTERACTIVE="1")

    upload = _run(
        [
            sys.executable,
            "-m",
            "twine",
            "upload",
            "--disable-progress-bar",
            "--repository-url",
            ca.repository(index_url).upload_url,
            str(wheel),
        ],
        env,
    )

    assert upload.returncode == 0, upload.stdout + upload.stderr
    assert ca.files(index_url, "uploaded-plugin") == [wheel.name]
    assert ca.requests.count(method="POST", status=200, path=f"/pypi/{REPO}/") == 1

    install = _run(
        _uv_install(uv, venv_python, _authed(index_url), "uploaded-plugin"),
        env,
    )
    assert install.returncode == 0, install.stderr
    assert _import_version(venv_python, "uploaded_plugin") == "0.3"


def test_with_the_real_menda_cloud_emulator(uv: str, venv_python: Path, tmp_path: Path) -> None:
    emulator = pytest.importorskip("menda.testing.emulator")
    with emulator.MendaCloudEmulator() as cloud, FakeCodeArtifact(cloud) as ca:
        cloud.add_m2m_client("ci-bot", "s3cret")
        live = cloud.mint_registry_token("ci-bot", domain=DOMAIN, owner=OWNER, region=REGION)
        expired = cloud.mint_registry_token(
            "ci-bot", domain=DOMAIN, owner=OWNER, region=REGION, lifetime=-60
        )
        index_url = ca.add_repository(DOMAIN, OWNER, REGION, REPO)
        ca.add_package(index_url, "menda-plugin", "1.0")
        env = _clean_env(ca, tmp_path)

        refused = _run(
            _uv_install(uv, venv_python, _authed(index_url, expired.token), "menda-plugin"),
            env,
        )
        installed = _run(
            _uv_install(uv, venv_python, _authed(index_url, live.token), "menda-plugin"),
            env,
        )

    assert refused.returncode != 0
    assert installed.returncode == 0, installed.stderr
    assert _import_version(venv_python, "menda_plugin") == "1.0"
