"""Discovery, the device flow with PKCE, and whoami: the emulator as ``menda auth`` sees it."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from menda.testing import MendaCloudEmulator

GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)[:64]
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize(cloud: MendaCloudEmulator, challenge: str, **overrides: str) -> requests.Response:
    params = {
        "client_id": "menda-cli",
        "scope": "openid",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **overrides,
    }
    return requests.post(cloud.endpoint_url("device_authorize"), params=params, timeout=5)


def poll(cloud: MendaCloudEmulator, code: str, verifier: str, **overrides: Any) -> Any:
    body = {
        "client_id": "menda-cli",
        "redirect_uri": cloud.origin + "/auth/device/callback",
        "device_code": code,
        "grant_type": GRANT,
        "code_verifier": verifier,
        **overrides,
    }
    return requests.post(cloud.endpoint_url("device_token"), json=body, timeout=5)


def whoami(cloud: MendaCloudEmulator, value: str | None) -> requests.Response:
    headers = {} if value is None else {"authorizationToken": value}
    return requests.get(cloud.endpoint_url("whoami"), headers=headers, timeout=5)


@pytest.fixture
def cloud() -> Iterator[MendaCloudEmulator]:
    with MendaCloudEmulator(device_interval=0) as emulator:
        emulator.add_user("alice")
        yield emulator


def test_discovery_answers_the_login_apps_client_id(cloud: MendaCloudEmulator) -> None:
    url = cloud.endpoint_url("discovery")
    response = requests.get(url, params={"hostname": "127.0.0.1"}, timeout=5)
    assert response.status_code == 200
    assert response.json() == {"app_client_id": "menda-cli"}
    assert requests.get(url, timeout=5).status_code == 400
    assert requests.post(url, params={"hostname": "h"}, timeout=5).status_code == 405
    assert cloud.requests[0].params == {"hostname": "127.0.0.1"}


def test_the_app_client_id_is_a_tenant_setting() -> None:
    with MendaCloudEmulator(app_client_id="app-123") as cloud:
        url = cloud.endpoint_url("discovery")
        assert requests.get(url, params={"hostname": "x"}, timeout=5).json() == {
            "app_client_id": "app-123"
        }
        assert cloud.add_user("bob").client_id == "app-123"


def test_device_flow_is_pending_once_then_logs_the_user_in(cloud: MendaCloudEmulator) -> None:
    verifier, challenge = pkce()
    started = authorize(cloud, challenge)
    assert started.status_code == 200
    device = started.json()
    assert set(device) == {
        "device_code",
        "user_code",
        "verification_uri",
        "verification_uri_complete",
        "expires_in",
        "interval",
    }
    assert device["interval"] == 0
    assert device["expires_in"] == 600
    assert device["verification_uri_complete"].endswith("user_code=" + device["user_code"])
    pending = poll(cloud, device["device_code"], verifier)
    assert pending.status_code == 400
    assert pending.json() == {"detail": "pending"}
    done = poll(cloud, device["device_code"], verifier)
    assert done.status_code == 200
    tokens = done.json()
    assert list(tokens) == ["id_token", "access_token", "refresh_token", "expires_in", "token_type"]
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 3600
    assert whoami(cloud, tokens["id_token"]).json()["username"] == "alice"
    again = poll(cloud, device["device_code"], verifier)
    assert again.status_code == 400
    assert "already used" in again.json()["detail"]
    log = cloud.requests
    assert [r.endpoint for r in log[:3]] == ["device_authorize", "device_token", "device_token"]
    assert log[2].identity == "alice"
    assert log[2].grant_type == GRANT
    assert log[2].body == {
        "client_id": "menda-cli",
        "redirect_uri": cloud.origin + "/auth/device/callback",
        "grant_type": GRANT,
    }
    for record in log:
        assert device["device_code"] not in repr(record)
        assert verifier not in repr(record)


def test_the_interval_and_pending_polls_are_settings() -> None:
    with MendaCloudEmulator(device_interval=3, device_pending_polls=0) as cloud:
        cloud.add_user("alice")
        verifier, challenge = pkce()
        device = authorize(cloud, challenge).json()
        assert device["interval"] == 3
        assert poll(cloud, device["device_code"], verifier).status_code == 200


def test_pkce_is_verified(cloud: MendaCloudEmulator) -> None:
    _, challenge = pkce()
    device = authorize(cloud, challenge).json()
    other, _ = pkce()
    response = poll(cloud, device["device_code"], other)
    assert response.status_code == 400
    assert "PKCE" in response.json()["detail"]
    assert poll(cloud, device["device_code"], "short").status_code == 400


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"code_challenge_method": "plain"}, "S256"),
        ({"client_id": "someone-else"}, "client_id"),
        ({"scope": "profile"}, "openid"),
        ({"code_challenge": "too-short"}, "code_challenge"),
    ],
)
def test_device_authorization_is_strict(
    cloud: MendaCloudEmulator, overrides: dict[str, str], words: str
) -> None:
    _, challenge = pkce()
    response = authorize(cloud, challenge, **overrides)
    assert response.status_code == 400
    assert words in response.json()["detail"]


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"grant_type": "authorization_code"}, "grant_type"),
        ({"redirect_uri": "http://elsewhere/"}, "redirect_uri"),
        ({"device_code": "mdc_unknown"}, "device_code"),
        ({"client_id": "other"}, "client_id"),
        ({"extra": "field"}, "exactly"),
    ],
)
def test_device_token_requests_are_strict(
    cloud: MendaCloudEmulator, overrides: dict[str, str], words: str
) -> None:
    verifier, challenge = pkce()
    device = authorize(cloud, challenge).json()
    response = poll(cloud, device["device_code"], verifier, **overrides)
    assert response.status_code == 400
    assert words in response.json()["detail"]


def test_device_token_wants_json_not_a_form(cloud: MendaCloudEmulator) -> None:
    response = requests.post(
        cloud.endpoint_url("device_token"), data={"device_code": "x"}, timeout=5
    )
    assert response.status_code == 400
    assert "JSON" in response.json()["detail"]


def test_an_expired_device_code_is_refused(cloud: MendaCloudEmulator) -> None:
    verifier, challenge = pkce()
    device = authorize(cloud, challenge).json()
    start = cloud.now()
    cloud.clock = lambda: start + timedelta(seconds=601)
    response = poll(cloud, device["device_code"], verifier)
    assert response.status_code == 400
    assert "expired" in response.json()["detail"]


def test_without_a_user_nobody_approves() -> None:
    with MendaCloudEmulator(device_pending_polls=0) as cloud:
        verifier, challenge = pkce()
        device = authorize(cloud, challenge).json()
        response = poll(cloud, device["device_code"], verifier)
        assert response.status_code == 403
        assert "no user" in response.json()["detail"]


def test_device_login_user_chooses_who_approves(cloud: MendaCloudEmulator) -> None:
    cloud.add_user("bob")
    cloud.device_login_user = "bob"
    cloud.device_pending_polls = 0
    verifier, challenge = pkce()
    device = authorize(cloud, challenge).json()
    tokens = poll(cloud, device["device_code"], verifier).json()
    assert whoami(cloud, tokens["access_token"]).json()["username"] == "bob"


def test_whoami_describes_users_and_service_principals(cloud: MendaCloudEmulator) -> None:
    login = cloud.add_user("carol", email="carol@corp.example")
    cloud.add_m2m_client("ci", "pw")
    access, _ = cloud.issue_access_token("ci")
    user = whoami(cloud, login.id_token)
    assert user.status_code == 200
    assert user.json() == {
        "tenant_id": "menda-test",
        "username": "carol",
        "email": "carol@corp.example",
        "user_role": "member",
        "identity_type": "user",
    }
    robot = whoami(cloud, access).json()
    assert robot["identity_type"] == "service_principal"
    assert robot["username"] == "ci"
    assert robot["email"] is None
    record = cloud.requests[0]
    assert (record.token_header, record.token_scheme, record.token_kind) == (
        "authorizationToken",
        None,
        "id_token",
    )


def test_whoami_takes_the_raw_token_only(cloud: MendaCloudEmulator) -> None:
    login = cloud.login("alice")
    assert whoami(cloud, f"Bearer {login.id_token}").status_code == 401
    assert whoami(cloud, None).json() == {"message": "Unauthorized"}
    assert whoami(cloud, "mit_unknown").status_code == 401
    cloud.revoke_access_token(login.id_token)
    assert "revoked" in whoami(cloud, login.id_token).json()["detail"]
    old = requests.get(
        cloud.endpoint_url("whoami"),
        headers={"Authorization": f"Bearer {login.access_token}"},
        timeout=5,
    )
    assert old.status_code == 401
    assert "authorizationToken" in old.json()["detail"]


def test_verification_uri_is_absolute_under_the_emulator() -> None:
    with MendaCloudEmulator(path_prefix="/gw", device_interval=0) as cloud:
        _, challenge = pkce()
        device = authorize(cloud, challenge).json()
        parts = urlsplit(device["verification_uri"])
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == cloud.url + "/device"
