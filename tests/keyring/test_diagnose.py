"""`menda-keyring diagnose`: the report in-process, and the command line in subprocesses.

Fixture files are written here by hand, as the Menda CLI and the design note
describe them, never with menda.core_auth's own writer: the CLI's token file
``<cache>/.token`` (INI, a section per profile) and our entries
``<cache>/menda-keyring/<escaped key>.json``.
"""

from __future__ import annotations

import configparser
import hashlib
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import pytest

from menda.keyring.diagnose import diagnose, render_text
from menda.testing import console_script, format_rfc3339

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from menda.testing import FakeClock, MendaCloudEmulator, MendaHome

HOST = "menda-private-058264169513.d.codeartifact.eu-west-1.amazonaws.com"
INDEX = f"https://{HOST}/pypi/menda-plugins/simple/"
REGISTRY = ("menda-private", "058264169513", "eu-west-1")
SCRIPT = console_script("menda-keyring")
CLIENT_ID = "ci-bot"
CLIENT_SECRET = "s3cr3t-client-secret+/:%#;"
OFFLINE_HOST = "https://tenant.menda.example"
# Hand-written tokens: none may ever appear in the output.
ID_TOKEN = "mit_handwritten-id-token-value"
ACCESS_TOKEN = "mat_handwritten-access-token-value"
REFRESH_TOKEN = "mrt_handwritten-refresh-token-value"
M2M_TOKEN = "mat_handwritten-m2m-access-token"
REGISTRY_TOKEN = "eyJ2ZXIiOjF9.handwritten-registry-token.a.b.c"
HANDWRITTEN = [ID_TOKEN, ACCESS_TOKEN, REFRESH_TOKEN, M2M_TOKEN, REGISTRY_TOKEN]
_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX file modes")


# --------------------------------------------------------------------------- files, by hand


def write_login(
    cache_dir: Path,
    profile: str = "default",
    *,
    cached_at: float | str,
    id_token: str = ID_TOKEN,
    access_token: str = ACCESS_TOKEN,
    refresh_token: str = REFRESH_TOKEN,
    expires_in: int | str = 3600,
    mode: int = 0o644,
) -> Path:
    """``profile``'s section of the CLI's ``.token``, as ``menda auth login`` writes it."""
    path = cache_dir / ".token"
    parser = configparser.ConfigParser(interpolation=None)
    if path.exists():
        parser.read(path, encoding="utf-8")
    parser[profile] = {
        "id_token": id_token,
        "access_token": access_token,
        "refresh_token": refresh_token,
        "expires_in": str(expires_in),
        "token_type": "Bearer",
        "cached_at": str(cached_at),
    }
    cache_dir.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        parser.write(handle)
    path.chmod(mode)
    return path


def entry_path(cache_dir: Path, key: str) -> Path:
    escaped = "".join(
        ch if ch in _SAFE else "".join(f"%{b:02X}" for b in ch.encode("utf-8")) for ch in key
    )
    return cache_dir / "menda-keyring" / (escaped + ".json")


def write_entry(cache_dir: Path, key: str, entry: dict[str, Any] | str) -> Path:
    path = entry_path(cache_dir, key)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(entry if isinstance(entry, str) else json.dumps(entry), encoding="utf-8")
    return path


def registry_key(identity_key: str, host: str, client_id: str = "") -> str:
    # The owner part is "<identity key>\0<client id>" (empty for a user login).
    material = "\0".join((f"{identity_key}\0{client_id}", host, *REGISTRY))
    return "registry-" + hashlib.sha256(material.encode("utf-8")).hexdigest()[:32]


def u2m_config(menda_home: MendaHome, host: str = OFFLINE_HOST) -> None:
    menda_home.write_config({"default": {"host": host, "auth_type": "u2m"}})


def m2m_entry(host: str, expires_at: datetime) -> dict[str, Any]:
    return {
        "access_token": M2M_TOKEN,
        "token_type": "Bearer",
        "expires_at": format_rfc3339(expires_at),
        "host": host,
        "auth_type": "m2m",
        "client_id": CLIENT_ID,
    }


# --------------------------------------------------------------------------- running it


def report_for(
    env: dict[str, str], url: str | None = None, *, check: bool = False
) -> tuple[dict[str, Any], str]:
    """The report in-process, and everything it would print (JSON and text) for secret checks."""
    report = diagnose(url, check=check, environ=env)
    return report, json.dumps(report) + render_text(report)


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


def assert_no_secret(output: str, secrets: list[str]) -> None:
    assert secrets
    for secret in secrets:
        assert secret not in output


@pytest.fixture
def m2m_credentials() -> tuple[str, str]:
    """The client ``m2m_env`` registers: the one these tests name."""
    return CLIENT_ID, CLIENT_SECRET


@pytest.fixture
def offline_m2m_env(env: dict[str, str]) -> dict[str, str]:
    """M2M from the environment, for a host nobody listens on: no request may be made."""
    return {
        **env,
        "MENDA_CLIENT_ID": CLIENT_ID,
        "MENDA_CLIENT_SECRET": CLIENT_SECRET,
        "MENDA_HOST": OFFLINE_HOST,
    }


# --------------------------------------------------------------------------- the command line


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


def test_m2m_environment_resolves_from_env_and_exits_0(offline_m2m_env: dict[str, str]) -> None:
    result = run_script("diagnose", INDEX, env=offline_m2m_env)
    assert result.returncode == 0, result.stdout
    assert "source             env" in result.stdout
    assert "auth type          m2m" in result.stdout
    assert f"host               {OFFLINE_HOST}" in result.stdout
    assert "client id          ci-bot" in result.stdout
    assert "cache key          m2m-env:ci-bot" in result.stdout
    assert "not cached" in result.stdout
    assert "menda-keyring      used directly" in result.stdout
    assert CLIENT_SECRET not in result.stdout + result.stderr


def test_u2m_login_is_shown_in_text_without_any_token(
    env: dict[str, str], menda_home: MendaHome
) -> None:
    u2m_config(menda_home)
    write_login(menda_home.cache_dir, cached_at=datetime.now(timezone.utc).timestamp())
    result = run_module("diagnose", env=env)
    assert result.returncode == 0, result.stdout
    assert f"login file         {menda_home.cache_dir / '.token'}" in result.stdout
    assert "login              profile 'default': valid until " in result.stdout
    assert "refresh token present, id token present (presents the id token)" in result.stdout
    assert_no_secret(result.stdout + result.stderr, HANDWRITTEN[:3])


def test_json_is_one_object_with_every_section(offline_m2m_env: dict[str, str]) -> None:
    result = run_module("diagnose", "--json", INDEX, env=offline_m2m_env)
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["exit_status"] == 0
    assert set(report) >= {"versions", "backend", "identity", "cache", "url", "warnings"}
    assert report["identity"]["source"] == "env"
    assert report["backend"]["used"] in ("directly", "through the chainer")
    assert report["versions"]["packages"]["menda-keyring"]
    assert report["cache"]["access_token"]["state"] == "absent"
    assert report["cache"]["registry_token"]["state"] == "absent"


def test_url_parts_are_reported(offline_m2m_env: dict[str, str]) -> None:
    report, _ = report_for(offline_m2m_env, INDEX)
    url = report["url"]
    assert url["recognised"] is True
    assert url["domain"] == "menda-private"
    assert url["domain_owner"] == "058264169513"
    assert url["region"] == "eu-west-1"
    assert url["repository"] == "menda-plugins"
    assert url["format"] == "pypi"
    assert url["endpoint"] == HOST


def test_non_codeartifact_url_is_not_recognised(offline_m2m_env: dict[str, str]) -> None:
    result = run_script("diagnose", "https://pypi.org/simple/", env=offline_m2m_env)
    assert result.returncode == 1
    assert "not recognised" in result.stdout
    assert "'pypi.org' is not an AWS CodeArtifact repository endpoint" in result.stdout


def test_wrong_username_in_the_url_is_a_problem(offline_m2m_env: dict[str, str]) -> None:
    url = f"https://bob:hunter2@{HOST}/pypi/r/simple/"
    result = run_script("diagnose", url, env=offline_m2m_env)
    assert result.returncode == 1
    assert "requires 'aws'" in result.stdout
    assert "hunter2" not in result.stdout
    assert "bob:***@" in result.stdout


def test_plain_http_url_is_a_problem(offline_m2m_env: dict[str, str]) -> None:
    report, _ = report_for(offline_m2m_env, f"http://{HOST}/pypi/menda-plugins/simple/")
    assert report["url"]["recognised"] is True
    assert report["url"]["scheme"] == "http"
    assert any("plain http://" in p for p in report["url"]["problems"])
    assert report["exit_status"] == 1


@pytest.mark.parametrize(
    "args",
    [["diagnose", "--no-cache", INDEX], ["diagnose", "--bogus"], ["diagnose", "a", "b"], []],
)
def test_usage_errors_exit_2(args: list[str], env: dict[str, str]) -> None:
    result = run_script(*args, env=env)
    assert result.returncode == 2
    assert result.stdout == ""


def test_help_documents_the_exit_status_and_the_live_check(env: dict[str, str]) -> None:
    result = run_script("diagnose", "--help", env=env)
    assert result.returncode == 0
    assert "exit status" in result.stdout
    assert "neither used nor replaced" in result.stdout


# --------------------------------------------------------------------------- the keyring backend


def test_keyring_configured_to_another_backend_is_a_problem(
    offline_m2m_env: dict[str, str],
) -> None:
    env = {**offline_m2m_env, "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"}
    result = run_script("diagnose", "--json", env=env)
    backend = json.loads(result.stdout)["backend"]
    assert result.returncode == 1
    assert backend["used"] == "no"
    assert "PYTHON_KEYRING_BACKEND" in backend["reason"]


def test_backend_reached_through_the_chainer_is_reported_with_its_position(
    offline_m2m_env: dict[str, str],
) -> None:
    env = {**offline_m2m_env, "PYTHON_KEYRING_BACKEND": "keyring.backends.chainer.ChainerBackend"}
    result = run_script("diagnose", env=env)
    assert result.returncode == 0, result.stdout
    assert "used through the chainer" in result.stdout
    assert "1. menda.keyring.backend.MendaCodeArtifactKeyring (priority 9)" in result.stdout


def test_keyringrc_naming_another_backend_is_a_problem(
    offline_m2m_env: dict[str, str], menda_home: MendaHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    from keyring.util import platform_

    config_home = menda_home.home / "config"
    # keyring reads XDG_CONFIG_HOME on Linux and macOS, LOCALAPPDATA on Windows.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config_home))
    monkeypatch.setenv("LOCALAPPDATA", str(config_home))
    rc = platform_.config_root() / "keyringrc.cfg"
    rc.parent.mkdir(parents=True)
    rc.write_text("[backend]\ndefault-keyring=keyring.backends.null.Keyring\n", encoding="utf-8")
    env = {**offline_m2m_env, "XDG_CONFIG_HOME": str(config_home), "LOCALAPPDATA": str(config_home)}
    result = run_script("diagnose", "--json", env=env)
    backend = json.loads(result.stdout)["backend"]
    assert result.returncode == 1
    assert backend["used"] == "no"
    assert backend["selected"].startswith("keyring.backends.null.Keyring")
    assert str(rc) in backend["reason"]


# --------------------------------------------------------------------------- U2M: the CLI's login


@posix_only
def test_valid_login_shows_file_mode_expiry_and_which_tokens_it_holds(
    env: dict[str, str], menda_home: MendaHome, clock: FakeClock
) -> None:
    u2m_config(menda_home)
    cached_at = clock.now() - timedelta(minutes=10)
    path = write_login(menda_home.cache_dir, cached_at=cached_at.timestamp(), mode=0o644)
    report, output = report_for(env)
    login = report["cache"]["login"]
    assert login["path"] == str(path)
    assert login["exists"] is True
    assert login["parses"] is True
    assert login["mode"] == "0644"
    assert "chmod 600" in login["mode_note"]
    assert login["profiles"] == ["default"]
    assert login["state"] == "valid"
    assert login["expires_at"] == format_rfc3339(cached_at + timedelta(seconds=3600))
    assert "50 min left" in login["detail"]
    assert login["has_refresh_token"] is True
    assert login["has_id_token"] is True
    assert login["presents"] == "id token"
    assert not any("NoCachedLoginError" in p for p in report["problems"])
    assert_no_secret(output, HANDWRITTEN[:3])


def test_login_without_id_token_presents_the_access_token(
    env: dict[str, str], menda_home: MendaHome, clock: FakeClock
) -> None:
    u2m_config(menda_home)
    write_login(menda_home.cache_dir, cached_at=clock.now().timestamp(), id_token="")
    login = report_for(env)[0]["cache"]["login"]
    assert login["has_id_token"] is False
    assert login["presents"] == "access token"


def test_u2m_profile_without_login_file_is_no_cached_login(
    env: dict[str, str], menda_home: MendaHome
) -> None:
    u2m_config(menda_home)
    result = run_module("diagnose", env=env)
    assert result.returncode == 1
    assert "source             profile:default" in result.stdout
    assert "auth type          u2m" in result.stdout
    assert "(does not exist)" in result.stdout
    assert "No valid cached token for profile 'default'" in result.stdout
    assert "[NoCachedLoginError]" in result.stdout


def test_expired_login_with_a_refresh_token_is_not_a_problem_and_says_expired(
    env: dict[str, str], menda_home: MendaHome, clock: FakeClock
) -> None:
    u2m_config(menda_home)
    cached_at = clock.now() - timedelta(hours=3)
    write_login(menda_home.cache_dir, cached_at=cached_at.timestamp())
    report, output = report_for(env)
    login = report["cache"]["login"]
    assert login["state"] == "expired"
    assert login["has_refresh_token"] is True
    assert format_rfc3339(cached_at + timedelta(hours=1)) in login["detail"]
    assert "will be refreshed" in login["detail"]
    assert not any("NoCachedLoginError" in p for p in report["problems"])
    assert_no_secret(output, HANDWRITTEN[:3])


def test_expired_login_without_refresh_token_is_no_cached_login(
    env: dict[str, str], menda_home: MendaHome, clock: FakeClock
) -> None:
    u2m_config(menda_home)
    cached_at = clock.now() - timedelta(hours=3)
    write_login(menda_home.cache_dir, cached_at=cached_at.timestamp(), refresh_token="")
    report, _ = report_for(env)
    assert report["cache"]["login"]["has_refresh_token"] is False
    assert report["cache"]["login"]["state"] == "expired"
    assert any(
        "has expired and holds no refresh token" in p and p.endswith("[NoCachedLoginError]")
        for p in report["problems"]
    )
    assert report["exit_status"] == 1


def test_login_within_the_last_minute_is_expiring(
    env: dict[str, str], menda_home: MendaHome, clock: FakeClock
) -> None:
    u2m_config(menda_home)
    cached_at = clock.now() - timedelta(seconds=3600 - 30)
    write_login(menda_home.cache_dir, cached_at=cached_at.timestamp())
    login = report_for(env)[0]["cache"]["login"]
    assert login["state"] == "expiring"
    assert "margin" in login["detail"]


def test_login_saved_in_the_future_asks_about_the_clock(
    env: dict[str, str], menda_home: MendaHome, clock: FakeClock
) -> None:
    u2m_config(menda_home)
    write_login(menda_home.cache_dir, cached_at=(clock.now() + timedelta(days=3)).timestamp())
    login = report_for(env)[0]["cache"]["login"]
    assert login["state"] == "future"
    assert "clock" in login["detail"]


def test_login_file_that_does_not_parse_is_reported_without_quoting_it(
    env: dict[str, str], menda_home: MendaHome
) -> None:
    u2m_config(menda_home)
    menda_home.cache_dir.mkdir(parents=True)
    (menda_home.cache_dir / ".token").write_text(
        f"[default]\naccess_token = {ACCESS_TOKEN}\n[default]\nbroken line {REFRESH_TOKEN}\n",
        encoding="utf-8",
    )
    report, output = report_for(env)
    login = report["cache"]["login"]
    assert login["exists"] is True
    assert login["parses"] is False
    assert login["state"] == "unreadable"
    assert "not a valid INI file" in login["detail"]
    assert any("[NoCachedLoginError]" in p for p in report["problems"])
    assert_no_secret(output, [ACCESS_TOKEN, REFRESH_TOKEN])


def test_login_with_a_bad_value_is_invalid(
    env: dict[str, str], menda_home: MendaHome, clock: FakeClock
) -> None:
    u2m_config(menda_home)
    write_login(menda_home.cache_dir, cached_at=clock.now().timestamp(), expires_in="soon")
    report, output = report_for(env)
    login = report["cache"]["login"]
    assert login["parses"] is True
    assert login["state"] == "invalid"
    assert "missing or bad value" in login["detail"]
    assert_no_secret(output, HANDWRITTEN[:3])


def test_login_of_another_profile_names_the_profiles_found(
    env: dict[str, str], menda_home: MendaHome, clock: FakeClock
) -> None:
    u2m_config(menda_home)
    write_login(menda_home.cache_dir, "staging", cached_at=clock.now().timestamp())
    report, _ = report_for(env)
    login = report["cache"]["login"]
    assert login["state"] == "absent"
    assert login["profiles"] == ["staging"]
    assert "'staging'" in login["detail"]
    assert any("[NoCachedLoginError]" in p for p in report["problems"])


def test_profile_id_selects_the_login_section(
    env: dict[str, str], menda_home: MendaHome, clock: FakeClock
) -> None:
    menda_home.write_config({"dev": {"host": OFFLINE_HOST, "auth_type": "u2m"}})
    write_login(menda_home.cache_dir, "default", cached_at=0.0)
    write_login(menda_home.cache_dir, "dev", cached_at=clock.now().timestamp())
    login = report_for({**env, "MENDA_PROFILE_ID": "dev"})[0]["cache"]["login"]
    assert login["profile"] == "dev"
    assert login["state"] == "valid"


def test_legacy_token_files_are_not_read_as_logins(
    env: dict[str, str], menda_home: MendaHome, clock: FakeClock
) -> None:
    u2m_config(menda_home)
    menda_home.cache_dir.mkdir(parents=True)
    legacy = {
        "access_token": ACCESS_TOKEN,
        "expires_at": format_rfc3339(clock.now() + timedelta(hours=1)),
        "host": OFFLINE_HOST,
        "auth_type": "u2m",
    }
    (menda_home.cache_dir / "default.token").write_text(json.dumps(legacy), encoding="utf-8")
    report, output = report_for(env)
    assert report["cache"]["login"]["state"] == "absent"
    assert_no_secret(output, [ACCESS_TOKEN])


# ---------------------------------------------------------------- M2M and registry entries


def test_m2m_access_entry_shows_until_when_it_is_used(
    offline_m2m_env: dict[str, str], menda_home: MendaHome, clock: FakeClock
) -> None:
    expires_at = clock.now() + timedelta(minutes=30)
    path = write_entry(menda_home.cache_dir, "m2m-env:ci-bot", m2m_entry(OFFLINE_HOST, expires_at))
    report, output = report_for(offline_m2m_env)
    access = report["cache"]["access_token"]
    assert access["path"] == str(path)
    assert access["state"] == "valid"
    assert access["expires_at"] == format_rfc3339(expires_at)
    assert access["usable_until"] == format_rfc3339(expires_at - timedelta(seconds=60))
    assert "login" not in report["cache"]
    assert_no_secret(output, [M2M_TOKEN, CLIENT_SECRET])


def test_m2m_profile_uses_the_profile_key(
    env: dict[str, str], menda_home: MendaHome, clock: FakeClock
) -> None:
    menda_home.write_config(
        {
            "ci": {
                "host": OFFLINE_HOST,
                "auth_type": "m2m",
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
            }
        }
    )
    expired = clock.now() - timedelta(minutes=5)
    write_entry(menda_home.cache_dir, "m2m-profile:ci", m2m_entry(OFFLINE_HOST, expired))
    report, output = report_for({**env, "MENDA_PROFILE_ID": "ci"})
    access = report["cache"]["access_token"]
    assert access["key"] == "m2m-profile:ci"
    assert access["state"] == "expired"
    assert "5 min ago" in access["detail"]
    assert not any("MendaCloudAPIError" in p for p in report["problems"])
    assert_no_secret(output, [M2M_TOKEN, CLIENT_SECRET])


def test_m2m_entry_of_another_host_is_unused_and_says_why(
    offline_m2m_env: dict[str, str], menda_home: MendaHome, clock: FakeClock
) -> None:
    other = "https://other.menda.example"
    write_entry(
        menda_home.cache_dir,
        "m2m-env:ci-bot",
        m2m_entry(other, clock.now() + timedelta(hours=1)),
    )
    report, output = report_for(offline_m2m_env)
    access = report["cache"]["access_token"]
    assert access["state"] == "unusable"
    assert "another host" in access["detail"]
    assert access["written_for"]["host"] == other
    assert other in render_text(report)
    assert_no_secret(output, [M2M_TOKEN])


def test_corrupt_m2m_entry_is_unusable(
    offline_m2m_env: dict[str, str], menda_home: MendaHome
) -> None:
    write_entry(menda_home.cache_dir, "m2m-env:ci-bot", '{"access_token": "' + M2M_TOKEN)
    report, output = report_for(offline_m2m_env)
    access = report["cache"]["access_token"]
    assert access["state"] == "unusable"
    assert "not a readable JSON object" in access["detail"]
    assert_no_secret(output, [M2M_TOKEN])


@pytest.mark.parametrize(
    ("lifetime", "state"),
    [(timedelta(hours=2), "valid"), (timedelta(minutes=10), "expiring")],
)
def test_registry_entry_for_the_url_shows_whether_it_is_used(
    offline_m2m_env: dict[str, str],
    menda_home: MendaHome,
    clock: FakeClock,
    lifetime: timedelta,
    state: str,
) -> None:
    key = registry_key("m2m-env:ci-bot", OFFLINE_HOST, "ci-bot")
    entry = {
        "token": REGISTRY_TOKEN,
        "expires_at": format_rfc3339(clock.now() + lifetime),
        "host": OFFLINE_HOST,
        "identity": "m2m-env:ci-bot",
        "domain": REGISTRY[0],
        "domain_owner": REGISTRY[1],
        "region": REGISTRY[2],
    }
    path = write_entry(menda_home.cache_dir, key, entry)
    report, output = report_for(offline_m2m_env, INDEX)
    registry = report["cache"]["registry_token"]
    assert registry["key"] == key
    assert registry["path"] == str(path)
    assert registry["state"] == state
    assert_no_secret(output, [REGISTRY_TOKEN])


def test_registry_entry_of_another_identity_is_unused(
    env: dict[str, str], menda_home: MendaHome, clock: FakeClock
) -> None:
    u2m_config(menda_home)
    write_login(menda_home.cache_dir, cached_at=clock.now().timestamp())
    key = registry_key("u2m-profile:default", OFFLINE_HOST)
    entry = {
        "token": REGISTRY_TOKEN,
        "expires_at": format_rfc3339(clock.now() + timedelta(hours=2)),
        "host": OFFLINE_HOST,
        "identity": "m2m-env:someone-else",
        "domain": REGISTRY[0],
        "domain_owner": REGISTRY[1],
        "region": REGISTRY[2],
    }
    write_entry(menda_home.cache_dir, key, entry)
    report, output = report_for(env, INDEX)
    registry = report["cache"]["registry_token"]
    assert registry["state"] == "unusable"
    assert "another identity" in registry["detail"]
    assert_no_secret(output, [REGISTRY_TOKEN, *HANDWRITTEN[:3]])


# --------------------------------------------------------------------------- --check (live)


def test_check_m2m_lists_each_request_and_says_who_we_are(
    m2m_env: dict[str, str], menda_cloud: MendaCloudEmulator, menda_home: MendaHome
) -> None:
    result = run_script("diagnose", "--check", INDEX, env=m2m_env)
    assert result.returncode == 0, result.stdout + result.stderr
    token_line = f"POST {menda_cloud.url}/api/v1/auth/oauth2/token -> 200 in "
    whoami_line = f"GET {menda_cloud.url}/api/v1/auth/whoami -> 200 in "
    registry_line = f"POST {menda_cloud.url}/api/v1/auth/registry/token -> 200 in "
    out = result.stdout
    assert out.index(token_line) < out.index(whoami_line) < out.index(registry_line)
    assert "new from menda cloud (client credentials grant)" in out
    assert "username ci-bot" in out
    assert "identity type service_principal" in out
    assert "live exchange made: token present" in out
    assert menda_cloud.count(endpoint="token") == 1
    assert menda_cloud.count(endpoint="registry") == 1
    minted = [t.token for t in menda_cloud.minted_registry_tokens]
    assert len(minted) == 1
    assert_no_secret(
        result.stdout + result.stderr, [CLIENT_SECRET, *minted, *menda_home.cached_secrets()]
    )


def test_check_needs_no_url(m2m_env: dict[str, str], menda_cloud: MendaCloudEmulator) -> None:
    result = run_module("diagnose", "--check", "--json", env=m2m_env)
    report = json.loads(result.stdout)
    assert result.returncode == 0, report["problems"]
    assert "url" not in report
    assert report["check"]["exchange"]["ok"] is True
    assert menda_cloud.count(endpoint="registry") == 1


def test_check_always_exchanges_live_and_leaves_the_registry_entry_alone(
    m2m_env: dict[str, str], menda_cloud: MendaCloudEmulator, menda_home: MendaHome
) -> None:
    key = registry_key("m2m-env:ci-bot", menda_cloud.url, "ci-bot")
    entry = {
        "token": REGISTRY_TOKEN,
        "expires_at": format_rfc3339(datetime.now(timezone.utc) + timedelta(hours=6)),
        "host": menda_cloud.url,
        "identity": "m2m-env:ci-bot",
        "domain": REGISTRY[0],
        "domain_owner": REGISTRY[1],
        "region": REGISTRY[2],
    }
    path = write_entry(menda_home.cache_dir, key, entry)
    before = path.read_bytes()
    run_script("diagnose", "--check", INDEX, env=m2m_env)
    menda_cloud.clear_log()
    result = run_script("diagnose", "--check", "--json", INDEX, env=m2m_env)
    report = json.loads(result.stdout)
    assert result.returncode == 0, report["problems"]
    assert report["cache"]["registry_token"]["state"] == "valid"
    check = report["check"]
    assert check["bearer"]["from_cache"] is True  # the access token cached by the first run
    assert check["exchange"]["live"] is True
    assert check["exchange"]["expires_at"]
    assert [r["url"].rsplit("/api/v1", 1)[1] for r in check["requests"]] == [
        "/auth/whoami",
        "/auth/registry/token",
    ]
    assert menda_cloud.count(endpoint="token") == 0
    assert menda_cloud.count(endpoint="registry") == 1
    assert path.read_bytes() == before
    minted = [t.token for t in menda_cloud.minted_registry_tokens]
    assert_no_secret(result.stdout + result.stderr, [REGISTRY_TOKEN, CLIENT_SECRET, *minted])


def test_check_u2m_with_a_valid_login_makes_no_token_request(
    env: dict[str, str], menda_home: MendaHome, menda_cloud: MendaCloudEmulator
) -> None:
    login = menda_cloud.add_user("alice")
    u2m_config(menda_home, menda_cloud.url)
    write_login(
        menda_home.cache_dir,
        cached_at=login.issued_at.timestamp(),
        id_token=login.id_token,
        access_token=login.access_token,
        refresh_token=login.refresh_token,
        expires_in=login.expires_in,
    )
    report, output = report_for(env, INDEX, check=True)
    check = report["check"]
    assert check["ok"] is True, report["problems"]
    assert check["bearer"]["refreshed"] is False
    assert check["bearer"]["presents"] == "id token"
    assert check["whoami"]["username"] == "alice"
    assert check["whoami"]["identity_type"] == "user"
    assert check["exchange"]["token"] == "present"
    assert menda_cloud.count(endpoint="token") == 0
    assert menda_cloud.count(endpoint="registry") == 1
    minted = [t.token for t in menda_cloud.minted_registry_tokens]
    secrets = [login.id_token, login.access_token, login.refresh_token, *minted]
    assert_no_secret(output, secrets)


def test_check_u2m_refreshes_an_expired_login_says_so_and_writes_it_back(
    env: dict[str, str], menda_home: MendaHome, menda_cloud: MendaCloudEmulator
) -> None:
    login = menda_cloud.add_user("alice")
    u2m_config(menda_home, menda_cloud.url)
    stale = (datetime.now(timezone.utc) - timedelta(hours=2)).timestamp()
    write_login(menda_home.cache_dir, "other", cached_at=stale, refresh_token="")
    path = write_login(
        menda_home.cache_dir,
        cached_at=stale,
        id_token=login.id_token,
        access_token=login.access_token,
        refresh_token=login.refresh_token,
    )
    result = run_script("diagnose", "--check", "--json", INDEX, env=env)
    report = json.loads(result.stdout)
    assert result.returncode == 0, report["problems"]
    bearer = report["check"]["bearer"]
    assert bearer["refreshed"] is True
    assert bearer["stored"] is True
    assert str(path) in bearer["note"]
    assert menda_cloud.count(endpoint="token") == 1
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path, encoding="utf-8")
    assert parser.sections() == ["other", "default"]
    assert float(parser["default"]["cached_at"]) > stale + 3600
    secrets = [
        login.id_token,
        login.access_token,
        login.refresh_token,
        *(parser["default"][k] for k in ("id_token", "access_token", "refresh_token")),
        *(t.token for t in menda_cloud.minted_registry_tokens),
    ]
    assert_no_secret(result.stdout + result.stderr, [s for s in secrets if s])


def test_check_u2m_with_a_refused_refresh_reports_no_cached_login(
    env: dict[str, str], menda_home: MendaHome, menda_cloud: MendaCloudEmulator
) -> None:
    login = menda_cloud.add_user("alice")
    menda_cloud.revoke_refresh_token(login.refresh_token)
    u2m_config(menda_home, menda_cloud.url)
    stale = (datetime.now(timezone.utc) - timedelta(hours=2)).timestamp()
    write_login(menda_home.cache_dir, cached_at=stale, refresh_token=login.refresh_token)
    report, output = report_for(env, check=True)
    check = report["check"]
    assert check["bearer"]["error"]["class"] == "NoCachedLoginError"
    assert "skipped" in check["whoami"]
    assert "skipped" in check["exchange"]
    assert menda_cloud.count(endpoint="registry") == 0
    assert report["exit_status"] == 1
    assert_no_secret(output, [login.refresh_token, ID_TOKEN, ACCESS_TOKEN])


def test_failed_exchange_reports_the_status_and_the_error(
    env: dict[str, str], menda_cloud: MendaCloudEmulator
) -> None:
    menda_cloud.add_m2m_client("no-access", CLIENT_SECRET, domains=[])
    environ = {
        **env,
        "MENDA_CLIENT_ID": "no-access",
        "MENDA_CLIENT_SECRET": CLIENT_SECRET,
        "MENDA_HOST": menda_cloud.url,
    }
    result = run_script("diagnose", "--check", "--json", INDEX, env=environ)
    report = json.loads(result.stdout)
    assert result.returncode == 1
    statuses = [r["status"] for r in report["check"]["requests"]]
    assert statuses[0] == 200
    assert statuses[-1] == 403
    assert report["check"]["exchange"]["error"]["class"] == "MendaCloudAPIError"
    assert any("403" in p for p in report["problems"])
    assert CLIENT_SECRET not in result.stdout + result.stderr


def test_wrong_client_secret_fails_at_the_token_and_skips_the_rest(
    env: dict[str, str], menda_cloud: MendaCloudEmulator
) -> None:
    menda_cloud.add_m2m_client(CLIENT_ID, "the-right-secret")
    environ = {
        **env,
        "MENDA_CLIENT_ID": CLIENT_ID,
        "MENDA_CLIENT_SECRET": CLIENT_SECRET,
        "MENDA_HOST": menda_cloud.url,
    }
    report, output = report_for(environ, check=True)
    check = report["check"]
    assert check["bearer"]["error"]["class"] == "MendaCloudAPIError"
    assert "401" in check["bearer"]["error"]["message"]
    assert "skipped" in check["whoami"]
    assert [r["status"] for r in check["requests"]][-1] == 401
    assert all("?" not in r["url"] for r in check["requests"])
    assert_no_secret(output, [CLIENT_SECRET, "the-right-secret"])


def test_check_without_an_identity_is_skipped(env: dict[str, str]) -> None:
    report, _ = report_for(env, check=True)
    assert report["check"] == {"ok": False, "skipped": "no identity to check (see above)"}
    assert report["exit_status"] == 1


def test_debug_level_traces_on_stderr_without_secrets(
    m2m_env: dict[str, str], menda_cloud: MendaCloudEmulator
) -> None:
    result = run_script("diagnose", "--check", env={**m2m_env, "MENDA_LOG_LEVEL": "debug"})
    assert result.returncode == 0, result.stdout
    assert "menda-keyring: " in result.stderr
    minted = [t.token for t in menda_cloud.minted_registry_tokens]
    assert_no_secret(result.stdout + result.stderr, [CLIENT_SECRET, *minted])


def test_partial_m2m_environment_is_a_warning_in_the_report(
    env: dict[str, str], menda_home: MendaHome, clock: FakeClock
) -> None:
    u2m_config(menda_home)
    write_login(menda_home.cache_dir, cached_at=clock.now().timestamp())
    report, output = report_for({**env, "MENDA_CLIENT_ID": CLIENT_ID})
    assert report["identity"]["source"] == "profile:default"
    assert any("MENDA_CLIENT_ID" in w for w in report["warnings"])
    assert "Warnings" in render_text(report)
    assert_no_secret(output, HANDWRITTEN[:3])


def test_the_cache_directory_override_is_used(
    offline_m2m_env: dict[str, str], tmp_path: Path
) -> None:
    directory = tmp_path / "elsewhere"
    report, _ = report_for({**offline_m2m_env, "MENDA_TOKEN_CACHE_DIR": str(directory)})
    assert report["cache"]["directory"] == str(directory)
    assert report["cache"]["exists"] is False
    assert report["cache"]["access_token"]["path"].startswith(str(directory) + os.sep)
