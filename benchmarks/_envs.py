"""Building the environments the benchmark compares, with uv.

- ``menda``: the published distributions built as wheels (``uv build --no-sources``)
  and installed with their real dependencies from PyPI, as users get them, so the
  cost our dependencies add to keyring's plugin discovery is measured too.
- ``baseline``: keyring plus the null plugin of ``_nullwheel``.
- ``reference``: keyring plus the published reference backend, menda-keyring 0.0.2,
  from PyPI. It needs Python >= 3.11 and ships a ``menda/__init__.py`` of its own,
  so it only ever lives in an environment of its own.

All three use the same interpreter and the same keyring version, and compile
bytecode at install, so no run pays for compiling and the ratios compare backends.
(``menda.testing.published`` builds 0.0.2 for the fidelity tests in a relocatable
environment without bytecode, whose ``keyring`` starts through ``/bin/sh``: right
for those tests, not for timing.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks._nullwheel import build_null_backend_wheel

from menda.testing.published import PUBLISHED_KEYRING

__all__ = [
    "MENDA_DISTS",
    "REFERENCE_DIST",
    "REFERENCE_REQUIREMENT",
    "EnvError",
    "Venv",
    "build_baseline",
    "build_menda",
    "build_reference",
    "default_env_root",
    "distribution_version",
    "find_uv",
    "uv_version",
]

MENDA_DISTS = ("menda-error", "menda-core-auth", "menda-cloud-client", "menda-keyring")
REFERENCE_DIST = "menda-keyring"
REFERENCE_REQUIREMENT = PUBLISHED_KEYRING  # menda-keyring==0.0.2, pinned in one place


class EnvError(RuntimeError):
    """Raised when an environment cannot be built (the message carries uv's output)."""


@dataclass(frozen=True)
class Venv:
    name: str
    path: Path

    def bin(self, name: str) -> Path:
        if sys.platform == "win32":
            return self.path / "Scripts" / f"{name}.exe"
        return self.path / "bin" / name

    @property
    def python(self) -> Path:
        return self.bin("python")

    @property
    def keyring(self) -> Path:
        return self.bin("keyring")

    def exists(self) -> bool:
        return self.python.exists() and self.keyring.exists()


def find_uv() -> str:
    uv = os.environ.get("UV") or shutil.which("uv")
    if not uv:
        raise EnvError("uv not found: install uv or set UV to its path")
    return uv


def uv_version(uv: str) -> str:
    done = subprocess.run([uv, "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip() or "unknown"


def default_env_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "menda-bench"


def _uv_env() -> dict[str, str]:
    # `uv run` exports the workspace's environment; the commands below name
    # their target interpreter explicitly and must not see it.
    env = dict(os.environ)
    for name in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "PYTHONPATH", "PYTHONHOME"):
        env.pop(name, None)
    return env


def _uv(uv: str, args: Sequence[str], *, cwd: Path) -> None:
    argv = [uv, *args]
    done = subprocess.run(argv, cwd=cwd, env=_uv_env(), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise EnvError(f"`{' '.join(argv)}` failed with exit {done.returncode}:\n{tail}")


def _fresh_venv(uv: str, root: Path, name: str, python: str) -> Venv:
    venv = Venv(name, root / name)
    if venv.path.exists():
        shutil.rmtree(venv.path)
    root.mkdir(parents=True, exist_ok=True)
    _uv(uv, ["venv", "--quiet", "--no-project", "--python", python, str(venv.path)], cwd=root)
    return venv


def _install(uv: str, venv: Venv, requirements: Sequence[str], *, cwd: Path) -> None:
    # Bytecode compiled at install, as pip does, so no run pays for compiling.
    _uv(
        uv,
        [
            "pip",
            "install",
            "--quiet",
            "--python",
            str(venv.python),
            "--compile-bytecode",
            *requirements,
        ],
        cwd=cwd,
    )


def _reusable(root: Path, name: str, reuse: bool) -> Venv | None:
    venv = Venv(name, root / name)
    return venv if reuse and venv.exists() else None


def build_menda(
    uv: str, repo: Path, root: Path, python: str, keyring_version: str, *, reuse: bool = False
) -> Venv:
    existing = _reusable(root, "menda", reuse)
    if existing is not None:
        return existing
    wheels_dir = root / "wheels" / "menda"
    if wheels_dir.exists():
        shutil.rmtree(wheels_dir)
    for dist in MENDA_DISTS:
        _uv(
            uv,
            [
                *("build", "--quiet", "--package", dist, "--no-sources", "--wheel"),
                *("--out-dir", str(wheels_dir)),
            ],
            cwd=repo,
        )
    wheels = sorted(str(path) for path in wheels_dir.glob("*.whl"))
    if len(wheels) != len(MENDA_DISTS):
        raise EnvError(f"expected {len(MENDA_DISTS)} wheels in {wheels_dir}, found {wheels}")
    venv = _fresh_venv(uv, root, "menda", python)
    _install(uv, venv, [f"keyring=={keyring_version}", *wheels], cwd=root)
    return venv


def build_baseline(
    uv: str, root: Path, python: str, keyring_version: str, *, reuse: bool = False
) -> Venv:
    existing = _reusable(root, "baseline", reuse)
    if existing is not None:
        return existing
    wheel = build_null_backend_wheel(root / "wheels" / "baseline")
    venv = _fresh_venv(uv, root, "baseline", python)
    _install(uv, venv, [f"keyring=={keyring_version}", str(wheel)], cwd=root)
    return venv


def build_reference(
    uv: str, root: Path, python: str, keyring_version: str, *, reuse: bool = False
) -> Venv:
    """keyring and the reference backend; raises ``EnvError`` on Python < 3.11."""
    if sys.version_info < (3, 11):
        raise EnvError(f"{REFERENCE_REQUIREMENT} needs Python >= 3.11")
    existing = _reusable(root, "reference", reuse)
    if existing is not None:
        return existing
    venv = _fresh_venv(uv, root, "reference", python)
    _install(uv, venv, [f"keyring=={keyring_version}", REFERENCE_REQUIREMENT], cwd=root)
    return venv


def distribution_version(venv: Venv, dist: str) -> str | None:
    code = f"import importlib.metadata as m; print(m.version({dist!r}))"
    done = subprocess.run(
        [str(venv.python), "-c", code], capture_output=True, text=True, check=False
    )
    return done.stdout.strip() if done.returncode == 0 else None
