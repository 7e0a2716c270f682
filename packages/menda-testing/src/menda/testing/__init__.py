"""Local menda cloud emulator, fake CodeArtifact repository and proxy, pytest fixtures.

Not published; also home of ``menda-demo``. The fake repository, proxy and wheel
builder are imported on first use (``trustme`` is slow to import, and the pytest
plugin imports this package in every test run).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from menda.testing._faults import Delay, Drop, Fault, Malformed, NonJSON, Status, Truncate
from menda.testing._records import MintedRegistryToken, RecordedRequest, UserLogin
from menda.testing._tokens import DEFAULT_REGISTRY
from menda.testing.emulator import ENDPOINTS, MendaCloudEmulator
from menda.testing.files import (
    CLI_TOKEN_FILE,
    CLI_TOKEN_KEYS,
    OWN_CACHE_DIR,
    cache_file_name,
    cached_secrets,
    read_cli_token_file,
    write_cache_entry,
    write_cached_login,
    write_legacy_cache_entry,
    write_mendacfg,
)

if TYPE_CHECKING:
    from menda.testing.codeartifact import FakeCodeArtifact
    from menda.testing.proxy import TestCertificateAuthority
    from menda.testing.wheels import build_wheel

__all__ = [
    "CLI_TOKEN_FILE",
    "CLI_TOKEN_KEYS",
    "DEFAULT_REGISTRY",
    "ENDPOINTS",
    "OWN_CACHE_DIR",
    "Delay",
    "Drop",
    "FakeCodeArtifact",
    "Fault",
    "Malformed",
    "MendaCloudEmulator",
    "MintedRegistryToken",
    "NonJSON",
    "RecordedRequest",
    "Status",
    "TestCertificateAuthority",
    "Truncate",
    "UserLogin",
    "build_wheel",
    "cache_file_name",
    "cached_secrets",
    "read_cli_token_file",
    "write_cache_entry",
    "write_cached_login",
    "write_legacy_cache_entry",
    "write_mendacfg",
]

_LAZY = {
    "FakeCodeArtifact": "menda.testing.codeartifact",
    "TestCertificateAuthority": "menda.testing.proxy",
    "build_wheel": "menda.testing.wheels",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
