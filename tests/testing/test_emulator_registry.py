"""The emulator's registry endpoint: who gets a token, for which domain, of which shape."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import requests

from menda.testing import MendaCloudEmulator

DOMAIN, OWNER, REGION = "menda-private", "058264169513", "eu-west-1"
WHERE = {"domain": DOMAIN, "owner": OWNER, "region": REGION}


def client_credentials(cloud: MendaCloudEmulator, client_id: str, secret: str) -> requests.Response:
    params = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    return requests.post(cloud.token_url, params=params, timeout=5)


def exchange(cloud: MendaCloudEmulator, token: str) -> requests.Response:
    """What menda-keyring 0.0.2 sends: the token behind authorizationToken, no body."""
    headers = {"authorizationToken": f"Bearer {token}", "Content-Type": "application/json"}
    return requests.post(cloud.registry_url, headers=headers, timeout=5)


def jwe_header(token: str) -> dict[str, Any]:
    first = token.split(".", maxsplit=1)[0]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(first + "=" * (-len(first) % 4)))
    return decoded


def test_registry_exchange_answers_only_a_jwe_shaped_token(cloud: MendaCloudEmulator) -> None:
    access = client_credentials(cloud, "ci", "s3cret").json()["access_token"]
    response = exchange(cloud, access)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token"}
    token = body["token"]
    assert len(token.split(".")) == 5
    header = jwe_header(token)
    assert header["exp"] - header["isu"] == 43200
    assert abs(header["isu"] - datetime.now(timezone.utc).timestamp()) < 5
    assert cloud.validate_registry_token(token, **WHERE)
    minted = cloud.minted_registry_tokens
    assert [m.token for m in minted] == [token]
    assert minted[0].identity == "ci"
    assert (minted[0].domain, minted[0].domain_owner, minted[0].region) == (DOMAIN, OWNER, REGION)
    assert minted[0].expires_at.timestamp() == header["exp"]
    assert token not in repr(minted[0])
    log = cloud.requests[-1]
    assert (log.token_header, log.token_scheme, log.has_body) == (
        "authorizationToken",
        "Bearer",
        False,
    )


def test_registry_tokens_are_unique_and_their_lifetime_is_a_setting(
    cloud: MendaCloudEmulator,
) -> None:
    cloud.registry_token_lifetime = 900
    token, _ = cloud.issue_access_token("ci")
    minted = {exchange(cloud, token).json()["token"] for _ in range(5)}
    assert len(minted) == 5
    assert {jwe_header(t)["exp"] - jwe_header(t)["isu"] for t in minted} == {900}


def test_the_domain_comes_from_the_tenant_or_the_identity() -> None:
    with MendaCloudEmulator(registry=("acme", "111122223333", "us-east-1")) as cloud:
        cloud.add_m2m_client("ci", "pw")
        cloud.add_m2m_client("eu", "pw", registry=("acme-eu", "444455556666", "eu-west-1"))
        for client, where in [
            ("ci", ("acme", "111122223333", "us-east-1")),
            ("eu", ("acme-eu", "444455556666", "eu-west-1")),
        ]:
            token = exchange(cloud, cloud.issue_access_token(client)[0]).json()["token"]
            assert cloud.validate_registry_token(
                token, domain=where[0], owner=where[1], region=where[2]
            )
            assert cloud.registry_of(client) == where


def test_registry_token_validates_only_for_its_registry_and_until_expiry(
    cloud: MendaCloudEmulator,
) -> None:
    token, _ = cloud.issue_access_token("ci")
    minted = exchange(cloud, token).json()["token"]
    assert cloud.validate_registry_token(minted, **WHERE)
    assert not cloud.validate_registry_token(minted, **{**WHERE, "domain": "other"})
    assert not cloud.validate_registry_token(minted, **{**WHERE, "owner": "111111111111"})
    assert not cloud.validate_registry_token(minted, **{**WHERE, "region": "us-east-1"})
    assert not cloud.validate_registry_token(minted[:-2] + "xx", **WHERE)
    later = datetime.now(timezone.utc) + timedelta(hours=12, seconds=1)
    cloud.clock = lambda: later
    assert not cloud.validate_registry_token(minted, **WHERE)
    cloud.clock = None
    cloud.revoke_registry_token(minted)
    assert not cloud.validate_registry_token(minted, **WHERE)


def test_the_old_registry_shape_is_refused_with_a_detail(cloud: MendaCloudEmulator) -> None:
    token, _ = cloud.issue_access_token("ci")
    body = {"registry_type": "codeartifact", "domain": DOMAIN, "domain_owner": OWNER}
    response = requests.post(
        cloud.registry_url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=5
    )
    assert response.status_code == 401
    assert "authorizationToken" in response.json()["detail"]
    assert cloud.minted_registry_tokens == []


def test_a_missing_authorization_token_is_api_gateways_unauthorized(
    cloud: MendaCloudEmulator,
) -> None:
    for headers in ({}, {"authorizationToken": ""}):
        response = requests.post(cloud.registry_url, headers=headers, timeout=5)
        assert response.status_code == 401
        assert response.json() == {"message": "Unauthorized"}


@pytest.mark.parametrize("value", ["mat_unknown", "Bearer", "Bearer mat_unknown", "Basic abc"])
def test_registry_without_a_known_bearer_token_is_401(
    cloud: MendaCloudEmulator, value: str
) -> None:
    response = requests.post(cloud.registry_url, headers={"authorizationToken": value}, timeout=5)
    assert response.status_code == 401
    assert response.json()["detail"]


def test_registry_with_a_body_is_400(cloud: MendaCloudEmulator) -> None:
    token, _ = cloud.issue_access_token("ci")
    response = requests.post(
        cloud.registry_url,
        json={"domain": DOMAIN},
        headers={"authorizationToken": f"Bearer {token}"},
        timeout=5,
    )
    assert response.status_code == 400
    assert "body" in response.json()["detail"]


def test_revoked_or_expired_access_tokens_are_401(cloud: MendaCloudEmulator) -> None:
    token, _ = cloud.issue_access_token("ci")
    cloud.revoke_access_token(token)
    assert "revoked" in exchange(cloud, token).json()["detail"]
    token, expires_at = cloud.issue_access_token("ci", lifetime=60)
    cloud.clock = lambda: expires_at
    response = exchange(cloud, token)
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]
    cloud.clock = lambda: expires_at - timedelta(seconds=1)
    assert exchange(cloud, token).status_code == 200


def test_identity_not_allowed_the_domain_is_403(cloud: MendaCloudEmulator) -> None:
    cloud.add_m2m_client("narrow", "pw", domains=["other-domain"])
    token, _ = cloud.issue_access_token("narrow")
    response = exchange(cloud, token)
    assert response.status_code == 403
    assert "menda-private" in response.json()["detail"]
    cloud.allow("narrow", "menda-private")
    assert exchange(cloud, token).status_code == 200
    cloud.deny("narrow", "menda-private")
    assert exchange(cloud, token).status_code == 403


def test_an_undeclared_registry_is_404_once_registries_are_declared(
    cloud: MendaCloudEmulator,
) -> None:
    token, _ = cloud.issue_access_token("ci")
    cloud.add_registry("elsewhere", OWNER, REGION)
    response = exchange(cloud, token)
    assert response.status_code == 404
    assert "menda-private" in response.json()["detail"]
    cloud.add_registry(DOMAIN, OWNER, REGION)
    assert exchange(cloud, token).status_code == 200
