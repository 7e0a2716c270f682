"""The baseline's plugin: a keyring backend that knows nothing, as a wheel built in-process.

Plain keyring is no fair baseline: on a headless machine it finds no viable
backend and spends its time printing a ``NoKeyringError`` traceback. The
cheapest honest plugin imports only keyring, has a constant priority (9, like
menda-keyring) and answers ``None`` at once. It is registered exactly as
menda-keyring is, through a module-valued ``keyring.backends`` entry point.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

__all__ = ["DIST_NAME", "ENTRY_POINT_NAME", "MODULE_NAME", "VERSION", "build_null_backend_wheel"]

DIST_NAME = "menda-bench-null-keyring"
MODULE_NAME = "menda_bench_null_keyring"
ENTRY_POINT_NAME = "menda-bench-null"
VERSION = "1.0"

MODULE_SOURCE = '''\
"""A keyring backend that answers None for everything: the benchmark's baseline plugin."""

from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError, PasswordSetError


class NullKeyring(KeyringBackend):
    priority = 9

    def get_password(self, service, username):
        return None

    def set_password(self, service, username, password):
        raise PasswordSetError("the null keyring stores nothing")

    def delete_password(self, service, username):
        raise PasswordDeleteError("the null keyring stores nothing")
'''

# A fixed timestamp keeps the wheel byte-for-byte reproducible.
_DATE_TIME = (2020, 1, 1, 0, 0, 0)


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode("ascii")


def _files() -> dict[str, bytes]:
    dist_info = f"{MODULE_NAME}-{VERSION}.dist-info"
    metadata = (
        "Metadata-Version: 2.1\n"
        f"Name: {DIST_NAME}\n"
        f"Version: {VERSION}\n"
        "Summary: A keyring backend that answers None (menda-keyring benchmark baseline)\n"
        "Requires-Dist: keyring\n"
    )
    wheel = (
        "Wheel-Version: 1.0\n"
        "Generator: menda-keyring benchmarks\n"
        "Root-Is-Purelib: true\n"
        "Tag: py3-none-any\n"
    )
    entry_points = f"[keyring.backends]\n{ENTRY_POINT_NAME} = {MODULE_NAME}\n"
    return {
        f"{MODULE_NAME}.py": MODULE_SOURCE.encode(),
        f"{dist_info}/METADATA": metadata.encode(),
        f"{dist_info}/WHEEL": wheel.encode(),
        f"{dist_info}/entry_points.txt": entry_points.encode(),
    }


def build_null_backend_wheel(out_dir: Path) -> Path:
    """Write ``menda_bench_null_keyring-1.0-py3-none-any.whl`` into ``out_dir`` and return it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = _files()
    record_name = f"{MODULE_NAME}-{VERSION}.dist-info/RECORD"
    record_lines = [f"{name},{_record_hash(data)},{len(data)}" for name, data in files.items()]
    record_lines.append(f"{record_name},,")
    files[record_name] = ("\n".join(record_lines) + "\n").encode()

    path = out_dir / f"{MODULE_NAME}-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=_DATE_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return path
