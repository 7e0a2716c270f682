"""The pytest fixtures of menda.testing.pytest_plugin, used as a test would use them."""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import requests

from menda.testing import FakeClock, MendaCloudEmulator, MendaHome


@pytest.fixture
def polluted_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a developer's or CI machine may have set before the test runs."""
    for name, value in {
        "MENDA_HOST": "https://real.example",
        "MENDA_CLIENT_SECRET": "real-secret",
        "MENDA_PROFILE_ID": "prod",
        "HTTPS_PROXY": "http://corp-proxy:3128",
        "https_proxy": "http://corp-proxy:3128",
        "NO_PROXY": "internal",
        "all_proxy": "socks5://x",
    }.items():
        monkeypatch.setenv(name, value)


@pytest.mark.usefixtures("polluted_env")
def test_menda_home_isolates_home_and_clears_menda_and_proxy_variables(
    request: pytest.FixtureRequest,
) -> None:
    home: MendaHome = request.getfixturevalue("menda_home")
    assert os.environ["HOME"] == str(home.home)
    assert os.environ["USERPROFILE"] == str(home.home)
    assert Path.home() == home.home
    leftover = [
        name
        for name in os.environ
        if name.upper().startswith("MENDA_") or name.upper().endswith("_PROXY")
    ]
    assert leftover == []
    assert home.config_path == home.home / ".menda" / "mendacfg"
    assert home.cache_dir == home.home / ".menda" / "tokens" / "cache"


@pytest.mark.usefixtures("polluted_env")
def test_menda_home_env_is_for_subprocesses(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    home: MendaHome = request.getfixturevalue("menda_home")
    monkeypatch.setenv("MENDA_LOG_LEVEL", "debug")  # set by the test after isolation: kept
    env = home.env(MENDA_PROFILE_ID="dev", PATH=None)
    assert env["HOME"] == str(home.home)
    assert env["MENDA_LOG_LEVEL"] == "debug"
    assert env["MENDA_PROFILE_ID"] == "dev"
    assert "PATH" not in env
    assert "MENDA_HOST" not in env
    assert "HTTPS_PROXY" not in env
    env = home.env()
    out = subprocess.run(
        [sys.executable, "-c", "import pathlib; print(pathlib.Path.home())"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == str(home.home)


def test_menda_home_writes_config_and_cached_login(menda_home: MendaHome) -> None:
    path = menda_home.write_config({"default": {"host": "https://h"}}, defaults={"x": "1"})
    assert path == menda_home.config_path
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path)
    assert parser["default"]["host"] == "https://h"
    assert parser["default"]["x"] == "1"
    token_file = menda_home.write_cached_login("default", access_token="mat_1", cached_at=0)
    assert token_file == menda_home.token_file == menda_home.cache_dir / ".token"
    assert menda_home.read_cli_tokens()["default"]["access_token"] == "mat_1"
    entry = menda_home.write_cache_entry("m2m-env:ci", {"access_token": "mat_2"})
    assert entry.parent == menda_home.own_cache_dir == menda_home.cache_dir / "menda-keyring"
    assert sorted(menda_home.cached_secrets()) == ["mat_1", "mat_2"]


def test_menda_home_writes_a_login_from_the_emulator(
    menda_home: MendaHome, menda_cloud: MendaCloudEmulator
) -> None:
    login = menda_cloud.add_user("bob")
    menda_home.write_cached_login("p", login)
    menda_home.write_cached_login("expired", login, cached_at=0, expires_in=3600)
    tokens = menda_home.read_cli_tokens()
    assert tokens["p"] == {
        "id_token": login.id_token,
        "access_token": login.access_token,
        "refresh_token": login.refresh_token,
        "expires_in": "3600",
        "token_type": "Bearer",
        "cached_at": str(login.issued_at.timestamp()),
    }
    assert tokens["expired"]["cached_at"] == "0"


def test_menda_home_profile_helpers_match_the_emulator(
    menda_home: MendaHome, menda_cloud: MendaCloudEmulator
) -> None:
    menda_cloud.add_m2m_client("ci", "pw")
    menda_home.add_m2m_profile(menda_cloud, "ci", "pw", profile="robot")
    login = menda_home.add_u2m_profile(menda_cloud, profile="default", user="alice")
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(menda_home.config_path)
    assert parser["robot"]["client_id"] == "ci"
    assert parser["robot"]["host"] == menda_cloud.url
    assert parser["default"]["auth_type"] == "u2m"
    cached = menda_home.read_cli_tokens()["default"]
    assert cached["id_token"] == login.id_token
    assert cached["refresh_token"] == login.refresh_token
    assert float(cached["cached_at"]) + int(cached["expires_in"]) == pytest.approx(
        login.expires_at.timestamp(), abs=1
    )


def test_menda_cloud_is_running_and_fresh(menda_cloud: MendaCloudEmulator) -> None:
    assert menda_cloud.running
    assert menda_cloud.requests == []
    assert requests.get(menda_cloud.url + "/_emulator/requests", timeout=5).status_code == 200


def test_m2m_client_is_registered_with_an_awkward_secret(
    menda_cloud: MendaCloudEmulator, m2m_client: tuple[str, str]
) -> None:
    client_id, secret = m2m_client
    assert any(ch in secret for ch in "+/:%#;")
    params = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    response = requests.post(menda_cloud.token_url, params=params, timeout=5)
    assert response.status_code == 200


def test_clock_freezes_core_auth_time_and_advances(clock: FakeClock) -> None:
    from menda.core_auth import utcnow

    start = utcnow()
    assert start == clock.now()
    assert utcnow() == start
    assert clock.advance(90) == start + timedelta(seconds=90)
    assert utcnow() == start + timedelta(seconds=90)
    clock.advance(minutes=1)
    assert utcnow() == start + timedelta(seconds=150)


def test_frozen_clock_is_the_same_clock(clock: FakeClock, frozen_clock: FakeClock) -> None:
    assert frozen_clock is clock


def test_clock_drives_the_emulator_when_both_are_used(
    menda_cloud: MendaCloudEmulator, clock: FakeClock
) -> None:
    menda_cloud.add_m2m_client("ci", "pw")
    token, expires_at = menda_cloud.issue_access_token("ci", lifetime=60)
    assert expires_at == clock.now() + timedelta(seconds=60)
    clock.advance(61)
    response = requests.post(
        menda_cloud.registry_url, headers={"authorizationToken": f"Bearer {token}"}, timeout=5
    )
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]
