"""The admin JSON API and ``python -m menda.testing serve`` as a separate process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from menda.testing import MendaCloudEmulator
from menda.testing.__main__ import build_parser


def token_request(url: str, client_id: str, secret: str) -> requests.Response:
    params = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    return requests.post(url + "/api/v1/auth/oauth2/token", params=params, timeout=5)


def registry_request(url: str, token: str) -> requests.Response:
    return requests.post(
        url + "/api/v1/auth/registry/token",
        headers={"authorizationToken": f"Bearer {token}"},
        timeout=5,
    )


def admin(url: str, method: str, path: str, body: Any = None) -> requests.Response:
    return requests.request(method, f"{url}/_emulator{path}", json=body, timeout=5)


@pytest.fixture
def cloud() -> Iterator[MendaCloudEmulator]:
    with MendaCloudEmulator() as emulator:
        yield emulator


def test_admin_requests_lists_the_log_without_secrets(cloud: MendaCloudEmulator) -> None:
    cloud.add_m2m_client("ci", "s3cret")
    access = token_request(cloud.url, "ci", "s3cret").json()["access_token"]
    response = admin(cloud.url, "GET", "/requests")
    assert response.status_code == 200
    entries = response.json()["requests"]
    assert [(e["endpoint"], e["status"], e["client_id"]) for e in entries] == [("token", 200, "ci")]
    assert "s3cret" not in response.text
    assert access not in response.text
    assert cloud.count() == 1  # admin requests are not logged


def test_admin_can_clear_the_log(cloud: MendaCloudEmulator) -> None:
    requests.get(cloud.url + "/x", timeout=5)
    assert admin(cloud.url, "DELETE", "/requests").status_code == 200
    assert cloud.requests == []


def test_admin_registers_m2m_clients_with_domains(cloud: MendaCloudEmulator) -> None:
    body = {"client_id": "remote", "client_secret": "pw", "domains": ["a"]}
    assert admin(cloud.url, "POST", "/m2m", body).status_code == 200
    access = token_request(cloud.url, "remote", "pw").json()["access_token"]
    assert registry_request(cloud.url, access).status_code == 403  # the tenant's is menda-private
    body = {"client_id": "other", "client_secret": "pw", "registry": ["a", "1", "r"]}
    assert admin(cloud.url, "POST", "/m2m", body).status_code == 200
    assert cloud.registry_of("other") == ("a", "1", "r")


def test_admin_creates_users_and_returns_their_login(cloud: MendaCloudEmulator) -> None:
    login = admin(cloud.url, "POST", "/users", {"name": "bob", "email": "b@x"}).json()
    assert login["client_id"] == "menda-cli"
    assert login["id_token"].startswith("mit_")
    assert login["refresh_token"].startswith("mrt_")
    assert login["expires_at"].endswith("Z")
    assert login["expires_in"] == 3600
    params = {
        "grant_type": "refresh_token",
        "refresh_token": login["refresh_token"],
        "client_id": "menda-cli",
    }
    assert requests.post(cloud.token_url, params=params, timeout=5).status_code == 200


def test_admin_injects_faults(cloud: MendaCloudEmulator) -> None:
    cloud.add_m2m_client("ci", "s3cret")
    body = {"endpoint": "token", "fault": {"kind": "status", "code": 503}, "times": 2}
    assert admin(cloud.url, "POST", "/faults", body).status_code == 200
    codes = [token_request(cloud.url, "ci", "s3cret").status_code for _ in range(3)]
    assert codes == [503, 503, 200]


def test_admin_settings_and_registries(cloud: MendaCloudEmulator) -> None:
    settings = {
        "access_token_lifetime": 7,
        "rotate_refresh_tokens": 0,
        "device_interval": 0,
        "device_pending_polls": 2,
        "device_login_user": "bob",
        "app_client_id": "app",
        "registry": ["d", "2", "r2"],
    }
    assert admin(cloud.url, "POST", "/settings", settings).status_code == 200
    assert cloud.access_token_lifetime == 7
    assert cloud.rotate_refresh_tokens is False
    assert (cloud.device_interval, cloud.device_pending_polls) == (0, 2)
    assert (cloud.device_login_user, cloud.app_client_id) == ("bob", "app")
    assert cloud.registry == ("d", "2", "r2")
    admin(cloud.url, "POST", "/registries", {"domain": "d", "domain_owner": "1", "region": "r"})
    cloud.add_m2m_client("ci", "s3cret")
    token = cloud.mint_registry_token("ci", domain="d", owner="1", region="r").token
    check = {"token": token, "domain": "d", "domain_owner": "1", "region": "r"}
    assert admin(cloud.url, "POST", "/registry-tokens/validate", check).json() == {"valid": True}
    check["region"] = "elsewhere"
    assert admin(cloud.url, "POST", "/registry-tokens/validate", check).json() == {"valid": False}


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/m2m", {"client_id": "x"}, 400),
        ("POST", "/faults", {"endpoint": "token", "fault": {"kind": "nope"}}, 400),
        ("POST", "/faults", {"endpoint": "nowhere", "fault": {"kind": "drop"}}, 400),
        ("POST", "/users", {"name": "u", "domains": "not-a-list"}, 400),
        ("POST", "/users", {"name": "u", "registry": ["only-one"]}, 400),
        ("POST", "/settings", {"registry": "d:1:r"}, 400),
        ("GET", "/unknown", None, 404),
    ],
)
def test_admin_rejects_bad_requests(
    cloud: MendaCloudEmulator, method: str, path: str, body: Any, status: int
) -> None:
    response = admin(cloud.url, method, path, body)
    assert response.status_code == status
    assert response.json()["detail"]


def test_cli_parser_has_a_serve_subcommand() -> None:
    args = build_parser().parse_args(
        ["serve", "--port", "0", "--m2m", "a:b:c", "--m2m", "d:e", "--registry", "x:1:r"]
    )
    assert args.m2m == [("a", "b:c"), ("d", "e")]
    assert args.registry == ("x", "1", "r")
    assert build_parser().parse_args(["serve"]).registry == (
        "menda-private",
        "058264169513",
        "eu-west-1",
    )
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--m2m", "no-colon"])


def test_serve_runs_in_its_own_process_until_terminated() -> None:
    env = {k: v for k, v in os.environ.items() if not k.upper().endswith("_PROXY")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "menda.testing",
            "serve",
            "--m2m",
            "ci:s3:cr%et",
            "--access-token-lifetime",
            "99",
            "--user",
            "alice",
            "--registry",
            "acme:111122223333:us-east-1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        response = token_request(url, "ci", "s3:cr%et")
        assert response.status_code == 200
        assert response.json()["expires_in"] == 99
        token = registry_request(url, response.json()["access_token"]).json()["token"]
        check = {"token": token, "domain": "acme", "domain_owner": "111122223333"}
        check["region"] = "us-east-1"
        assert admin(url, "POST", "/registry-tokens/validate", check).json() == {"valid": True}
        discovery = requests.get(url + "/api/v1/auth/discovery?hostname=h", timeout=5)
        assert discovery.json() == {"app_client_id": "menda-cli"}
        entries = admin(url, "GET", "/requests").json()["requests"]
        assert [e["identity"] for e in entries] == ["ci", "ci", None]
        assert "s3:cr%et" not in json.dumps(entries)
    finally:
        process.terminate()  # SIGTERM on POSIX
        _, stderr = process.communicate(timeout=10)
    if sys.platform != "win32":
        assert process.returncode == 0
    assert stderr == ""  # quiet: no access log, no traceback
