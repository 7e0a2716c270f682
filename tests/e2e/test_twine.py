"""The real twine (7.0) uploads to the fake CodeArtifact with a token from our backend.

With no ``TWINE_USERNAME``/``TWINE_PASSWORD`` and no ``.pypirc``, twine asks
keyring in its own process: ``get_credential(url, None).username``, then
``get_password(url, username)``. The workspace interpreter has our backend.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from menda.testing import build_wheel

if TYPE_CHECKING:
    from tests.e2e.conftest import E2E

pytestmark = pytest.mark.e2e

PROJECT, VERSION = "menda-uploaded", "0.1.0"


def _twine_upload(
    e2e: E2E, wheel: Path, *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    upload_url = e2e.repo.repository(e2e.index_url).upload_url
    # twine logs through rich, which wraps at the terminal width (80 without
    # one): a wide COLUMNS keeps each message on one line for the assertions.
    env = dict(env) if env is not None else e2e.env()
    env["COLUMNS"] = "1000"
    return e2e.run(
        sys.executable,
        "-m",
        "twine",
        "--no-color",
        "upload",
        "--non-interactive",
        "--disable-progress-bar",
        "--repository-url",
        upload_url,
        *extra,
        wheel,
        env=env,
    )


def _wheel(e2e: E2E) -> Path:
    return build_wheel(e2e.tmp / "dist", PROJECT, VERSION)


def _output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


def _upload_posts(e2e: E2E, status: int) -> int:
    repository = e2e.repo.repository(e2e.index_url)
    return e2e.repo.count(
        host=repository.host, method="POST", path=f"/pypi/{repository.name}/", status=status
    )


def test_twine_upload_takes_username_and_token_from_keyring(e2e: E2E) -> None:
    e2e.use_env_m2m()
    wheel = _wheel(e2e)

    result = _twine_upload(e2e, wheel)

    output = _output(result)
    assert result.returncode == 0, output
    assert e2e.repo.files(e2e.index_url, PROJECT) == [wheel.name]
    assert _upload_posts(e2e, 200) == 1
    assert _upload_posts(e2e, 401) == 0
    # get_credential then get_password: the second is answered from the cache.
    assert e2e.cloud.count(endpoint="token") == 1
    assert e2e.cloud.count(endpoint="registry") == 1
    tokens = [minted.token for minted in e2e.cloud.minted_registry_tokens]
    assert len(tokens) == 1
    assert tokens[0] not in output
    assert "Traceback" not in output
    assert "Enter your" not in output


def test_twine_username_from_keyring_is_aws_and_verbose_output_hides_the_token(
    e2e: E2E,
) -> None:
    e2e.use_env_m2m()
    wheel = _wheel(e2e)

    result = _twine_upload(e2e, wheel, "--verbose")

    output = _output(result)
    assert result.returncode == 0, output
    # twine --verbose names where each credential came from, and the username.
    assert "username set from keyring" in output, output
    assert "password set from keyring" in output, output
    assert "username: aws" in output
    tokens = [minted.token for minted in e2e.cloud.minted_registry_tokens]
    assert tokens, output
    assert all(token not in output for token in tokens)


def test_twine_with_username_aws_given_asks_keyring_only_for_the_password(e2e: E2E) -> None:
    e2e.use_env_m2m()
    wheel = _wheel(e2e)

    result = _twine_upload(e2e, wheel, "--username", "aws", "--verbose")

    output = _output(result)
    assert result.returncode == 0, output
    assert "Querying keyring for username" not in output
    assert "password set from keyring" in output
    assert e2e.repo.files(e2e.index_url, PROJECT) == [wheel.name]
    assert e2e.cloud.count(endpoint="registry") == 1


def test_twine_with_another_username_gets_our_hint_and_no_token(e2e: E2E) -> None:
    e2e.use_env_m2m()
    wheel = _wheel(e2e)

    result = _twine_upload(e2e, wheel, "--username", "alice")

    output = _output(result)
    assert result.returncode != 0, output
    assert "AWS CodeArtifact expects the username 'aws', not 'alice'" in output, output
    assert "Traceback" not in output
    assert e2e.cloud.count() == 0
    assert _upload_posts(e2e, 200) == 0


def test_package_uploaded_by_twine_installs_with_pip_from_the_cached_token(e2e: E2E) -> None:
    e2e.use_env_m2m()
    wheel = _wheel(e2e)
    upload = _twine_upload(e2e, wheel)
    assert upload.returncode == 0, _output(upload)
    target = e2e.tmp / "t"

    install = e2e.run(
        sys.executable,
        "-m",
        "pip",
        "install",
        "--no-input",
        "--cert",
        e2e.repo.ca_pem_path,
        "--target",
        target,
        "--keyring-provider",
        "import",
        "--index-url",
        e2e.aws_index_url,
        PROJECT,
    )

    assert install.returncode == 0, _output(install)
    assert (target / "menda_uploaded").is_dir()
    # The registry token cached by twine's run served pip's too.
    assert e2e.cloud.count(endpoint="token") == 1
    assert e2e.cloud.count(endpoint="registry") == 1


def test_twine_upload_without_a_cached_u2m_login_fails_cleanly(e2e: E2E) -> None:
    e2e.home.write_config({"default": {"host": e2e.cloud.url, "auth_type": "u2m"}})
    wheel = _wheel(e2e)

    result = _twine_upload(e2e, wheel)

    output = _output(result)
    assert result.returncode != 0, output
    assert e2e.repo.files(e2e.index_url, PROJECT) == []
    assert "No valid cached token for profile 'default'" in output, output
    assert "[NoCachedLoginError]" in output
    # Our backend returned None: twine's own "Error getting ... from keyring" (logged
    # with a traceback when keyring raises) must not appear, nor any traceback.
    assert "Error getting" not in output
    assert "Traceback" not in output
    # No login, so nothing to exchange: menda cloud was not asked, nothing was posted.
    assert e2e.cloud.count() == 0
    assert _upload_posts(e2e, 200) == 0
