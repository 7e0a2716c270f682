"""Tiny pure-Python wheels, written by hand with zipfile, for the fake repositories.

No build backend runs: the wheel is a zip of a module, ``METADATA``, ``WHEEL``
and ``RECORD`` (sha256, urlsafe base64 without padding), which is all that
``uv pip install`` and ``pip install`` need. The archive is deterministic:
the same arguments give the same bytes, hence the same ``#sha256=``.
"""

from __future__ import annotations

import base64
import hashlib
import re
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

__all__ = ["build_wheel", "normalize_name", "wheel_filename"]

_WHEEL_TAG = "py3-none-any"
# 1980-01-01 is the earliest date a zip entry can hold; fixed for reproducibility.
_EPOCH = (1980, 1, 1, 0, 0, 0)
_NAME_RE = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)


def normalize_name(name: str) -> str:
    """The PEP 503 normalised project name: lower case, runs of ``-_.`` become ``-``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _escape(component: str) -> str:
    # Binary distribution format: runs of -_. become one underscore.
    return re.sub(r"[-_.]+", "_", component).lower()


def wheel_filename(name: str, version: str) -> str:
    """The file name of the wheel :func:`build_wheel` writes for ``name`` and ``version``."""
    return f"{_escape(name)}-{version.replace('-', '_')}-{_WHEEL_TAG}.whl"


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode("ascii")


def build_wheel(
    dest_dir: Path | str,
    name: str,
    version: str,
    *,
    dependencies: Iterable[str] = (),
    modules: Mapping[str, str] | None = None,
    requires_python: str | None = None,
) -> Path:
    """Write ``<name>-<version>-py3-none-any.whl`` into ``dest_dir`` and return its path.

    ``dependencies`` become ``Requires-Dist`` lines (PEP 508 strings).
    ``modules`` maps paths inside the wheel (``"pkg/__init__.py"``) to their
    text; by default one package named after the project holds ``__version__``.
    """
    if not _NAME_RE.match(name):
        msg = f"not a valid project name: {name!r}"
        raise ValueError(msg)
    if not version or any(c in version for c in "/\\ "):
        msg = f"not a valid version: {version!r}"
        raise ValueError(msg)
    import_name = _escape(name)
    if modules is None:
        modules = {f"{import_name}/__init__.py": f'__version__ = "{version}"\n'}
    dist_info = f"{import_name}-{version.replace('-', '_')}.dist-info"

    metadata_lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    metadata_lines.append(f"Summary: {name}, a test package built by menda-testing")
    if requires_python:
        metadata_lines.append(f"Requires-Python: {requires_python}")
    metadata_lines.extend(f"Requires-Dist: {dep}" for dep in dependencies)
    wheel_lines = [
        "Wheel-Version: 1.0",
        "Generator: menda-testing",
        "Root-Is-Purelib: true",
        f"Tag: {_WHEEL_TAG}",
    ]

    entries: list[tuple[str, bytes]] = []
    for path, text in sorted(modules.items()):
        if path.startswith("/") or ".." in path.split("/"):
            msg = f"module path must be relative inside the wheel: {path!r}"
            raise ValueError(msg)
        entries.append((path, text.encode("utf-8")))
    entries.append((f"{dist_info}/METADATA", ("\n".join(metadata_lines) + "\n").encode()))
    entries.append((f"{dist_info}/WHEEL", ("\n".join(wheel_lines) + "\n").encode()))
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in entries)
    record += f"{dist_info}/RECORD,,\n"
    entries.append((f"{dist_info}/RECORD", record.encode()))

    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / wheel_filename(name, version)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, data in entries:
            info = zipfile.ZipInfo(path, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return target
