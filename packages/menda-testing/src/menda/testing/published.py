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
from typing import NamedTuple

__all__ = [
    "PUBLISHED_CLI",
    "PUBLISHED_KEYRING",
    "PublishedClients",
    "PublishedClientsUnavailable",
    "build_published_clients",
]

PUBLISHED_CLI = "menda-cli==0.5.0"
PUBLISHED_KEYRING = "menda-keyring==0.0.2"
_BIN = "Scripts" if sys.platform == "win32" else "bin"


class PublishedClientsUnavailable(RuntimeError):
    """Raised when the environments cannot be built (no uv, no PyPI)."""


class PublishedClients(NamedTuple):
    """Paths of the published clients' commands."""

    menda: str  # menda-cli's `menda`
    keyring: str  # `keyring` with menda-keyring 0.0.2 beside it


def _script(venv: Path, name: str) -> str:
    return str(venv / _BIN / (f"{name}.exe" if sys.platform == "win32" else name))


def _venv(uv: str, root: Path, requirement: str) -> Path:
    """A Python 3.11 virtual environment with ``requirement``, built once per version.

    Built under a temporary name and renamed into place (it is relocatable), so
    concurrent sessions never see half of one.
    """
    final = root / f"{requirement.replace('==', '-')}-py3.11"
    if (final / ".complete").exists():
        return final
    root.mkdir(parents=True, exist_ok=True)
    building = root / f".building-{secrets.token_hex(4)}"
    python = building / _BIN / ("python.exe" if sys.platform == "win32" else "python")
    steps = [
        [uv, "venv", "--quiet", "--python", "3.11", "--relocatable", str(building)],
        [uv, "pip", "install", "--quiet", "--python", str(python), requirement],
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    try:
        for argv in steps:
            result = subprocess.run(
                argv, capture_output=True, text=True, env=env, timeout=300, check=False
            )
            if result.returncode != 0:
                raise PublishedClientsUnavailable(
                    f"could not build {requirement}: {result.stderr.strip()[-500:]}"
                )
        (building / ".complete").touch()
        try:
            building.rename(final)
        except OSError:  # another session got there first
            if not (final / ".complete").exists():
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return final


def build_published_clients(root: Path | None = None) -> PublishedClients:
    """Build (or reuse) both environments; raises ``PublishedClientsUnavailable``."""
    uv = os.environ.get("UV") or shutil.which("uv")
    if not uv:
        raise PublishedClientsUnavailable("uv is not installed; it builds the environments")
    root = root or Path.home() / ".cache" / "menda-keyring-tests"
    return PublishedClients(
        menda=_script(_venv(uv, root, PUBLISHED_CLI), "menda"),
        keyring=_script(_venv(uv, root, PUBLISHED_KEYRING), "keyring"),
    )
