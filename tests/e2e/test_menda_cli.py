"""The published Menda CLI and our backend share one home: each keeps the other working.

`menda auth login` (menda-cli 0.5.0, in its own virtual environment) writes the
login our backend reads; our backend refreshes an expired login and writes it
back; afterwards every CLI command that reads the token file must still work.
"""

from __future__ import annotations

import configparser
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import subprocess

    from tests.e2e.conftest import E2E

    from menda.testing.published import PublishedClients

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BIN = Path(sys.executable).parent
CLIENT_ID, CLIENT_SECRET = "robot-client", "robot-secret-7c1e"


def cli_env(e2e: E2E, **extra: str | None) -> dict[str, str]:
    return e2e.env(
        BROWSER="true",  # `menda auth login` opens the URL with it: a no-op browser
        COLUMNS="200",
        NO_COLOR="1",
        **extra,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


def cli_login(e2e: E2E, published: PublishedClients, profile: str = "default") -> None:
    env = cli_env(e2e)
    configure = [published.menda, "auth", "configure", "--menda-profile-id", profile]
    ok(e2e.run(*configure, "--auth-type", "u2m", "--host", e2e.cloud.url, env=env))
    ok(e2e.run(published.menda, "auth", "login", "--menda-profile-id", profile, env=env))


def age_login(e2e: E2E, profile: str, seconds: float) -> None:
    """Move the CLI's login for ``profile`` back in time, as an old login would be."""
    parser = configparser.ConfigParser(interpolation=None)
    path = e2e.home.cache_dir / ".token"
    parser.read(path)
    parser[profile]["cached_at"] = str(time.time() - seconds)
    with path.open("w") as handle:
        parser.write(handle)


@pytest.fixture
def world(e2e: E2E) -> E2E:
    # The CLI sleeps `interval` before each poll of the device flow: keep it instant.
    e2e.cloud.device_interval = 0
    e2e.cloud.add_user("alice")
    return e2e


def test_after_a_real_cli_login_uv_installs_with_no_token_request(
    world: E2E, published_clients: PublishedClients
) -> None:
    cli_login(world, published_clients)
    world.cloud.clear_log()
    python = world.venv()

    result = world.uv_pip_install(python)

    assert result.returncode == 0, result.stdout + result.stderr
    assert world.cloud.count("token") == 0
    assert world.cloud.count("registry") == 1
    # The login's id token is what the reference backend presents, and so do we.
    assert world.cloud.count("registry", status=200, token_kind="id_token") == 1


def test_cli_whoami_works_after_our_backend_refreshed_an_expired_login(
    world: E2E, published_clients: PublishedClients
) -> None:
    cli_login(world, published_clients)
    age_login(world, "default", 7200)
    expired = world.run(published_clients.menda, "auth", "whoami", env=cli_env(world))
    assert expired.returncode != 0  # the CLI itself cannot refresh
    world.cloud.clear_log()
    python = world.venv()

    result = world.uv_pip_install(python)

    assert result.returncode == 0, result.stdout + result.stderr
    assert world.cloud.count("token", grant_type="refresh_token") == 1
    whoami = ok(world.run(published_clients.menda, "auth", "whoami", env=cli_env(world)))
    assert "Username: alice" in whoami


def test_every_cli_command_still_works_after_our_backend_ran_for_every_identity(
    world: E2E, published_clients: PublishedClients
) -> None:
    world.cloud.add_m2m_client(CLIENT_ID, CLIENT_SECRET)
    cli_login(world, published_clients, "default")
    # An M2M profile beside the user's, in the format `menda auth configure` writes.
    with world.home.config_path.open("a") as config:
        config.write(
            f"[robot]\nauth_type = m2m\nhost = {world.cloud.url}\n"
            f"client_id = {CLIENT_ID}\nclient_secret = {CLIENT_SECRET}\n\n"
        )
    before = (world.home.cache_dir / ".token").read_bytes()
    keyring = str(BIN / "keyring")
    env_trio = {
        "MENDA_CLIENT_ID": CLIENT_ID,
        "MENDA_CLIENT_SECRET": CLIENT_SECRET,
        "MENDA_HOST": world.cloud.url,
    }

    for extra in ({}, {"MENDA_PROFILE_ID": "robot"}, env_trio):
        got = world.run(keyring, "get", world.index_url, "aws", env=cli_env(world, **extra))
        assert got.returncode == 0, got.stderr
        assert got.stdout.strip()

    # Our own entries live beside the CLI's file, never in it.
    assert (world.home.cache_dir / ".token").read_bytes() == before
    menda = published_clients.menda
    assert "Username: alice" in ok(world.run(menda, "auth", "whoami", env=cli_env(world)))
    robot = world.run(menda, "auth", "whoami", "--menda-profile-id", "robot", env=cli_env(world))
    assert "Service Principal" in ok(robot)
    from_env = world.run(menda, "auth", "whoami", env=cli_env(world, **env_trio))
    assert "Service Principal" in ok(from_env)
