"""The published Menda clients, each in its own virtual environment, for fidelity tests.

``menda-cli`` 0.5.0 (the ``menda`` command) and the reference backend
``menda-keyring`` 0.0.2 are the only evidence of what the real menda cloud
accepts and what the shared files look like. Both ship a ``menda/__init__.py``
of their own, so they must stay out of the workspace's environment: each gets a
Python 3.11 virtual environment, built once per version and kept under
``~/.cache/menda-keyring-tests/``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "PUBLISHED_CLI",
    "PUBLISHED_KEYRING",
    "PublishedClients",
    "VenvUnavailable",
    "base_interpreter",
    "build_published_clients",
    "build_venv",
    "script",
]

PUBLISHED_CLI = "menda-cli==0.5.0"
PUBLISHED_KEYRING = "menda-keyring==0.0.2"
_BIN = "Scripts" if sys.platform == "win32" else "bin"


class VenvUnavailable(RuntimeError):
    """Raised when a test environment cannot be built (no uv, no PyPI)."""


class PublishedClients(NamedTuple):
    """Paths of the published clients' commands."""

    menda: str  # menda-cli's `menda`
    keyring: str  # `keyring` with menda-keyring 0.0.2 beside it


def script(venv: Path, name: str) -> Path:
    """The console script ``name`` of the virtual environment ``venv``."""
    return venv / _BIN / (f"{name}.exe" if sys.platform == "win32" else name)


def base_interpreter() -> str:
    """The interpreter the running one is built on, outside any virtual environment.

    A venv built on ``sys.executable`` breaks when that venv goes away, and the
    one ``uv run --isolated`` makes is deleted when the run ends; on Python 3.10
    ``sys._base_executable`` still names it. The base install outlives both.
    """
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    base = Path(sys.base_prefix)
    candidates = (
        [base / "python.exe"]
        if sys.platform == "win32"
        else [base / "bin" / f"python{version}", base / "bin" / "python3"]
    )
    for candidate in candidates:
        if candidate.is_file():
            return str(candidate)
    return os.path.realpath(getattr(sys, "_base_executable", sys.executable))


def _usable(venv: Path) -> bool:
    """Built to the end, and its interpreter still there (a symlink can outlive its base)."""
    return (venv / ".complete").exists() and script(venv, "python").exists()


def build_venv(root: Path, name: str, install: Sequence[str], *, python: str = "3.11") -> Path:
    """``root/name``: a virtual environment with ``uv pip install <install>``, built once.

    Built under a temporary name and renamed into place (it is relocatable), so
    concurrent sessions never see half of one. Raises ``VenvUnavailable``.
    """
    final = root / name
    if _usable(final):
        return final
    if final.exists():  # its base interpreter is gone: build it again
        shutil.rmtree(final, ignore_errors=True)
    uv = os.environ.get("UV") or shutil.which("uv")
    if not uv:
        raise VenvUnavailable("uv is not installed; it builds the test environments")
    root.mkdir(parents=True, exist_ok=True)
    building = root / f".building-{secrets.token_hex(4)}"
    steps = [[uv, "venv", "--quiet", "--python", python, "--relocatable", str(building)]]
    if install:
        python_in = str(script(building, "python"))
        steps.append([uv, "pip", "install", "--quiet", "--python", python_in, *install])
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    try:
        for argv in steps:
            try:
                result = subprocess.run(
                    argv, capture_output=True, text=True, env=env, timeout=600, check=False
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise VenvUnavailable(f"could not build {name}: {exc}") from exc
            if result.returncode != 0:
                raise VenvUnavailable(f"could not build {name}: {result.stderr.strip()[-500:]}")
        (building / ".complete").touch()
        try:
            building.rename(final)
        except OSError:  # another session got there first
            if not _usable(final):
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return final


def build_published_clients(root: Path | None = None) -> PublishedClients:
    """Build (or reuse) both environments; raises ``PublishedClientsUnavailable``."""
    root = root or Path.home() / ".cache" / "menda-keyring-tests"

    def venv(requirement: str) -> Path:
        return build_venv(root, f"{requirement.replace('==', '-')}-py3.11", [requirement])

    return PublishedClients(
        menda=str(script(venv(PUBLISHED_CLI), "menda")),
        keyring=str(script(venv(PUBLISHED_KEYRING), "keyring")),
    )
