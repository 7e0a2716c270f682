"""The emulator is faithful: the published Menda clients work against it, unmodified.

``menda-cli`` 0.5.0 (``menda auth configure``, ``login``, ``whoami``) and the
reference backend ``menda-keyring`` 0.0.2 (``keyring get``) are the only evidence
of what the real menda cloud accepts. Each runs from its own virtual environment,
built once and kept under ``~/.cache/menda-keyring-tests/`` (both ship a
``menda/__init__.py`` of their own: they must stay out of the workspace's
environment). The log then shows the exact shape they sent.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from menda.testing import (
    CLI_TOKEN_KEYS,
    MendaCloudEmulator,
    MendaHome,
    read_cli_token_file,
    write_cached_login,
)
from menda.testing.published import PublishedClients

pytestmark = [
    pytest.mark.skipif(
        sys.version_info < (3, 11), reason="menda-cli 0.5.0 requires Python 3.11 or newer"
    ),
    pytest.mark.slow,
]
# `menda auth login` opens a browser: BROWSER=true makes that a no-op on POSIX only.
posix_browser = pytest.mark.skipif(sys.platform == "win32", reason="BROWSER=true needs POSIX")

DOMAIN, OWNER, REGION = "menda-private", "058264169513", "eu-west-1"
INDEX = f"https://{DOMAIN}-{OWNER}.d.codeartifact.{REGION}.amazonaws.com/pypi/menda-plugins/simple/"
BACKEND = "menda.keyring.backend.MendaCodeArtifactKeyring"


@pytest.fixture
def published(published_clients: PublishedClients) -> PublishedClients:
    return published_clients


@pytest.fixture
def cloud() -> Iterator[MendaCloudEmulator]:
    # The CLI sleeps `interval` before every poll: 0 keeps the login instant.
    with MendaCloudEmulator(device_interval=0) as emulator:
        emulator.add_user("alice")
        yield emulator


def _env(home: MendaHome, **extra: str) -> dict[str, str]:
    env = home.env(
        BROWSER="true",  # webbrowser runs it with the URL: a no-op "browser"
        COLUMNS="200",  # rich wraps at 80 columns without a terminal
        NO_COLOR="1",
        PYTHON_KEYRING_BACKEND=BACKEND,
        VIRTUAL_ENV=None,
        PYTHONPATH=None,
    )
    env.update(extra)
    return env


def _run(
    argv: list[str], env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, input=stdin, capture_output=True, text=True, timeout=60)


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


def _configure(
    published: PublishedClients, env: dict[str, str], profile: str, auth_type: str, host: str
) -> list[str]:
    return [
        published.menda,
        "auth",
        "configure",
        "--menda-profile-id",
        profile,
        "--auth-type",
        auth_type,
        "--host",
        host,
    ]


def _keyring_token(published: PublishedClients, env: dict[str, str]) -> str:
    result = _run([published.keyring, "get", INDEX, "aws"], env)
    _ok(result)
    return result.stdout.strip()


@posix_browser
def test_cli_login_whoami_and_reference_keyring_as_a_user(
    published: PublishedClients, cloud: MendaCloudEmulator, menda_home: MendaHome
) -> None:
    env = _env(menda_home)
    _ok(_run(_configure(published, env, "default", "u2m", cloud.url), env))
    login = _ok(_run([published.menda, "auth", "login"], env))
    assert "Authentication successful" in login
    assert cloud.url + "/device?user_code=" in login
    whoami = _ok(_run([published.menda, "auth", "whoami"], env))
    assert "Tenant:   menda-test" in whoami
    assert "Username: alice" in whoami
    assert "Type:     user" in whoami
    token = _keyring_token(published, env)

    assert cloud.validate_registry_token(token, domain=DOMAIN, owner=OWNER, region=REGION)
    assert [m.identity for m in cloud.minted_registry_tokens] == ["alice"]
    log = cloud.requests
    assert [(r.endpoint, r.status) for r in log] == [
        ("discovery", 200),
        ("device_authorize", 200),
        ("device_token", 400),  # {"detail": "pending"}
        ("device_token", 200),
        ("whoami", 200),
        ("registry", 200),
    ]
    assert log[0].params == {"hostname": "127.0.0.1"}
    assert log[1].params is not None
    assert log[1].params["code_challenge_method"] == "S256"
    assert (log[1].params["client_id"], log[1].params["scope"]) == ("menda-cli", "openid")
    assert log[3].grant_type == "urn:ietf:params:oauth:grant-type:device_code"
    assert log[3].content_type == "application/json"
    # whoami: the raw id token; registry: "Bearer <id token>", no body.
    assert (log[4].token_header, log[4].token_scheme, log[4].token_kind) == (
        "authorizationToken",
        None,
        "id_token",
    )
    assert (log[5].token_header, log[5].token_scheme, log[5].token_kind) == (
        "authorizationToken",
        "Bearer",
        "id_token",
    )
    assert not log[5].has_body


@posix_browser
def test_the_clis_token_file_is_what_menda_testing_writes(
    published: PublishedClients, cloud: MendaCloudEmulator, menda_home: MendaHome, tmp_path: Path
) -> None:
    env = _env(menda_home)
    menda_home.write_cached_login("other", access_token="mat_kept", cached_at=1.0)
    _ok(_run(_configure(published, env, "default", "u2m", cloud.url), env))
    _ok(_run([published.menda, "auth", "login"], env))
    sections = menda_home.read_cli_tokens()
    assert list(sections) == ["other", "default"]
    assert tuple(sections["default"]) == CLI_TOKEN_KEYS
    assert sections["other"]["access_token"] == "mat_kept"
    # The same values through our writer give the same bytes.
    for name, values in sections.items():
        write_cached_login(tmp_path, name, **values)
    assert (tmp_path / ".token").read_bytes() == menda_home.token_file.read_bytes()
    assert read_cli_token_file(tmp_path / ".token") == sections


def test_cli_whoami_accepts_a_login_written_by_menda_testing(
    published: PublishedClients, cloud: MendaCloudEmulator, menda_home: MendaHome
) -> None:
    env = _env(menda_home)
    menda_home.add_u2m_profile(cloud, user="bob")
    assert "Username: bob" in _ok(_run([published.menda, "auth", "whoami"], env))
    menda_home.write_cached_login("default", cloud.login("bob"), cached_at=0)
    expired = _run([published.menda, "auth", "whoami"], env)
    assert expired.returncode != 0
    assert "expired" in (expired.stdout + expired.stderr)


@posix_browser
def test_cli_login_behind_a_path_prefix(published: PublishedClients, menda_home: MendaHome) -> None:
    with MendaCloudEmulator(path_prefix="/gw", device_interval=0) as cloud:
        cloud.add_user("alice")
        env = _env(menda_home)
        _ok(_run(_configure(published, env, "default", "u2m", cloud.url), env))
        _ok(_run([published.menda, "auth", "login"], env))
        assert cloud.count("device_token", status=200) == 1
        assert {r.path.split("/api/")[0] for r in cloud.requests} == {"/gw"}


def test_cli_m2m_configure_whoami_and_reference_keyring_from_the_profile(
    published: PublishedClients, cloud: MendaCloudEmulator, menda_home: MendaHome
) -> None:
    secret = "mcs_" + secrets.token_urlsafe(12) + "+/:#;=&"  # no %: the CLI interpolates
    cloud.add_m2m_client("ci-bot", secret)
    env = _env(menda_home)
    # The CLI prompts for the client id and secret; prompt_toolkit reads them from a pipe.
    configure = _configure(published, env, "robot", "m2m", cloud.url)
    _ok(_run(configure, env, stdin=f"ci-bot\r{secret}\r"))
    whoami = _ok(_run([published.menda, "auth", "whoami", "--menda-profile-id", "robot"], env))
    assert "Service Principal Details" in whoami
    assert "Username: ci-bot" in whoami
    assert "Type:     service_principal" in whoami
    token = _keyring_token(published, {**env, "MENDA_PROFILE_ID": "robot"})

    assert cloud.validate_registry_token(token, domain=DOMAIN, owner=OWNER, region=REGION)
    tokens = [r for r in cloud.requests if r.endpoint == "token"]
    assert [r.params for r in tokens] == [
        {"grant_type": "client_credentials", "client_id": "ci-bot", "scope": "api/all"},
        {"grant_type": "client_credentials", "client_id": "ci-bot"},
    ]
    assert all(not r.has_body and r.token_header is None for r in tokens)
    whoami_record = cloud.requests[1]
    assert (whoami_record.endpoint, whoami_record.token_kind) == ("whoami", "access_token")


def test_reference_keyring_m2m_from_the_environment(
    published: PublishedClients, cloud: MendaCloudEmulator, menda_home: MendaHome
) -> None:
    cloud.add_m2m_client("ci", "s3cret+/:%#;")
    env = _env(menda_home, MENDA_CLIENT_ID="ci", MENDA_CLIENT_SECRET="s3cret+/:%#;")
    env["MENDA_HOST"] = cloud.url
    token = _keyring_token(published, env)

    assert token in [m.token for m in cloud.minted_registry_tokens]
    assert cloud.validate_registry_token(token, domain=DOMAIN, owner=OWNER, region=REGION)
    assert cloud.count("token") == 1
    assert cloud.count("registry") == 1
    first, second = cloud.requests
    assert first.params == {"grant_type": "client_credentials", "client_id": "ci"}
    assert (first.has_body, first.token_header, first.identity) == (False, None, "ci")
    assert (second.token_header, second.token_scheme, second.token_kind) == (
        "authorizationToken",
        "Bearer",
        "access_token",
    )
    assert (second.has_body, second.content_type) == (False, "application/json")


def test_reference_keyring_reports_the_services_refusal(
    published: PublishedClients, cloud: MendaCloudEmulator, menda_home: MendaHome
) -> None:
    cloud.add_m2m_client("narrow", "pw", domains=["elsewhere"])
    env = _env(menda_home, MENDA_CLIENT_ID="narrow", MENDA_CLIENT_SECRET="pw")
    env["MENDA_HOST"] = cloud.url
    result = _run([published.keyring, "get", INDEX, "aws"], env)
    assert result.returncode != 0
    assert "registry/token returned HTTP 403" in result.stderr
    assert "may not use CodeArtifact domain" in result.stderr


def test_our_old_shape_is_refused(cloud: MendaCloudEmulator) -> None:
    cloud.add_m2m_client("ci", "s3cret")
    form = requests.post(
        cloud.token_url, data={"grant_type": "client_credentials"}, auth=("ci", "s3cret"), timeout=5
    )
    assert form.status_code == 400
    assert "query string" in form.json()["detail"]
    token, _ = cloud.issue_access_token("ci")
    body = {"registry_type": "codeartifact", "domain": DOMAIN, "domain_owner": OWNER}
    old = requests.post(
        cloud.registry_url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=5
    )
    assert old.status_code == 401
    assert "authorizationToken" in old.json()["detail"]
    assert cloud.minted_registry_tokens == []
