"""Processes that start together with a cold cache (or an expired login) make one request."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from menda.core_auth import CliTokenFile
from menda.testing import CLI_TOKEN_KEYS, MendaCloudEmulator, MendaHome, UserLogin

PROCESSES = 8

# Each process waits for the "go" file, so that all of them hit the cold cache together.
_PRELUDE = """
import os, sys, time
from menda.core_auth import resolve_identity
from menda.cloud_client import MendaCloudClient, RegistryRequest
go = sys.argv[1]
while not os.path.exists(go):
    time.sleep(0.005)
client = MendaCloudClient(resolve_identity())
"""
_ACCESS = _PRELUDE + "print(client.access_token())\n"
_REGISTRY = (
    _PRELUDE
    + "print(client.registry_token(RegistryRequest("
    + "'menda-private', '058264169513', 'eu-west-1', 'menda-plugins', 'pypi')).token)\n"
)


def _run_together(
    code: str, env: dict[str, str], go: Path, processes: int = PROCESSES
) -> list[str]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(go)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    time.sleep(0.3)  # let the interpreters start; correctness does not depend on it
    go.touch()
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outputs.append(out.strip())
    return outputs


@pytest.fixture
def env(
    menda_home: MendaHome, menda_cloud: MendaCloudEmulator, m2m_client: tuple[str, str]
) -> dict[str, str]:
    client_id, client_secret = m2m_client
    return menda_home.env(
        MENDA_CLIENT_ID=client_id,
        MENDA_CLIENT_SECRET=client_secret,
        MENDA_HOST=menda_cloud.url,
        MENDA_TOKEN_CACHE_DIR=str(menda_home.home / "shared-cache"),
    )


def test_eight_processes_with_a_cold_cache_make_one_token_request(
    env: dict[str, str], menda_cloud: MendaCloudEmulator, tmp_path: Path
) -> None:
    tokens = _run_together(_ACCESS, env, tmp_path / "go")

    assert len(set(tokens)) == 1
    assert menda_cloud.count("token") == 1


def test_eight_processes_cold_on_one_registry_make_one_token_and_one_registry_request(
    env: dict[str, str], menda_cloud: MendaCloudEmulator, tmp_path: Path
) -> None:
    tokens = _run_together(_REGISTRY, env, tmp_path / "go")

    assert len(set(tokens)) == 1
    assert menda_cloud.count("token") == 1
    assert menda_cloud.count("registry") == 1


HERD = 16


@pytest.fixture
def expired_login_env(
    menda_home: MendaHome, menda_cloud: MendaCloudEmulator
) -> tuple[dict[str, str], UserLogin]:
    """A u2m profile whose login in the CLI's file expired an hour ago (refresh token kept)."""
    login = menda_home.add_u2m_profile(menda_cloud)
    menda_home.write_cached_login("default", login, expires_in=3600, cached_at=time.time() - 7200)
    # Another user's login in the same file, which every write must keep.
    menda_home.write_cached_login("other", access_token="other-access", cached_at=1764540000.5)
    return menda_home.env(), login


def _assert_one_valid_refreshed_login(home: MendaHome, tokens: list[str], old: UserLogin) -> None:
    sections = home.read_cli_tokens()
    assert list(sections) == ["default", "other"]
    assert sections["other"]["access_token"] == "other-access"
    written = sections["default"]
    assert list(written) == list(CLI_TOKEN_KEYS)
    assert set(tokens) == {written["id_token"]}
    assert written["id_token"] != old.id_token
    assert written["refresh_token"] not in ("", old.refresh_token)
    login = CliTokenFile(home.token_file).load("default")
    assert login is not None
    assert login.is_valid()


def test_sixteen_processes_with_an_expired_login_make_one_refresh(
    expired_login_env: tuple[dict[str, str], UserLogin],
    menda_cloud: MendaCloudEmulator,
    menda_home: MendaHome,
    tmp_path: Path,
) -> None:
    env, old = expired_login_env
    tokens = _run_together(_ACCESS, env, tmp_path / "go", processes=HERD)

    # Refresh tokens rotate: a second refresh with the old one would have been refused.
    assert menda_cloud.count("token", grant_type="refresh_token") == 1
    assert menda_cloud.count("token") == 1
    assert menda_cloud.count("discovery") == 1
    _assert_one_valid_refreshed_login(menda_home, tokens, old)


def test_sixteen_processes_with_an_expired_login_and_a_cold_registry_make_one_of_each(
    expired_login_env: tuple[dict[str, str], UserLogin],
    menda_cloud: MendaCloudEmulator,
    menda_home: MendaHome,
    tmp_path: Path,
) -> None:
    env, old = expired_login_env
    tokens = _run_together(_REGISTRY, env, tmp_path / "go", processes=HERD)

    assert len(set(tokens)) == 1
    assert [(r.endpoint, r.status) for r in menda_cloud.requests] == [
        ("discovery", 200),
        ("token", 200),
        ("registry", 200),
    ]
    assert menda_cloud.requests[-1].token_kind == "id_token"
    sections = menda_home.read_cli_tokens()
    _assert_one_valid_refreshed_login(menda_home, [sections["default"]["id_token"]], old)
