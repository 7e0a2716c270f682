"""The real pip (26.3) installs from the fake CodeArtifact with a token from our backend.

pip asks keyring only after a 401: in ``subprocess`` mode it runs
``keyring --mode=creds --output=json get <url> [<username>]`` (a ``keyring``
outside pip's environment, see :func:`_keyring_tool_bin`), in ``import`` mode it calls
``keyring.get_credential(url, username)`` in its own process, where our
backend is installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.e2e.conftest import E2E

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent


def _keyring_tool_bin(e2e: E2E) -> Path:
    """A ``bin`` holding the workspace's ``keyring``, like ``uv tool install keyring``.

    pip's subprocess provider skips a ``keyring`` that lives in pip's own
    scripts directory (it would be itself, without keyring's isolation), so
    the one in the workspace venv's ``bin`` is never used when pip runs from
    that venv. Users install keyring as a tool, outside their project's venv;
    a copy of the workspace's script (its shebang still points at the
    workspace interpreter, which has our backend) stands in for that.
    """
    tool_bin = e2e.tmp / "tool-bin"
    if not tool_bin.exists():
        tool_bin.mkdir()
        for name in ("keyring", "keyring.exe"):
            if (BIN / name).exists():
                shutil.copy2(BIN / name, tool_bin / name)
    return tool_bin


def _pip_install(
    e2e: E2E,
    provider: str,
    index_url: str,
    *,
    target: Path | None = None,
    package: str = "menda-hello",
) -> subprocess.CompletedProcess[str]:
    target = target if target is not None else e2e.tmp / "t"
    env = e2e.env()
    if provider == "subprocess":
        env["PATH"] = os.pathsep.join([str(_keyring_tool_bin(e2e)), env["PATH"]])
    return e2e.run(
        sys.executable,
        "-m",
        "pip",
        "install",
        "--verbose",
        "--no-input",
        "--disable-pip-version-check",
        "--cert",
        e2e.repo.ca_pem_path,
        "--target",
        target,
        "--keyring-provider",
        provider,
        "--index-url",
        index_url,
        "--extra-index-url",
        e2e.repo.public_index_url,
        package,
        env=env,
    )


def _installed_version(target: Path, module: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", f"import {module}; print({module}.__version__)"],
        env={"PYTHONPATH": str(target)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _project_page(e2e: E2E, project: str = "menda-hello") -> tuple[str, str]:
    repository = e2e.repo.repository(e2e.index_url)
    return repository.host, f"/pypi/{repository.name}/simple/{project}/"


def _tokens(e2e: E2E) -> list[str]:
    return [minted.token for minted in e2e.cloud.minted_registry_tokens]


def _output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


def _assert_installed_with_one_token(
    e2e: E2E, result: subprocess.CompletedProcess[str], provider: str
) -> None:
    output = _output(result)
    assert result.returncode == 0, output
    if provider == "subprocess":
        cli = _keyring_tool_bin(e2e) / "keyring"
        assert f"Keyring provider set: subprocess with executable {cli}" in output, output
    else:
        assert "Keyring provider set: import" in output, output
    target = e2e.tmp / "t"
    assert _installed_version(target, "menda_hello") == "1.0.0"
    assert _installed_version(target, "public_dep") == "1.2.0"
    # A cold cache: one access token, one registry token.
    assert e2e.cloud.count(endpoint="token") == 1
    assert e2e.cloud.count(endpoint="registry") == 1
    (registry_request,) = [r for r in e2e.cloud.requests if r.endpoint == "registry"]
    assert "menda-keyring/" in (registry_request.user_agent or "")
    tokens = _tokens(e2e)
    assert len(tokens) == 1
    assert tokens[0] not in output
    # pip asked keyring only after the repository refused it, then got in.
    host, page = _project_page(e2e)
    statuses = e2e.repo.requests.statuses(host=host, path=page)
    assert statuses[:1] == [401], statuses
    assert statuses[-1] == 200, statuses
    # One refusal in all (the first try, with no password): the token was never refused.
    assert e2e.repo.count(host=host, method="GET", status=401) == 1
    assert e2e.repo.count(host=host, path=page, status=200, auth_valid=True) >= 1
    assert "Traceback" not in output


def test_pip_subprocess_provider_installs_with_a_token_from_the_keyring_cli(e2e: E2E) -> None:
    e2e.use_env_m2m()

    result = _pip_install(e2e, "subprocess", e2e.aws_index_url)

    _assert_installed_with_one_token(e2e, result, "subprocess")


def test_pip_import_provider_installs_with_a_token_from_the_backend_in_process(
    e2e: E2E,
) -> None:
    e2e.use_env_m2m()

    result = _pip_install(e2e, "import", e2e.aws_index_url)

    _assert_installed_with_one_token(e2e, result, "import")


def test_pip_subprocess_provider_without_a_username_takes_aws_from_the_json(e2e: E2E) -> None:
    e2e.use_env_m2m()

    result = _pip_install(e2e, "subprocess", e2e.index_url)

    _assert_installed_with_one_token(e2e, result, "subprocess")


def test_pip_import_provider_without_a_username_installs(e2e: E2E) -> None:
    e2e.use_env_m2m()

    result = _pip_install(e2e, "import", e2e.index_url)

    _assert_installed_with_one_token(e2e, result, "import")


def test_second_pip_run_reuses_the_cached_registry_token(e2e: E2E) -> None:
    e2e.use_env_m2m()
    first = _pip_install(e2e, "subprocess", e2e.aws_index_url)
    assert first.returncode == 0, _output(first)

    second = _pip_install(e2e, "import", e2e.aws_index_url, target=e2e.tmp / "t2")

    assert second.returncode == 0, _output(second)
    assert _installed_version(e2e.tmp / "t2", "menda_hello") == "1.0.0"
    assert e2e.cloud.count(endpoint="token") == 1
    assert e2e.cloud.count(endpoint="registry") == 1


def test_pip_subprocess_provider_without_config_fails_on_401_without_traceback(
    e2e: E2E,
) -> None:
    result = _pip_install(e2e, "subprocess", e2e.aws_index_url)

    output = _output(result)
    assert result.returncode != 0, output
    assert "Keyring provider set: subprocess with executable" in output, output
    # pip captures the keyring CLI's stderr, so our line is not shown; keyring's
    # exit 1 made pip go on without credentials.
    assert not (e2e.tmp / "t" / "menda_hello").exists()
    assert "Traceback" not in output
    assert "401" in output, output
    assert e2e.cloud.count() == 0
    host, _ = _project_page(e2e)
    assert e2e.repo.count(host=host, method="GET", status=200) == 0


def test_pip_import_provider_without_config_shows_our_line_and_keeps_keyring_on(
    e2e: E2E,
) -> None:
    result = _pip_install(e2e, "import", e2e.aws_index_url)

    output = _output(result)
    assert result.returncode != 0, output
    assert not (e2e.tmp / "t" / "menda_hello").exists()
    assert "Keyring provider set: import" in output, output
    # Our backend returned None instead of raising: pip did not switch keyring off.
    assert "Keyring is skipped due to an exception" not in output, output
    assert "Traceback" not in output
    # Our line is written directly, once, whatever logging pip configured.
    (line,) = [ln for ln in result.stderr.splitlines() if "Menda config file not found" in ln]
    assert line.startswith("menda-keyring: Menda config file not found"), output
    assert "[ConfigFileNotFoundError]" in result.stderr
    assert "401" in output, output
    assert e2e.cloud.count() == 0
