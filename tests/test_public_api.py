"""Each package's public names: ``__all__`` is pinned here (as httpx pins its own), every
name exists, and the package README's "## API" table lists exactly those names, one row
each. Adding or removing a public name means changing this file and the README."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

PACKAGES = Path(__file__).resolve().parents[1] / "packages"

PUBLIC: dict[str, list[str]] = {
    "menda.error": [
        "ConfigFileNotFoundError",
        "InvalidConfigError",
        "MendaAuthError",
        "MendaCloudAPIError",
        "MendaConfigError",
        "MendaError",
        "MissingHostError",
        "MissingM2MCredentialsError",
        "NoCachedLoginError",
        "ProfileNotFoundError",
    ],
    "menda.core_auth": [
        "ACCESS_TOKEN_MARGIN",
        "ENV_CLIENT_ID",
        "ENV_CLIENT_SECRET",
        "ENV_CONFIG_FILE",
        "ENV_HOST",
        "ENV_LOG_LEVEL",
        "ENV_PROFILE_ID",
        "ENV_TIMEOUT",
        "ENV_TOKEN_CACHE_DIR",
        "REGISTRY_TOKEN_MARGIN",
        "AccessToken",
        "CliTokenFile",
        "Identity",
        "Login",
        "LoginFileState",
        "Profile",
        "RegistryToken",
        "TokenCache",
        "add_u2m_profile",
        "default_cache_dir",
        "default_config_path",
        "format_time",
        "load_profile",
        "normalize_host",
        "parse_time",
        "registry_cache_key",
        "resolve_identity",
        "set_clock",
        "utcnow",
    ],
    "menda.cloud_client": [
        "DeviceAuthorization",
        "DeviceLogin",
        "MendaCloudClient",
        "RegistryCredential",
        "RegistryRequest",
        "WhoAmI",
        "__version__",
    ],
    "menda.keyring": ["__version__"],
    "menda.testing": [
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
    ],
}

#: READMEs whose API section is not a table yet (strict: the test fails once it is one).
NOT_A_TABLE: dict[str, str] = {}

# The first cell of a table row: one name in backticks, maybe with its signature.
_ROW = re.compile(r"^\|\s*`(?P<name>[A-Za-z_][A-Za-z0-9_]*)[^`]*`\s*\|")


def _module(name: str) -> ModuleType:
    return importlib.import_module(name)


def _readme(package: str) -> Path:
    return PACKAGES / ("menda-" + package.split(".")[1].replace("_", "-")) / "README.md"


def api_table_names(readme: Path) -> list[str]:
    """The names in the first table of the README's "## API" section, in order.

    The section runs to the next "## " heading; tables under its "### " headings
    (a class's members, a command's options) are not the package's names.
    """
    text = readme.read_text(encoding="utf-8")
    assert "\n## API\n" in text, f"{readme} has no '## API' section"
    section = text.split("\n## API\n", 1)[1].split("\n## ", 1)[0]
    lines = section.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("|")), None)
    assert start is not None, f"the API section of {readme} has no table"
    table = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        table.append(line)
    names = []
    for row in table[2:]:  # after the header and the |---| line
        match = _ROW.match(row)
        assert match is not None, f"{readme}: an API row must start with one `name`: {row!r}"
        names.append(match["name"])
    return names


@pytest.mark.parametrize("package", sorted(PUBLIC))
def test_all_is_exactly_the_documented_public_names(package: str) -> None:
    exported = _module(package).__all__
    assert sorted(exported) == sorted(PUBLIC[package])
    assert len(set(exported)) == len(exported)


@pytest.mark.parametrize("package", sorted(PUBLIC))
def test_every_public_name_exists(package: str) -> None:
    module = _module(package)
    missing = [name for name in PUBLIC[package] if getattr(module, name, None) is None]
    assert missing == []


@pytest.mark.parametrize(
    "package",
    [
        pytest.param(name, marks=pytest.mark.xfail(reason=NOT_A_TABLE[name], strict=True))
        if name in NOT_A_TABLE
        else name
        for name in sorted(PUBLIC)
    ],
)
def test_readme_api_table_lists_every_public_name_once(package: str) -> None:
    documented = api_table_names(_readme(package))
    assert sorted(documented) == sorted(PUBLIC[package])
    assert len(set(documented)) == len(documented)


def test_core_auth_loads_each_name_from_the_module_its_table_says() -> None:
    import menda.core_auth

    table = menda.core_auth._MODULES
    listed = [name for names in table.values() for name in names]
    assert sorted(menda.core_auth.__all__) == sorted(listed)
    assert len(set(listed)) == len(listed)
    for module, names in table.items():
        defined = importlib.import_module(f"menda.core_auth.{module}")
        for name in names:
            assert getattr(defined, name) is getattr(menda.core_auth, name), name


def test_importing_core_auth_alone_loads_none_of_its_modules() -> None:
    probe = (
        "import json, sys\n"
        "import menda.core_auth\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('menda.core_auth.'))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
