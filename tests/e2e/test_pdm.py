"""The real PDM (2.29.4), in its own environment with keyring and our backend beside it.

PDM asks keyring in its own process, through unearth (docs/installers.md):
``get_credential(<url>, None)``, and when that gives nothing,
``get_password(<url>, "__token__")``, then both again for the host. The
``__token__`` probe is PDM's, not the user's choice, so a failure must not
come with advice about the username. A source named ``pypi`` replaces PyPI
with the fake public index, so nothing leaves the test world.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from tests.e2e.conftest import (
    E2E,
    ToolEnvironment,
    ToolUnavailable,
    assert_no_outbound_attempt,
    assert_no_secret,
    assert_one_token_and_one_exchange,
    build_tool_environment,
    our_failure_lines,
    output_of,
    tool_env,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# hishel 2 removed what PDM 2.29.4 imports; 1.4.0 is the version its `locked` extra pins.
PDM = ("pdm==2.29.4", "hishel==1.4.0", "keyring==25.7.0")


@pytest.fixture(scope="session")
def pdm_tool() -> ToolEnvironment:
    try:
        return build_tool_environment(PDM)
    except ToolUnavailable as exc:
        pytest.skip(str(exc))


def pdm(
    e2e: E2E, tool: ToolEnvironment, project: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    environment = tool_env(e2e, PDM_CHECK_UPDATE="false")
    return e2e.run(tool.script("pdm"), *args, env=environment, cwd=project)


def write_app(e2e: E2E, project: Path, private_index: str) -> Path:
    """An application (no distribution): menda-hello from the private source."""
    project.mkdir()
    (project / "pyproject.toml").write_text(
        f"""\
[project]
name = "demo-app"
version = "0.1.0"
requires-python = ">=3.10"
dependencies = ["menda-hello"]

[tool.pdm]
distribution = false

# A source named "pypi" replaces PyPI.
[[tool.pdm.source]]
name = "pypi"
url = "{e2e.repo.public_index_url}"

[[tool.pdm.source]]
name = "menda-private"
url = "{private_index}"
include_packages = ["menda-hello"]
""",
        encoding="utf-8",
    )
    return project


def project_python(project: Path) -> Path:
    scripts = project / ".venv" / ("Scripts" if sys.platform == "win32" else "bin")
    return scripts / ("python.exe" if sys.platform == "win32" else "python")


def assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    output = output_of(result)
    assert result.returncode == 0, output
    assert "menda-keyring:" not in output
    assert "Traceback" not in output


@pytest.mark.parametrize("userinfo", [False, True], ids=["plain-url", "aws-at-url"])
def test_pdm_lock_and_install_get_the_private_package_through_keyring(
    e2e: E2E, pdm_tool: ToolEnvironment, userinfo: bool
) -> None:
    # PDM takes either URL form: without userinfo our credential names `aws`.
    e2e.use_env_m2m()
    index = e2e.aws_index_url if userinfo else e2e.index_url
    project = write_app(e2e, e2e.tmp / "app", index)

    locked = pdm(e2e, pdm_tool, project, "lock")
    assert_ok(locked)
    installed = pdm(e2e, pdm_tool, project, "install")
    assert_ok(installed)

    imported = e2e.run(project_python(project), "-c", "import menda_hello, public_dep")
    assert imported.returncode == 0, imported.stderr
    lock = (project / "pdm.lock").read_text(encoding="utf-8")
    assert 'name = "menda-hello"' in lock
    # One access token and one registry token for both processes: install used the cache.
    assert_one_token_and_one_exchange(e2e)
    host = e2e.repo.repository(e2e.index_url).host
    page = "/pypi/menda-plugins/simple/menda-hello/"
    assert e2e.repo.count(host=host, path=page, auth_valid=True) >= 1
    assert_no_outbound_attempt(e2e)
    assert_no_secret(e2e, lock, output_of(locked), output_of(installed))


def test_pdm_without_an_identity_shows_our_line_once_and_no_username_advice(
    e2e: E2E, pdm_tool: ToolEnvironment
) -> None:
    project = write_app(e2e, e2e.tmp / "app", e2e.index_url)

    result = pdm(e2e, pdm_tool, project, "install")

    output = output_of(result)
    assert result.returncode != 0, output
    # Four lookups (URL and host, each with None and the `__token__` probe): one line.
    (line,) = our_failure_lines(result, "ConfigFileNotFoundError")
    assert line.startswith("menda-keyring: Menda config file not found"), output
    assert line in result.stderr
    assert str(e2e.home.config_path) in line
    assert sum(line.startswith("menda-keyring:") for line in output.splitlines()) == 1
    assert "expects the username" not in output
    assert "__token__" not in output
    assert "Unable to find candidates for menda-hello" in output, output
    assert "Traceback" not in output
    assert e2e.cloud.count() == 0
    assert_no_outbound_attempt(e2e)
