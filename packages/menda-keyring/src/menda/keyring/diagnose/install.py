"""What is installed: Python, the Menda distributions, and whether keyring picks our backend."""

from __future__ import annotations

import platform
import sys
from typing import TYPE_CHECKING, Any

from menda.keyring.diagnose.common import error_fact

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["DISTRIBUTIONS", "backend", "versions"]

#: Distributions whose versions the report lists.
DISTRIBUTIONS = (
    "keyring",
    "menda-keyring",
    "menda-core-auth",
    "menda-cloud-client",
    "menda-error",
)


def versions() -> dict[str, Any]:
    """Python, platform and the version of each distribution (None when not installed)."""
    from importlib import metadata

    packages: dict[str, str | None] = {}
    for name in DISTRIBUTIONS:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    return {
        "python": f"{platform.python_version()} ({platform.python_implementation()})",
        "executable": sys.executable,
        "platform": platform.platform(),
        "packages": packages,
    }


def _describe(backend: object) -> str:
    cls = type(backend)
    priority: object
    try:
        priority = getattr(backend, "priority", None)
    except Exception:  # keyring's priority may raise for a backend that is not viable
        priority = "not viable"
    return f"{cls.__module__}.{cls.__qualname__} (priority {priority})"


def backend(environ: Mapping[str, str]) -> dict[str, Any]:
    """Whether ``keyring.get_keyring()`` answers through our backend, and if not, why."""
    from importlib import metadata

    import keyring
    from keyring.backends.chainer import ChainerBackend
    from keyring.util import platform_
    from menda.keyring.backend import MendaCodeArtifactKeyring

    report: dict[str, Any] = {}
    entry_points = metadata.entry_points(group="keyring.backends")
    report["registered"] = any(
        ep.value.split(":")[0] == "menda.keyring.backend" for ep in entry_points
    )
    report["config_file"] = str(platform_.config_root() / "keyringrc.cfg")
    env_backend = environ.get("PYTHON_KEYRING_BACKEND")
    report["python_keyring_backend"] = env_backend
    try:
        selected = keyring.get_keyring()
    except Exception as exc:  # a broken keyringrc.cfg or PYTHON_KEYRING_BACKEND
        report["selected"] = None
        report["used"] = "no"
        report["error"] = error_fact(exc)
        report["reason"] = f"keyring could not load a backend: {exc}"
        return report
    report["selected"] = _describe(selected)
    if isinstance(selected, MendaCodeArtifactKeyring):
        report["used"] = "directly"
        return report
    if isinstance(selected, ChainerBackend):
        chain = list(selected.backends)
        report["chain"] = [_describe(b) for b in chain]
        ours = [i for i, b in enumerate(chain) if isinstance(b, MendaCodeArtifactKeyring)]
        if ours:
            report["used"] = "through the chainer"
            report["position"] = ours[0] + 1
            return report
    report["used"] = "no"
    reasons = []
    if env_backend:
        reasons.append(f"PYTHON_KEYRING_BACKEND={env_backend} selects another backend")
    if (platform_.config_root() / "keyringrc.cfg").is_file():
        reasons.append(f"{report['config_file']} may name another default-keyring")
    if not report["registered"]:
        reasons.append(
            "the keyring.backends entry point of menda-keyring is not installed in "
            f"this Python ({sys.executable}): install menda-keyring next to keyring"
        )
    if not reasons:
        reasons.append("another backend was chosen over it")
    report["reason"] = "; ".join(reasons)
    return report
