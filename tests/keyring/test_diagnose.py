"""`menda-keyring diagnose`, end to end: the console script and `python -m` in subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from menda.testing.pytest_plugin import console_script

if TYPE_CHECKING:
    from collections.abc import Callable

    from menda.testing import MendaCloudEmulator
    from menda.testing.pytest_plugin import MendaHome

HOST = "menda-private-058264169513.d.codeartifact.eu-west-1.amazonaws.com"
INDEX = f"https://{HOST}/pypi/menda-plugins/simple/"
SCRIPT = console_script("menda-keyring")
CLIENT_ID = "ci-bot"
CLIENT_SECRET = "s3cr3t-client-secret+/:%#;"


def run_script(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SCRIPT, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def run_module(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "menda.keyring", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_no_secret(result: subprocess.CompletedProcess[str], secrets: list[str]) -> None:
    assert secrets
    for secret in secrets:
        assert secret not in result.stdout
        assert secret not in result.stderr


@pytest.fixture
def env(menda_home: MendaHome) -> dict[str, str]:
    return menda_home.env()


@pytest.fixture
def m2m_env(env: dict[str, str], menda_cloud: MendaCloudEmulator) -> dict[str, str]:
    menda_cloud.add_m2m_client(CLIENT_ID, CLIENT_SECRET)
    return {
        **env,
        "MENDA_CLIENT_ID": CLIENT_ID,
        "MENDA_CLIENT_SECRET": CLIENT_SECRET,
        "MENDA_HOST": menda_cloud.url,
    }


@pytest.mark.parametrize("runner", [run_script, run_module], ids=["script", "module"])
def test_without_config_exits_1_with_the_config_error(
    runner: Callable[..., subprocess.CompletedProcess[str]], env: dict[str, str]
) -> None:
    result = runner("diagnose", env=env)
    assert result.returncode == 1, result.stdout
    assert "ConfigFileNotFoundError" in result.stdout
    assert "Menda config file not found" in result.stdout
    assert "Versions" in result.stdout
    assert "keyring" in result.stdout
    assert result.stderr == ""


def test_m2m_environment_resolves_from_env_and_exits_0(
    m2m_env: dict[str, str], menda_cloud: MendaCloudEmulator
) -> None:
    result = run_script("diagnose", INDEX, env=m2m_env)
    assert result.returncode == 0, result.stdout
    assert "source             env" in result.stdout
    assert "auth type          m2m" in result.stdout
    assert f"host               {menda_cloud.url}" in result.stdout
    assert "client id          ci-bot" in result.stdout
    assert "not cached" in result.stdout
    assert "menda-keyring      used directly" in result.stdout
    assert CLIENT_SECRET not in result.stdout + result.stderr
    assert menda_cloud.requests == []


def test_url_parts_are_reported(m2m_env: dict[str, str]) -> None:
    result = run_script("diagnose", "--json", INDEX, env=m2m_env)
    url = json.loads(result.stdout)["url"]
    assert url["recognised"] is True
    assert url["domain"] == "menda-private"
    assert url["domain_owner"] == "058264169513"
    assert url["region"] == "eu-west-1"
    assert url["repository"] == "menda-plugins"
    assert url["format"] == "pypi"
    assert url["endpoint"] == HOST


def test_u2m_profile_without_login_reports_no_cached_login(
    env: dict[str, str], menda_home: MendaHome, menda_cloud: MendaCloudEmulator
) -> None:
    menda_home.write_config({"default": {"host": menda_cloud.url, "auth_type": "u2m"}})
    result = run_module("diagnose", env=env)
    assert result.returncode == 1
    assert "source             profile:default" in result.stdout
    assert "auth type          u2m" in result.stdout
    assert "No valid cached token for profile 'default'" in result.stdout
    assert "[NoCachedLoginError]" in result.stdout
    assert menda_cloud.requests == []


def test_u2m_profile_with_login_is_ok_and_shows_the_refresh_token_only_as_present(
    env: dict[str, str], menda_home: MendaHome, menda_cloud: MendaCloudEmulator
) -> None:
    login = menda_home.add_u2m_profile(menda_cloud)
    result = run_module("diagnose", "--check", INDEX, env=env)
    assert result.returncode == 0, result.stdout
    assert "refresh token present" in result.stdout
    assert "/api/v1/auth/registry/token -> 200" in result.stdout
    assert menda_cloud.count(endpoint="token") == 0
    assert_no_secret(
        result, [login.access_token, login.refresh_token, *menda_home.cached_secrets()]
    )


def test_check_lists_each_request_with_its_status_and_matches_the_emulator(
    m2m_env: dict[str, str], menda_cloud: MendaCloudEmulator, menda_home: MendaHome
) -> None:
    result = run_script("diagnose", "--check", INDEX, env=m2m_env)
    assert result.returncode == 0, result.stdout + result.stderr
    token_line = f"POST {menda_cloud.url}/api/v1/auth/oauth2/token -> 200 in "
    registry_line = f"POST {menda_cloud.url}/api/v1/auth/registry/token -> 200 in "
    assert token_line in result.stdout
    assert registry_line in result.stdout
    assert result.stdout.index(token_line) < result.stdout.index(registry_line)
    assert "token present (from menda cloud)" in result.stdout
    assert menda_cloud.count(endpoint="token") == 1
    assert menda_cloud.count(endpoint="registry") == 1
    minted = [t.token for t in menda_cloud.minted_registry_tokens]
    assert len(minted) == 1
    assert_no_secret(result, [CLIENT_SECRET, *minted, *menda_home.cached_secrets()])


def test_check_with_a_warm_cache_makes_no_request(
    m2m_env: dict[str, str], menda_cloud: MendaCloudEmulator
) -> None:
    run_script("diagnose", "--check", INDEX, env=m2m_env)
    menda_cloud.clear_log()
    result = run_script("diagnose", "--check", "--json", INDEX, env=m2m_env)
    check = json.loads(result.stdout)["check"]
    assert result.returncode == 0
    assert check["ok"] is True
    assert check["from_cache"] is True
    assert check["requests"] == []
    assert menda_cloud.requests == []


def test_no_cache_check_exchanges_again_and_leaves_the_cache_alone(
    m2m_env: dict[str, str], menda_cloud: MendaCloudEmulator, menda_home: MendaHome
) -> None:
    run_script("diagnose", "--check", INDEX, env=m2m_env)
    before = {p.name: p.read_bytes() for p in menda_home.cache_dir.glob("*.token")}
    menda_cloud.clear_log()
    result = run_script("diagnose", "--check", "--no-cache", "--json", INDEX, env=m2m_env)
    report = json.loads(result.stdout)
    assert result.returncode == 0
    assert [r["status"] for r in report["check"]["requests"]] == [200, 200]
    assert menda_cloud.count(endpoint="token") == 1
    assert menda_cloud.count(endpoint="registry") == 1
    after = {p.name: p.read_bytes() for p in menda_home.cache_dir.glob("*.token")}
    assert after == before


def test_cached_entries_show_when_they_are_valid_until(
    m2m_env: dict[str, str], menda_home: MendaHome
) -> None:
    run_script("diagnose", "--check", INDEX, env=m2m_env)
    result = run_script("diagnose", "--json", INDEX, env=m2m_env)
    cache = json.loads(result.stdout)["cache"]
    access = json.loads((menda_home.cache_dir / "ci-bot.token").read_text(encoding="utf-8"))
    assert cache["access_token"]["state"] == "valid"
    assert cache["access_token"]["expires_at"] == access["expires_at"]
    assert cache["registry_token"]["state"] == "valid"
    assert Path(cache["registry_token"]["path"]).exists()


def test_failed_check_reports_the_status_and_the_error(
    m2m_env: dict[str, str], menda_cloud: MendaCloudEmulator
) -> None:
    menda_cloud.deny(CLIENT_ID, "menda-private")
    result = run_script("diagnose", "--check", "--json", INDEX, env=m2m_env)
    report = json.loads(result.stdout)
    assert result.returncode == 1
    statuses = [r["status"] for r in report["check"]["requests"]]
    assert statuses[0] == 200
    assert statuses[-1] == 403
    assert report["check"]["error"]["class"] == "MendaCloudAPIError"
    assert report["problems"]


def test_non_codeartifact_url_is_not_recognised(m2m_env: dict[str, str]) -> None:
    result = run_script("diagnose", "https://pypi.org/simple/", env=m2m_env)
    assert result.returncode == 1
    assert "not recognised" in result.stdout
    assert "'pypi.org' is not an AWS CodeArtifact repository endpoint" in result.stdout


def test_wrong_username_in_the_url_is_a_problem(m2m_env: dict[str, str]) -> None:
    result = run_script("diagnose", f"https://bob:hunter2@{HOST}/pypi/r/simple/", env=m2m_env)
    assert result.returncode == 1
    assert "requires 'aws'" in result.stdout
    assert "hunter2" not in result.stdout
    assert "bob:***@" in result.stdout


def test_json_is_one_object_with_every_section(m2m_env: dict[str, str]) -> None:
    result = run_module("diagnose", "--json", "--check", INDEX, env=m2m_env)
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["exit_status"] == 0
    assert set(report) >= {"versions", "backend", "identity", "cache", "url", "check"}
    assert report["identity"]["source"] == "env"
    assert report["backend"]["used"] in ("directly", "through the chainer")
    assert report["versions"]["packages"]["menda-keyring"]
    assert [r["status"] for r in report["check"]["requests"]] == [200, 200]


def test_keyring_configured_to_another_backend_is_a_problem(m2m_env: dict[str, str]) -> None:
    env = {**m2m_env, "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"}
    result = run_script("diagnose", "--json", env=env)
    backend = json.loads(result.stdout)["backend"]
    assert result.returncode == 1
    assert backend["used"] == "no"
    assert "PYTHON_KEYRING_BACKEND" in backend["reason"]


@pytest.mark.parametrize(
    "args",
    [["diagnose", "--check"], ["diagnose", "--no-cache", INDEX], ["diagnose", "--bogus"], []],
)
def test_usage_errors_exit_2(args: list[str], env: dict[str, str]) -> None:
    result = run_script(*args, env=env)
    assert result.returncode == 2
    assert result.stdout == ""


def test_help_documents_the_exit_status(env: dict[str, str]) -> None:
    result = run_script("diagnose", "--help", env=env)
    assert result.returncode == 0
    assert "exit status" in result.stdout


def test_backend_reached_through_the_chainer_is_reported_with_its_position(
    m2m_env: dict[str, str],
) -> None:
    env = {**m2m_env, "PYTHON_KEYRING_BACKEND": "keyring.backends.chainer.ChainerBackend"}
    result = run_script("diagnose", env=env)
    assert result.returncode == 0, result.stdout
    assert "used through the chainer" in result.stdout
    assert "1. menda.keyring.backend.MendaCodeArtifactKeyring (priority 9)" in result.stdout


def test_keyringrc_naming_another_backend_is_a_problem(
    m2m_env: dict[str, str], menda_home: MendaHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    from keyring.util import platform_

    config_home = menda_home.home / "config"
    # keyring reads XDG_CONFIG_HOME on Linux and macOS, LOCALAPPDATA on Windows.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config_home))
    monkeypatch.setenv("LOCALAPPDATA", str(config_home))
    rc = platform_.config_root() / "keyringrc.cfg"
    rc.parent.mkdir(parents=True)
    rc.write_text("[backend]\ndefault-keyring=keyring.backends.null.Keyring\n", encoding="utf-8")
    env = {**m2m_env, "XDG_CONFIG_HOME": str(config_home), "LOCALAPPDATA": str(config_home)}
    result = run_script("diagnose", "--json", env=env)
    backend = json.loads(result.stdout)["backend"]
    assert result.returncode == 1
    assert backend["used"] == "no"
    assert backend["selected"].startswith("keyring.backends.null.Keyring")
    assert str(rc) in backend["reason"]


def test_expired_login_with_a_refresh_token_is_not_a_problem_and_says_expired(
    env: dict[str, str], menda_home: MendaHome, menda_cloud: MendaCloudEmulator
) -> None:
    login = menda_home.add_u2m_profile(menda_cloud)
    fields = {**login.cache_fields(), "expires_at": "2020-01-01T00:00:00Z"}
    menda_home.write_cached_login("default", host=menda_cloud.url, **fields)
    result = run_script("diagnose", "--json", env=env)
    report = json.loads(result.stdout)
    assert result.returncode == 0, report["problems"]
    access = report["cache"]["access_token"]
    assert access["state"] == "expired"
    assert access["refresh_token"] == "present"
    assert "2020-01-01T00:00:00Z" in access["detail"]
    assert menda_cloud.requests == []


def test_expired_login_without_refresh_token_is_no_cached_login(
    env: dict[str, str], menda_home: MendaHome, menda_cloud: MendaCloudEmulator
) -> None:
    login = menda_home.add_u2m_profile(menda_cloud)
    fields = {**login.cache_fields(), "expires_at": "2020-01-01T00:00:00Z"}
    fields["refresh_token"] = None
    menda_home.write_cached_login("default", host=menda_cloud.url, **fields)
    result = run_script("diagnose", env=env)
    assert result.returncode == 1
    assert "[NoCachedLoginError]" in result.stdout
    assert menda_cloud.requests == []


def test_login_for_another_host_is_reported_as_a_mismatch(
    env: dict[str, str], menda_home: MendaHome, menda_cloud: MendaCloudEmulator
) -> None:
    login = menda_home.add_u2m_profile(menda_cloud)
    menda_home.write_cached_login(
        "default", host="https://other.example.menda.cloud", **login.cache_fields()
    )
    result = run_script("diagnose", "--json", env=env)
    access = json.loads(result.stdout)["cache"]["access_token"]
    assert result.returncode == 1
    assert access["state"] == "mismatch"
    assert "https://other.example.menda.cloud" in access["detail"]


def test_u2m_no_cache_check_keeps_the_login_and_asks_for_a_new_registry_token(
    env: dict[str, str], menda_home: MendaHome, menda_cloud: MendaCloudEmulator
) -> None:
    menda_home.add_u2m_profile(menda_cloud)
    run_script("diagnose", "--check", INDEX, env=env)
    result = run_script("diagnose", "--check", "--no-cache", "--json", INDEX, env=env)
    check = json.loads(result.stdout)["check"]
    assert result.returncode == 0
    assert check["from_cache"] is False
    assert menda_cloud.count(endpoint="token") == 0
    assert menda_cloud.count(endpoint="registry") == 2
