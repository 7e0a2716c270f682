"""The real Poetry (2.5.1), in its own environment with keyring and our backend beside it.

Poetry asks keyring in its own process (docs/installers.md): for a source with
no credentials, ``get_credential(<url>, None)`` and then the host, after its
``poetry-repository-<name>`` and ``python-poetry-check`` probes, which are not
ours. PyPI is replaced by the fake public index as the primary source, so
nothing leaves the test world; the private index is an explicit source whose
URL carries no userinfo, as Poetry needs it.
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
    write_library,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

POETRY = ("poetry==2.5.1", "keyring==25.7.0")
SOURCE = "menda-private"
UPLOADED, VERSION = "menda-uploaded", "0.1.0"


@pytest.fixture(scope="session")
def poetry_tool() -> ToolEnvironment:
    try:
        return build_tool_environment(POETRY)
    except ToolUnavailable as exc:
        pytest.skip(str(exc))


def poetry(
    e2e: E2E, tool: ToolEnvironment, project: Path, *args: str, **env: str | None
) -> subprocess.CompletedProcess[str]:
    environment = tool_env(e2e, POETRY_VIRTUALENVS_IN_PROJECT="true", **env)
    return e2e.run(tool.script("poetry"), *args, "--no-interaction", env=environment, cwd=project)


def write_app(e2e: E2E, project: Path, private_index: str) -> Path:
    """A dependencies-only project: menda-hello from the private source, the rest from "PyPI"."""
    project.mkdir()
    (project / "pyproject.toml").write_text(
        f"""\
[tool.poetry]
package-mode = false

[tool.poetry.dependencies]
python = ">=3.10"
menda-hello = {{ version = "*", source = "{SOURCE}" }}

# Stands in for PyPI: a primary source turns the implicit PyPI off.
[[tool.poetry.source]]
name = "fake-pypi"
url = "{e2e.repo.public_index_url}"
priority = "primary"

[[tool.poetry.source]]
name = "{SOURCE}"
url = "{private_index}"
priority = "explicit"
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


def private_page_auths(e2e: E2E) -> int:
    host = e2e.repo.repository(e2e.index_url).host
    return e2e.repo.count(
        host=host, path="/pypi/menda-plugins/simple/menda-hello/", auth_valid=True
    )


def upload_posts(e2e: E2E, status: int) -> int:
    repository = e2e.repo.repository(e2e.index_url)
    return e2e.repo.count(
        host=repository.host, method="POST", path=f"/pypi/{repository.name}/", status=status
    )


def test_poetry_lock_and_install_get_the_private_package_through_keyring(
    e2e: E2E, poetry_tool: ToolEnvironment
) -> None:
    e2e.use_env_m2m()
    project = write_app(e2e, e2e.tmp / "app", e2e.index_url)

    locked = poetry(e2e, poetry_tool, project, "lock")
    assert_ok(locked)
    installed = poetry(e2e, poetry_tool, project, "install")
    assert_ok(installed)

    imported = e2e.run(project_python(project), "-c", "import menda_hello, public_dep")
    assert imported.returncode == 0, imported.stderr
    lock = (project / "poetry.lock").read_text(encoding="utf-8")
    assert 'name = "menda-hello"' in lock
    assert e2e.index_url.rstrip("/") in lock  # the source, recorded without credentials
    # One access token and one registry token for both processes: install used the cache.
    assert_one_token_and_one_exchange(e2e)
    assert private_page_auths(e2e) >= 1
    assert_no_outbound_attempt(e2e)
    assert_no_secret(e2e, lock, output_of(locked), output_of(installed))


def test_poetry_without_an_identity_shows_our_line_once(
    e2e: E2E, poetry_tool: ToolEnvironment
) -> None:
    project = write_app(e2e, e2e.tmp / "app", e2e.index_url)

    result = poetry(e2e, poetry_tool, project, "lock")

    output = output_of(result)
    assert result.returncode != 0, output
    # Poetry drops log records of other loggers; our line is written to stderr directly.
    (line,) = our_failure_lines(result, "ConfigFileNotFoundError")
    assert line.startswith("menda-keyring: Menda config file not found"), output
    assert line in result.stderr
    assert str(e2e.home.config_path) in line
    assert f"Source ({SOURCE}): Authorization error accessing" in output, output
    assert "expects the username" not in output
    assert "Traceback" not in output
    assert e2e.cloud.count() == 0
    assert_no_outbound_attempt(e2e)


def test_poetry_source_url_with_aws_userinfo_never_asks_keyring(
    e2e: E2E, poetry_tool: ToolEnvironment
) -> None:
    # The form uv needs (`https://aws@…`) makes Poetry send `aws:` with an empty
    # password instead of asking keyring: Poetry users must leave the userinfo out.
    e2e.use_env_m2m()
    project = write_app(e2e, e2e.tmp / "app", e2e.aws_index_url)

    result = poetry(e2e, poetry_tool, project, "lock")

    output = output_of(result)
    assert result.returncode != 0, output
    assert "Authorization error accessing" in output, output
    assert e2e.cloud.count() == 0
    assert private_page_auths(e2e) == 0


@pytest.mark.parametrize("username", ["aws", None], ids=["username-aws", "no-username"])
def test_poetry_publish_uploads_with_a_token_from_keyring(
    e2e: E2E, poetry_tool: ToolEnvironment, username: str | None
) -> None:
    # Poetry first asks keyring for `poetry-repository-<name>` (not ours), then
    # `get_credential(<upload url>, <username>)`: with no username configured,
    # it takes `aws` from our credential.
    e2e.use_env_m2m()
    project = write_library(
        e2e.tmp / "lib",
        UPLOADED,
        VERSION,
        requires="poetry-core>=2,<3",
        backend="poetry.core.masonry.api",
    )
    upload_url = e2e.repo.repository(e2e.index_url).upload_url

    result = poetry(
        e2e,
        poetry_tool,
        project,
        "publish",
        "--build",
        "--repository",
        SOURCE,
        POETRY_REPOSITORIES_MENDA_PRIVATE_URL=upload_url,
        POETRY_HTTP_BASIC_MENDA_PRIVATE_USERNAME=username,
    )

    assert_ok(result)
    output = output_of(result)
    assert f"Publishing {UPLOADED} ({VERSION}) to {SOURCE}" in output, output
    assert e2e.repo.files(e2e.index_url, UPLOADED) == [
        f"menda_uploaded-{VERSION}-py3-none-any.whl",
        f"menda_uploaded-{VERSION}.tar.gz",
    ]
    assert upload_posts(e2e, 200) == 2
    assert upload_posts(e2e, 401) == 0
    assert e2e.cloud.count("token") == 1
    assert e2e.cloud.count("registry", status=200, identity="ci-bot") == 1
    assert e2e.cloud.count("registry") == 1
    assert_no_outbound_attempt(e2e)
    assert_no_secret(e2e, output)


def test_poetry_publish_without_an_identity_shows_our_line_once(
    e2e: E2E, poetry_tool: ToolEnvironment
) -> None:
    project = write_library(
        e2e.tmp / "lib",
        UPLOADED,
        VERSION,
        requires="poetry-core>=2,<3",
        backend="poetry.core.masonry.api",
    )
    upload_url = e2e.repo.repository(e2e.index_url).upload_url

    result = poetry(
        e2e,
        poetry_tool,
        project,
        "publish",
        "--build",
        "--repository",
        SOURCE,
        POETRY_REPOSITORIES_MENDA_PRIVATE_URL=upload_url,
        POETRY_HTTP_BASIC_MENDA_PRIVATE_USERNAME="aws",
    )

    output = output_of(result)
    assert result.returncode != 0, output
    (line,) = our_failure_lines(result, "ConfigFileNotFoundError")
    assert line.startswith("menda-keyring: Menda config file not found"), output
    assert "Traceback" not in output
    assert e2e.repo.files(e2e.index_url, UPLOADED) == []
    assert upload_posts(e2e, 200) == 0
    assert e2e.cloud.count() == 0


def test_our_packages_are_installed_in_the_tool_environment_as_users_get_them(
    poetry_tool: ToolEnvironment,
) -> None:
    # Built wheels, not editable installs of the checkout that built the cached venv
    # (that checkout may be gone by the next run).
    code = "import menda.core_auth, menda.cloud_client, menda.error, menda.keyring as k;"
    code += "print(*(m.__path__[0] for m in (menda.core_auth, menda.cloud_client, menda.error, k)))"
    python = poetry_tool.script("python")
    result = subprocess.run([python, "-c", code], capture_output=True, text=True, check=False)

    assert result.returncode == 0, result.stderr
    for path in result.stdout.split():
        assert Path(path).is_relative_to(poetry_tool.venv), path
    assert not list(poetry_tool.venv.rglob("_editable_impl_*.pth"))
