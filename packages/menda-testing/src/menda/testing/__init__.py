"""Local menda cloud emulator, fake CodeArtifact repository and proxy, pytest fixtures.

Not published; also home of ``menda-demo``. The fake repository, proxy and wheel
builder are imported on first use (``trustme`` is slow to import, and the pytest
plugin imports this package in every test run), and so are the pytest plugin's
helpers (``menda-demo`` and ``python -m menda.testing serve`` need no pytest).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from menda.testing._faults import (
    Delay,
    Drop,
    Fault,
    Malformed,
    NonJSON,
    Status,
    Truncate,
    fault_from_dict,
    fault_to_dict,
)
from menda.testing._records import (
    MintedRegistryToken,
    RecordedRequest,
    UserLogin,
    format_rfc3339,
)
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
    from menda.testing._test_ca import TestCertificateAuthority
    from menda.testing.codeartifact import FakeCodeArtifact
    from menda.testing.pytest_plugin import FakeClock, MendaHome, console_script, unused_port
    from menda.testing.wheels import build_wheel

__all__ = [
    "CLI_TOKEN_FILE",
    "CLI_TOKEN_KEYS",
    "DEFAULT_REGISTRY",
    "ENDPOINTS",
    "OWN_CACHE_DIR",
    "Delay",
    "Drop",
    "FakeClock",
    "FakeCodeArtifact",
    "Fault",
    "Malformed",
    "MendaCloudEmulator",
    "MendaHome",
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
    "console_script",
    "fault_from_dict",
    "fault_to_dict",
    "format_rfc3339",
    "read_cli_token_file",
    "unused_port",
    "write_cache_entry",
    "write_cached_login",
    "write_legacy_cache_entry",
    "write_mendacfg",
]

_LAZY = {
    "FakeCodeArtifact": "menda.testing.codeartifact",
    "TestCertificateAuthority": "menda.testing._test_ca",
    "build_wheel": "menda.testing.wheels",
    "FakeClock": "menda.testing.pytest_plugin",
    "MendaHome": "menda.testing.pytest_plugin",
    "console_script": "menda.testing.pytest_plugin",
    "unused_port": "menda.testing.pytest_plugin",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
