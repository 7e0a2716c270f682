"""The real `uv` binary installing from CodeArtifact with credentials from menda-keyring.

uv spawns `keyring get <service> aws` (docs/installers.md); the `keyring`
on PATH is the workspace's, so every credential here went through our backend,
the token cache and the menda cloud emulator. Each test checks what the user
sees (exit status, importable package, output) and what it cost (requests to
menda cloud and to the repository).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from tests.e2e.conftest import assert_one_token_and_one_exchange

if TYPE_CHECKING:
    from tests.e2e.conftest import E2E

pytestmark = pytest.mark.e2e

PACKAGE = "menda-hello"


def assert_imports(e2e: E2E, python: Path) -> None:
    result = e2e.run(python, "-c", "import menda_hello, public_dep")
    assert result.returncode == 0, result.stderr


def assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "menda-keyring:" not in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def secrets_of(e2e: E2E) -> list[str]:
    """Every registry token minted so far, and the access/refresh tokens in the cache."""
    found = [minted.token for minted in e2e.cloud.minted_registry_tokens]
    found += e2e.home.cached_secrets()
    assert found, "no token was minted or cached"
    return found


def assert_no_secret_in(e2e: E2E, *texts: str) -> None:
    for secret in secrets_of(e2e):
        for text in texts:
            assert secret not in text


def valid_repo_auths(e2e: E2E) -> int:
    return e2e.repo.requests.count(host=e2e.repo.repository(e2e.index_url).host, auth_valid=True)


def write_seed_project(e2e: E2E, project: Path, private_index: str, *, extra: str = "") -> Path:
    """A project shaped like the product page's pyproject, with PyPI replaced by the fake one."""
    project.mkdir()
    (project / "pyproject.toml").write_text(
        f"""\
[project]
name = "demo-app"
version = "0.1.0"
requires-python = ">=3.10"
dependencies = ["{PACKAGE}"]

[tool.uv]
package = false
keyring-provider = "subprocess"

# PyPI is default so build deps and public wheels do not go through CodeArtifact.
[[tool.uv.index]]
name = "pypi"
url = "{e2e.repo.public_index_url}"
default = true

# Menda SaaS private registry
[[tool.uv.index]]
name = "menda-private"
url = "{private_index}"
explicit = true
{extra}
[tool.uv.sources]
{PACKAGE} = {{ index = "menda-private" }}
""",
        encoding="utf-8",
    )
    return project


def project_python(project: Path) -> Path:
    scripts = project / ".venv" / ("Scripts" if sys.platform == "win32" else "bin")
    return scripts / ("python.exe" if sys.platform == "win32" else "python")


# -- 1. uv pip install ---------------------------------------------------------------------


def test_uv_pip_install_costs_one_token_and_one_registry_request(e2e: E2E) -> None:
    e2e.use_env_m2m()
    python = e2e.venv()

    result = e2e.uv_pip_install(python)

    assert_ok(result)
    assert_imports(e2e, python)
    assert e2e.cloud.count("token") == 1
    assert e2e.cloud.count("token", grant_type="client_credentials", client_id="ci-bot") == 1
    assert e2e.cloud.count("registry") == 1
    assert e2e.cloud.count("registry", status=200, identity="ci-bot") == 1
    assert valid_repo_auths(e2e) >= 1
    assert_no_secret_in(e2e, result.stdout, result.stderr)


def test_second_uv_run_is_served_from_the_token_cache(e2e: E2E) -> None:
    e2e.use_env_m2m()
    python = e2e.venv()
    assert_ok(e2e.uv_pip_install(python))
    cloud_before, repo_before = len(e2e.cloud.requests), valid_repo_auths(e2e)

    # A new uv process spawns a new keyring process; --no-cache makes uv go to the
    # repository again, so it must authenticate again.
    again = e2e.uv_pip_install(python, "--reinstall", "--no-cache")

    assert_ok(again)
    assert_imports(e2e, python)
    assert len(e2e.cloud.requests) == cloud_before == 2
    assert len(e2e.cloud.minted_registry_tokens) == 1
    assert valid_repo_auths(e2e) > repo_before
    assert (
        e2e.repo.requests.count(path="/pypi/menda-plugins/simple/menda-hello/", auth_valid=True)
        == 2
    )
    assert_no_secret_in(e2e, again.stdout, again.stderr)


# -- 2. uv lock / uv sync of a project shaped like the product page ----------------------------


def test_uv_lock_and_sync_of_seed_shaped_project(e2e: E2E) -> None:
    e2e.use_env_m2m()
    project = write_seed_project(e2e, e2e.tmp / "app", e2e.aws_index_url)
    env = e2e.env(UV_PYTHON=sys.executable)

    locked = e2e.run(e2e.uv, "lock", "--no-progress", env=env, cwd=project)
    assert_ok(locked)
    synced = e2e.run(e2e.uv, "sync", "--no-progress", env=env, cwd=project)
    assert_ok(synced)

    assert_imports(e2e, project_python(project))
    lock = (project / "uv.lock").read_text(encoding="utf-8")
    assert 'name = "menda-hello"' in lock
    assert e2e.index_url in lock  # the private source is recorded, without credentials
    assert_no_secret_in(e2e, lock, locked.stdout, locked.stderr, synced.stdout, synced.stderr)
    # The second uv process (sync) took the registry token from the cache.
    assert e2e.cloud.count("token") == 1
    assert e2e.cloud.count("registry") == 1
    assert (
        e2e.repo.requests.count(path="/pypi/menda-plugins/simple/menda-hello/", auth_valid=True)
        >= 1
    )


# -- 3. every auth source, through uv -----------------------------------------------------


@pytest.mark.parametrize(
    ("source", "cache_file"),
    [("env", "m2m-env%3Aci-bot.json"), ("profile", "m2m-profile%3Aci.json")],
)
def test_uv_install_with_m2m(e2e: E2E, source: str, cache_file: str) -> None:
    if source == "env":
        e2e.use_env_m2m()
    else:
        e2e.use_profile_m2m("ci")
        assert e2e.env()["MENDA_PROFILE_ID"] == "ci"
        assert "MENDA_CLIENT_ID" not in e2e.env()
    python = e2e.venv()

    result = e2e.uv_pip_install(python)

    assert_ok(result)
    assert_imports(e2e, python)
    assert_one_token_and_one_exchange(e2e)
    assert (e2e.home.cache_dir / "menda-keyring" / cache_file).is_file()
    assert_no_secret_in(e2e, result.stdout, result.stderr)


def test_uv_install_with_u2m_cached_login_needs_no_token_request(e2e: E2E) -> None:
    e2e.home.add_u2m_profile(e2e.cloud, user="alice")
    python = e2e.venv()

    result = e2e.uv_pip_install(python)

    assert_ok(result)
    assert_imports(e2e, python)
    assert e2e.cloud.count("token") == 0
    assert e2e.cloud.count("registry") == 1
    assert e2e.cloud.count("registry", status=200, identity="alice") == 1
    assert_no_secret_in(e2e, result.stdout, result.stderr)


def test_uv_install_with_expired_u2m_login_refreshes_and_stores_rotated_token(e2e: E2E) -> None:
    login = e2e.cloud.add_user("alice")
    e2e.home.write_config({"default": {"host": e2e.cloud.url, "auth_type": "u2m"}})
    e2e.home.write_cached_login("default", login, cached_at=time.time() - 7200)
    e2e.home.write_cached_login("other", login)  # another profile's login must survive
    before_other = e2e.home.read_cli_tokens()["other"]
    python = e2e.venv()

    result = e2e.uv_pip_install(python)

    assert_ok(result)
    assert_imports(e2e, python)
    assert e2e.cloud.count("discovery") == 1
    assert e2e.cloud.count("token") == 1
    assert e2e.cloud.count("token", grant_type="refresh_token", client_id=login.client_id) == 1
    assert e2e.cloud.count("registry", status=200, identity="alice") == 1
    assert e2e.cloud.count("registry") == 1
    sections = e2e.home.read_cli_tokens()
    saved = sections["default"]
    # Written back in the CLI's six keys and formats, with the rotated refresh token.
    assert list(saved) == [
        "id_token",
        "access_token",
        "refresh_token",
        "expires_in",
        "token_type",
        "cached_at",
    ]
    assert saved["refresh_token"] not in ("", login.refresh_token)
    assert saved["access_token"] != login.access_token
    assert saved["expires_in"].isdigit()
    assert float(saved["cached_at"]) > time.time() - 600
    assert sections["other"] == before_other
    assert login.refresh_token not in result.stdout + result.stderr
    assert_no_secret_in(e2e, result.stdout, result.stderr)


# -- 5. other ways users name the username -------------------------------------------------


def test_uv_index_username_from_environment_variable(e2e: E2E) -> None:
    e2e.use_env_m2m()
    python = e2e.venv()
    env = e2e.env(UV_INDEX_MENDA_PRIVATE_USERNAME="aws")

    result = e2e.run(
        e2e.uv,
        "pip",
        "install",
        "--no-progress",
        "--python",
        python,
        "--keyring-provider",
        "subprocess",
        "--default-index",
        e2e.repo.public_index_url,
        "--index",
        f"menda-private={e2e.index_url}",  # no userinfo: the username comes from the env
        PACKAGE,
        env=env,
    )

    assert_ok(result)
    assert_imports(e2e, python)
    assert e2e.cloud.count("token") == 1
    assert e2e.cloud.count("registry") == 1


def test_uv_authenticate_always_without_username_gets_aws_from_keyring(e2e: E2E) -> None:
    # No username anywhere: uv asks `keyring get <url> --mode creds` and takes the
    # username (`aws`) from our answer; the fake repository accepts only `aws`.
    e2e.use_env_m2m()
    project = write_seed_project(
        e2e, e2e.tmp / "app", e2e.index_url, extra='authenticate = "always"\n'
    )
    env = e2e.env(UV_PYTHON=sys.executable)

    synced = e2e.run(e2e.uv, "sync", "--no-progress", env=env, cwd=project)

    assert_ok(synced)
    assert_imports(e2e, project_python(project))
    assert e2e.cloud.count("token") == 1
    assert e2e.cloud.count("registry") == 1
    assert (
        e2e.repo.requests.count(path="/pypi/menda-plugins/simple/menda-hello/", auth_valid=True)
        == 1
    )
    assert_no_secret_in(e2e, synced.stdout, synced.stderr)
