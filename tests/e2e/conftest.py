"""Shared set-up for end-to-end tests: real installers, the emulator, the fake repository.

Every test gets a fresh menda cloud, a fake CodeArtifact repository reached by
its genuine host name through the TLS-terminating proxy, an isolated home, and
an environment in which `keyring` on PATH is the workspace's (so it carries
our backend) and the machine's own pip/uv configuration is out of the way.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from menda.testing import FakeCodeArtifact, MendaCloudEmulator, MendaHome
from menda.testing.published import VenvUnavailable, base_interpreter, build_venv, script

# The tests skip on this: a tool's environment could not be built (no uv, no PyPI).
ToolUnavailable = VenvUnavailable

DOMAIN, OWNER, REGION, REPO = "menda-private", "058264169513", "eu-west-1", "menda-plugins"
HOST = f"{DOMAIN}-{OWNER}.d.codeartifact.{REGION}.amazonaws.com"
CLIENT_ID, CLIENT_SECRET = "ci-bot", "e2e-client-secret-9f3a"
BIN = Path(sys.executable).parent


@dataclass
class E2E:
    """One end-to-end world: cloud, repository, home, and how to run tools in it."""

    cloud: MendaCloudEmulator
    repo: FakeCodeArtifact
    home: MendaHome
    tmp: Path
    uv: str
    index_url: str  # https://<host>/pypi/<repo>/simple/, no userinfo
    auth_env: dict[str, str] = field(default_factory=dict)

    @property
    def aws_index_url(self) -> str:
        """The index URL as the product page writes it: username aws, no password."""
        return self.index_url.replace("https://", "https://aws@", 1)

    def env(self, **overrides: str | None) -> dict[str, str]:
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PIP_", "UV_", "MENDA_", "TWINE_", "VIRTUAL_ENV", "KEYRING_"))
        }
        base.update(HOME=str(self.home.home), USERPROFILE=str(self.home.home))
        env = self.repo.installer_env(base)
        env.update(
            # The workspace's keyring (with our backend) is the one installers spawn.
            PATH=os.pathsep.join([str(BIN), env.get("PATH", "")]),
            PIP_CONFIG_FILE=os.devnull,
            PIP_DISABLE_PIP_VERSION_CHECK="1",
            PIP_NO_CACHE_DIR="1",
            UV_CACHE_DIR=str(self.tmp / "uv-cache"),
            UV_PYTHON_DOWNLOADS="never",
            PYTHONDONTWRITEBYTECODE="1",
        )
        env.update(self.auth_env)
        for name, value in overrides.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return env

    def run(
        self,
        *argv: str | Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        timeout: float = 240,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(a) for a in argv],
            env=dict(env) if env is not None else self.env(),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def venv(self, name: str = "venv") -> Path:
        """A fresh virtual environment; returns its python."""
        path = self.tmp / name
        result = self.run(self.uv, "venv", path, "--python", base_interpreter(), "--quiet")
        assert result.returncode == 0, result.stderr
        scripts = path / ("Scripts" if sys.platform == "win32" else "bin")
        return scripts / ("python.exe" if sys.platform == "win32" else "python")

    def uv_pip_install(
        self,
        python: Path,
        *args: str,
        index_url: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """`uv pip install menda-hello` from the private index, through keyring."""
        return self.run(
            self.uv,
            "pip",
            "install",
            "--no-progress",
            "--python",
            python,
            "--keyring-provider",
            "subprocess",
            "--index-url",
            index_url or self.aws_index_url,
            "--extra-index-url",
            self.repo.public_index_url,
            *args,
            "menda-hello",
            env=env,
        )

    # The auth sources of the product page, as users set them up.

    def use_env_m2m(self) -> None:
        self.cloud.add_m2m_client(CLIENT_ID, CLIENT_SECRET)
        self.auth_env = {
            "MENDA_CLIENT_ID": CLIENT_ID,
            "MENDA_CLIENT_SECRET": CLIENT_SECRET,
            "MENDA_HOST": self.cloud.url,
        }

    def use_profile_m2m(self, profile: str = "ci") -> None:
        self.cloud.add_m2m_client(CLIENT_ID, CLIENT_SECRET)
        self.home.add_m2m_profile(self.cloud, CLIENT_ID, CLIENT_SECRET, profile=profile)
        self.auth_env = {"MENDA_PROFILE_ID": profile} if profile != "default" else {}


@pytest.fixture
def uv_binary() -> str:
    path = os.environ.get("UV") or shutil.which("uv")
    if path is None:
        pytest.skip("uv is not installed")
    return path


@pytest.fixture
def e2e(
    menda_home: MendaHome,
    menda_cloud: MendaCloudEmulator,
    tmp_path: Path,
    uv_binary: str,
) -> Iterator[E2E]:
    with FakeCodeArtifact(menda_cloud) as repo:
        index_url = repo.add_repository(DOMAIN, OWNER, REGION, REPO)
        repo.add_package(index_url, "menda-hello", "1.0.0", dependencies=["public-dep>=1"])
        repo.add_public_package("public-dep", "1.2.0")
        yield E2E(
            cloud=menda_cloud,
            repo=repo,
            home=menda_home,
            tmp=tmp_path,
            uv=uv_binary,
            index_url=index_url,
        )


# -- Installers that live in their own environment (Poetry, PDM) ---------------------------

WORKSPACE = Path(__file__).resolve().parents[2]
# What a user installs beside keyring, in dependency order, from the working tree.
OUR_PACKAGES = ("menda-error", "menda-core-auth", "menda-cloud-client", "menda-keyring")
# Computed at import, before any fixture points HOME at a temporary directory.
TOOL_ENV_ROOT = Path.home() / ".cache" / "menda-keyring-tests"
# A tool environment nobody has used for this long is a leftover of older code.
_STALE_AFTER = 24 * 3600


@dataclass(frozen=True)
class ToolEnvironment:
    """An installer in its own virtual environment, with keyring and our backend beside it."""

    venv: Path

    def script(self, name: str) -> Path:
        return script(self.venv, name)


def _sources_digest() -> str:
    """A digest of what our packages' wheels are built from, so a code change means a rebuild."""
    digest = hashlib.sha256()
    for package in OUR_PACKAGES:
        root = WORKSPACE / "packages" / package
        files = [root / "pyproject.toml", *sorted((root / "src").rglob("*"))]
        for path in files:
            if not path.is_file() or "__pycache__" in path.parts:
                continue
            digest.update(path.relative_to(WORKSPACE).as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def _uv() -> str:
    path = os.environ.get("UV") or shutil.which("uv")
    if path is None:
        raise VenvUnavailable("uv is not installed; it builds our wheels")
    return path


def _our_wheels(root: Path, digest: str) -> list[str]:
    """Wheels of our packages built from the working tree, once per ``digest``.

    Installing the package directories instead would make the workspace
    dependencies editable, pointing into whichever checkout built the venv.
    """
    out = root / f"wheels-{digest}"
    complete = (out / ".complete").exists() and len(list(out.glob("*.whl"))) == len(OUR_PACKAGES)
    if not complete:
        shutil.rmtree(out, ignore_errors=True)
        root.mkdir(parents=True, exist_ok=True)
        building = root / f".building-{secrets.token_hex(4)}"
        try:
            for package in OUR_PACKAGES:
                argv = [_uv(), "build", "--quiet", "--wheel", "--package", package]
                result = subprocess.run(
                    [*argv, "--out-dir", str(building)],
                    cwd=WORKSPACE,
                    capture_output=True,
                    text=True,
                    timeout=600,
                    check=False,
                )
                if result.returncode != 0:
                    raise VenvUnavailable(f"could not build {package}: {result.stderr[-500:]}")
            (building / ".complete").touch()
            with contextlib.suppress(OSError):  # another session got there first
                building.rename(out)
        finally:
            shutil.rmtree(building, ignore_errors=True)
    (out / ".complete").touch()  # in use: not stale
    return sorted(str(wheel) for wheel in out.glob("*.whl"))


def build_tool_environment(
    requirements: Sequence[str], root: Path = TOOL_ENV_ROOT
) -> ToolEnvironment:
    """A venv with the pinned ``requirements`` and the working tree's menda packages.

    Named after the pins, the Python version and a digest of our sources: built
    once, and again whenever the code under test changes. Our packages are built
    as wheels and installed from them (not editable), as users get them. Built
    under a temporary name and renamed into place (``--relocatable``), so
    concurrent sessions never see half of one; environments and wheels of older
    code are removed after a day unused.
    """
    pins = hashlib.sha256("\n".join(requirements).encode()).hexdigest()[:8]
    python = f"py{sys.version_info.major}.{sys.version_info.minor}"
    prefix = f"{requirements[0].replace('==', '-')}-{python}-{pins}"
    digest = _sources_digest()
    wheels = _our_wheels(root, digest)
    final = build_venv(
        root, f"{prefix}-{digest}", [*requirements, *wheels], python=base_interpreter()
    )
    (final / ".complete").touch()  # in use: not stale
    for old in [*root.glob(f"{prefix}-*"), *root.glob("wheels-*")]:
        marker = old / ".complete"
        stale = marker.exists() and time.time() - marker.stat().st_mtime > _STALE_AFTER
        if old not in (final, root / f"wheels-{digest}") and stale:
            shutil.rmtree(old, ignore_errors=True)
    return ToolEnvironment(final)


def tool_env(e2e: E2E, **overrides: str | None) -> dict[str, str]:
    """``e2e.env()`` without the machine's Poetry, PDM and XDG settings; wide rich output."""
    outer = {name: None for name in os.environ if name.startswith(("POETRY_", "PDM_", "XDG_"))}
    return e2e.env(**{**outer, "COLUMNS": "1000", **overrides})


def output_of(result: subprocess.CompletedProcess[str]) -> str:
    """What the user sees: stdout and stderr."""
    return result.stdout + result.stderr


def assert_no_secret(e2e: E2E, *texts: str) -> None:
    """Neither the client secret nor any minted or cached token is in ``texts``."""
    found = [CLIENT_SECRET, *(minted.token for minted in e2e.cloud.minted_registry_tokens)]
    found += e2e.home.cached_secrets()
    for secret in found:
        for text in texts:
            assert secret not in text


def assert_one_token_and_one_exchange(e2e: E2E) -> None:
    """menda cloud minted one access token and one registry token, both for the env client."""
    assert e2e.cloud.count("token", grant_type="client_credentials", client_id=CLIENT_ID) == 1
    assert e2e.cloud.count("token") == 1
    assert e2e.cloud.count("registry", status=200, identity=CLIENT_ID) == 1
    assert e2e.cloud.count("registry") == 1


def assert_no_outbound_attempt(e2e: E2E) -> None:
    """The proxy refused nothing: no tool tried to reach a host outside the test world."""
    refused = [f"{r.scheme}://{r.host}{r.path}" for r in e2e.repo.requests.records(status=502)]
    assert refused == [], refused


def our_failure_lines(result: subprocess.CompletedProcess[str], error_class: str) -> list[str]:
    """Our ``menda-keyring: … [<error_class>]`` lines in the tool's output (all of it)."""
    return [
        line
        for line in output_of(result).splitlines()
        if line.startswith("menda-keyring: ") and line.endswith(f" [{error_class}]")
    ]


def write_library(
    project: Path, name: str, version: str, *, requires: str, backend: str, src: bool = False
) -> Path:
    """A tiny library to publish: one package holding its version, built by ``backend``."""
    package = (project / "src" if src else project) / name.replace("-", "_")
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(f'__version__ = "{version}"\n', encoding="utf-8")
    (project / "pyproject.toml").write_text(
        f"""\
[project]
name = "{name}"
version = "{version}"
description = "A package published by a test"
requires-python = ">=3.10"

[build-system]
requires = ["{requires}"]
build-backend = "{backend}"
""",
        encoding="utf-8",
    )
    return project
