"""Failures as users meet them through the real `uv`: one actionable line, no traceback.

uv shows keyring's stderr on the terminal and treats a non-zero exit as "no
credentials", so the install fails with uv's own 401 hint, preceded by our line
`menda-keyring: <fixed prefix> ... [<ErrorClass>]` (docs/installers.md,
docs/files.md). uv may call keyring more than once (index URL, then
host), so the line may repeat; every occurrence must be that one line.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from menda.testing import Status

if TYPE_CHECKING:
    from tests.e2e.conftest import E2E

pytestmark = pytest.mark.e2e

PACKAGE = "menda-hello"
CLIENT_ID, CLIENT_SECRET = "ci-bot", "e2e-client-secret-9f3a"  # as tests/e2e/conftest.py
LINE_PREFIX = "menda-keyring: "


def our_lines(
    result: subprocess.CompletedProcess[str], message: str, error_class: str
) -> list[str]:
    """Check the failure as the user sees it; return our lines from uv's stderr."""
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output
    assert 'File "' not in output
    lines = [line for line in result.stderr.splitlines() if line.startswith(LINE_PREFIX)]
    assert lines, f"no {LINE_PREFIX!r} line in uv's stderr:\n{result.stderr}"
    for line in lines:
        assert line.startswith(LINE_PREFIX + message), line
        assert line.endswith(f" [{error_class}]"), line
    # The class name appears only on our lines: nothing else (a traceback, a repr) leaked.
    assert sum(error_class in line for line in output.splitlines()) == len(lines)
    assert not any(LINE_PREFIX.strip() in line for line in result.stdout.splitlines())
    return lines


def assert_package_not_installed(e2e: E2E, python: Path) -> None:
    result = e2e.run(python, "-c", "import menda_hello")
    assert result.returncode != 0


def test_uv_without_config_file_says_config_not_found(e2e: E2E) -> None:
    python = e2e.venv()

    result = e2e.uv_pip_install(python)

    lines = our_lines(result, "Menda config file not found", "ConfigFileNotFoundError")
    assert len(set(lines)) == 1
    assert str(e2e.home.config_path) in lines[0]
    assert "menda auth configure" in lines[0]
    assert_package_not_installed(e2e, python)
    assert e2e.cloud.requests == []


def test_uv_with_unknown_profile_names_it(e2e: E2E) -> None:
    e2e.home.write_config({"default": {"host": e2e.cloud.url, "auth_type": "u2m"}})
    e2e.auth_env = {"MENDA_PROFILE_ID": "nope"}
    python = e2e.venv()

    result = e2e.uv_pip_install(python)

    lines = our_lines(result, "No profile 'nope'", "ProfileNotFoundError")
    assert len(set(lines)) == 1
    assert "'default'" in lines[0]  # the profiles that do exist
    assert_package_not_installed(e2e, python)
    assert e2e.cloud.requests == []


def test_uv_with_u2m_profile_never_logged_in_says_run_login(e2e: E2E) -> None:
    e2e.home.write_config({"default": {"host": e2e.cloud.url, "auth_type": "u2m"}})
    python = e2e.venv()

    result = e2e.uv_pip_install(python)

    lines = our_lines(result, "No valid cached token for profile 'default'", "NoCachedLoginError")
    assert len(set(lines)) == 1
    assert "menda auth login" in lines[0]
    assert_package_not_installed(e2e, python)
    assert e2e.cloud.requests == []


def test_uv_when_menda_cloud_refuses_the_domain_shows_the_403(e2e: E2E) -> None:
    e2e.use_env_m2m()
    e2e.cloud.add_m2m_client(CLIENT_ID, CLIENT_SECRET, domains=["other"])
    python = e2e.venv()

    result = e2e.uv_pip_install(python)

    lines = our_lines(result, "", "MendaCloudAPIError")
    for line in lines:
        # Only the request id differs between keyring calls.
        assert "/api/v1/auth/registry/token" in line
        assert "403" in line
        assert "ask your Menda administrator" in line
    assert CLIENT_SECRET not in result.stdout + result.stderr
    assert_package_not_installed(e2e, python)
    # uv asks again with the host: that call is answered from the failure memory, so
    # menda cloud refused one exchange in all, and the user reads the same line.
    assert len(set(lines)) == 1
    assert e2e.cloud.count("registry", status=403) == e2e.cloud.count("registry") == 1
    assert e2e.cloud.count("token", status=200) == e2e.cloud.count("token") == 1


def test_uv_when_menda_cloud_is_down_fails_with_one_line(e2e: E2E) -> None:
    e2e.use_env_m2m()
    url = e2e.cloud.url
    e2e.cloud.stop()
    python = e2e.venv()

    result = e2e.uv_pip_install(python)

    lines = our_lines(result, "", "MendaCloudAPIError")
    for line in lines:
        assert "/api/v1/auth/oauth2/token" in line
        assert url in line
    assert CLIENT_SECRET not in result.stdout + result.stderr
    assert_package_not_installed(e2e, python)


def test_uv_with_other_username_gets_hint_and_no_request(e2e: E2E) -> None:
    e2e.use_env_m2m()
    python = e2e.venv()

    result = e2e.uv_pip_install(
        python, index_url=e2e.index_url.replace("https://", "https://bob@", 1)
    )

    assert result.returncode != 0
    assert "Traceback" not in result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith(LINE_PREFIX)]
    assert lines
    for line in lines:
        assert "expects the username 'aws', not 'bob'" in line
    assert_package_not_installed(e2e, python)
    assert e2e.cloud.requests == []


def test_uv_install_survives_one_transient_503_from_menda_cloud(e2e: E2E) -> None:
    e2e.use_env_m2m()
    e2e.cloud.inject("registry", Status(503))
    python = e2e.venv()

    result = e2e.uv_pip_install(python)

    assert result.returncode == 0, result.stderr
    assert LINE_PREFIX not in result.stderr
    assert e2e.run(python, "-c", "import menda_hello").returncode == 0
    assert e2e.cloud.count("registry", status=503) == 1
    assert e2e.cloud.count("registry", status=200) == 1
    assert e2e.cloud.count("registry") == 2
    assert e2e.cloud.count("token") == 1
