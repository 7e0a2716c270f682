"""The menda cloud emulator's API endpoints, over real sockets with a plain client."""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote_plus

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from menda.testing import MendaCloudEmulator, RecordedRequest, UserLogin

REGISTRY = {
    "registry_type": "codeartifact",
    "domain": "menda-private",
    "domain_owner": "058264169513",
    "region": "eu-west-1",
    "repository": "menda-plugins",
    "format": "pypi",
}
RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def basic(client_id: str, secret: str) -> str:
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def client_credentials(cloud: MendaCloudEmulator, client_id: str, secret: str) -> requests.Response:
    return requests.post(
        cloud.token_url,
        data={"grant_type": "client_credentials"},
        headers={"Authorization": basic(client_id, secret)},
        timeout=5,
    )


def refresh(cloud: MendaCloudEmulator, refresh_token: str, client_id: str) -> requests.Response:
    return requests.post(
        cloud.token_url,
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": client_id,
        },
        timeout=5,
    )


def exchange(cloud: MendaCloudEmulator, token: str, body: Any = None) -> requests.Response:
    return requests.post(
        cloud.registry_url,
        json=REGISTRY if body is None else body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )


@pytest.fixture
def cloud() -> Iterator[MendaCloudEmulator]:
    with MendaCloudEmulator() as emulator:
        emulator.add_m2m_client("ci", "s3cret")
        yield emulator


def test_serves_on_an_ephemeral_loopback_port_and_stops() -> None:
    with MendaCloudEmulator() as cloud:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", cloud.url)
        assert cloud.port != 0
        assert requests.get(cloud.url + "/", timeout=5).status_code == 404
        url = cloud.url
    assert not cloud.running
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/", timeout=2)


def test_start_and_stop_work_without_a_with_block() -> None:
    cloud = MendaCloudEmulator().start()
    try:
        assert requests.get(cloud.url + "/x", timeout=5).status_code == 404
    finally:
        cloud.stop()
    cloud.stop()  # idempotent


def test_url_before_start_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="not running"):
        _ = MendaCloudEmulator().url


def test_client_credentials_issue_a_bearer_token(cloud: MendaCloudEmulator) -> None:
    response = client_credentials(cloud, "ci", "s3cret")
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["access_token"].startswith("mat_")
    assert "refresh_token" not in body
    assert response.headers["X-Request-Id"]
    assert response.headers["Cache-Control"] == "no-store"


def test_access_token_lifetime_is_settable_at_any_time(cloud: MendaCloudEmulator) -> None:
    cloud.access_token_lifetime = 42
    assert client_credentials(cloud, "ci", "s3cret").json()["expires_in"] == 42


@pytest.mark.parametrize(
    "secret", ["a:b", "p%25q", "sp ace+plus", "#;=&/?", "ünïcødé", "mcs_x+/:%#;"]
)
def test_basic_auth_parts_are_form_urldecoded(secret: str) -> None:
    with MendaCloudEmulator() as cloud:
        cloud.add_m2m_client("id:with spaces&+", secret)
        assert client_credentials(cloud, "id:with spaces&+", secret).status_code == 200
        assert cloud.requests[-1].client_id == "id:with spaces&+"


@settings(max_examples=25, deadline=None)
@given(client_id=st.text(min_size=1, max_size=20), secret=st.text(min_size=1, max_size=30))
def test_any_client_id_and_secret_round_trip_through_basic_auth(
    shared_cloud: MendaCloudEmulator, client_id: str, secret: str
) -> None:
    shared_cloud.add_m2m_client(client_id, secret)
    assert client_credentials(shared_cloud, client_id, secret).status_code == 200


@pytest.fixture(scope="module")
def shared_cloud() -> Iterator[MendaCloudEmulator]:
    with MendaCloudEmulator() as emulator:
        yield emulator


@pytest.mark.parametrize(
    ("client_id", "secret"), [("ci", "wrong"), ("nobody", "s3cret"), ("ci", "s3cret ")]
)
def test_wrong_or_unknown_client_is_401_invalid_client(
    cloud: MendaCloudEmulator, client_id: str, secret: str
) -> None:
    response = client_credentials(cloud, client_id, secret)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert response.headers["X-Request-Id"]


def test_unencoded_basic_auth_is_not_decoded_leniently(cloud: MendaCloudEmulator) -> None:
    cloud.add_m2m_client("ci2", "a+b")
    raw = base64.b64encode(b"ci2:a+b").decode()  # '+' means space once urldecoded
    response = requests.post(
        cloud.token_url,
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {raw}"},
        timeout=5,
    )
    assert response.status_code == 401


def test_client_credentials_without_basic_auth_is_401(cloud: MendaCloudEmulator) -> None:
    response = requests.post(
        cloud.token_url,
        data={"grant_type": "client_credentials", "client_id": "ci", "client_secret": "s3cret"},
        timeout=5,
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({}, "invalid_request"),
        ({"grant_type": "password"}, "unsupported_grant_type"),
        ({"grant_type": "refresh_token", "client_id": "menda-cli"}, "invalid_request"),
        ({"grant_type": "refresh_token", "refresh_token": "mrt_x"}, "invalid_request"),
        ({"grant_type": ["client_credentials", "refresh_token"]}, "invalid_request"),
    ],
)
def test_bad_token_requests_are_400_with_an_oauth_error(
    cloud: MendaCloudEmulator, data: dict[str, Any], error: str
) -> None:
    response = requests.post(
        cloud.token_url, data=data, headers={"Authorization": basic("ci", "s3cret")}, timeout=5
    )
    assert response.status_code == 400
    assert response.json()["error"] == error
    assert response.json()["error_description"]


def test_token_endpoint_wants_a_form_body(cloud: MendaCloudEmulator) -> None:
    response = requests.post(
        cloud.token_url,
        json={"grant_type": "client_credentials"},
        headers={"Authorization": basic("ci", "s3cret")},
        timeout=5,
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_get_on_an_endpoint_is_405(cloud: MendaCloudEmulator) -> None:
    response = requests.get(cloud.token_url, timeout=5)
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"


def test_add_user_returns_a_fresh_login_with_masked_repr(cloud: MendaCloudEmulator) -> None:
    login = cloud.add_user("alice", domains=["menda-private"])
    assert isinstance(login, UserLogin)
    assert login.client_id == "menda-cli"
    assert login.access_token.startswith("mat_")
    assert login.refresh_token.startswith("mrt_")
    assert login.expires_at > datetime.now(timezone.utc) + timedelta(minutes=59)
    assert login.access_token not in repr(login)
    assert login.refresh_token not in repr(login)
    assert exchange(cloud, login.access_token).status_code == 200


def test_refresh_rotates_the_refresh_token_by_default(cloud: MendaCloudEmulator) -> None:
    login = cloud.add_user()
    response = refresh(cloud, login.refresh_token, "menda-cli")
    assert response.status_code == 200
    body = response.json()
    assert body["access_token"].startswith("mat_")
    assert body["access_token"] != login.access_token
    assert body["refresh_token"].startswith("mrt_")
    assert body["refresh_token"] != login.refresh_token
    assert refresh(cloud, login.refresh_token, "menda-cli").json()["error"] == "invalid_grant"
    assert refresh(cloud, body["refresh_token"], "menda-cli").status_code == 200
    assert cloud.count("token", grant_type="refresh_token", identity="alice") == 2


def test_refresh_without_rotation_keeps_the_old_token(cloud: MendaCloudEmulator) -> None:
    cloud.rotate_refresh_tokens = False
    login = cloud.add_user()
    first = refresh(cloud, login.refresh_token, "menda-cli")
    assert first.status_code == 200
    assert "refresh_token" not in first.json()
    assert refresh(cloud, login.refresh_token, "menda-cli").status_code == 200


def test_revoked_refresh_token_is_invalid_grant(cloud: MendaCloudEmulator) -> None:
    login = cloud.add_user()
    cloud.revoke_refresh_token(login.refresh_token)
    response = refresh(cloud, login.refresh_token, "menda-cli")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_refresh_with_another_public_client_id_is_refused(cloud: MendaCloudEmulator) -> None:
    login = cloud.add_user("alice")
    cloud.add_user("bob", client_id="other-cli")
    assert refresh(cloud, login.refresh_token, "other-cli").json()["error"] == "invalid_grant"
    unknown = refresh(cloud, login.refresh_token, "nobody-cli")
    assert unknown.status_code == 401
    assert unknown.json()["error"] == "invalid_client"


def test_registry_exchange_returns_a_token_and_rfc3339_expiry(cloud: MendaCloudEmulator) -> None:
    access = client_credentials(cloud, "ci", "s3cret").json()["access_token"]
    response = exchange(cloud, access)
    assert response.status_code == 200
    body = response.json()
    assert body["token"].startswith("caat_")
    assert RFC3339_Z.match(body["expires_at"])
    expires = datetime.strptime(body["expires_at"], "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=timezone.utc
    )
    assert (
        timedelta(hours=11, minutes=59)
        < expires - datetime.now(timezone.utc)
        <= timedelta(hours=12)
    )
    assert cloud.validate_registry_token(
        body["token"], domain="menda-private", owner="058264169513", region="eu-west-1"
    )
    minted = cloud.minted_registry_tokens
    assert [m.token for m in minted] == [body["token"]]
    assert minted[0].repository == "menda-plugins"
    assert minted[0].format == "pypi"
    assert minted[0].identity == "ci"
    assert body["token"] not in repr(minted[0])


def test_registry_exchange_accepts_null_repository_and_format(cloud: MendaCloudEmulator) -> None:
    token, _ = cloud.issue_access_token("ci")
    response = exchange(cloud, token, {**REGISTRY, "repository": None, "format": None})
    assert response.status_code == 200
    assert cloud.minted_registry_tokens[0].repository is None


def test_registry_token_validates_only_for_its_registry_and_until_expiry(
    cloud: MendaCloudEmulator,
) -> None:
    token, _ = cloud.issue_access_token("ci")
    minted = exchange(cloud, token).json()["token"]
    where = {"domain": "menda-private", "owner": "058264169513", "region": "eu-west-1"}
    assert cloud.validate_registry_token(minted, **where)
    assert not cloud.validate_registry_token(minted, **{**where, "domain": "other"})
    assert not cloud.validate_registry_token(minted, **{**where, "owner": "111111111111"})
    assert not cloud.validate_registry_token(minted, **{**where, "region": "us-east-1"})
    assert not cloud.validate_registry_token("caat_forged", **where)
    later = datetime.now(timezone.utc) + timedelta(hours=12, seconds=1)
    cloud.clock = lambda: later
    assert not cloud.validate_registry_token(minted, **where)
    cloud.clock = None
    cloud.revoke_registry_token(minted)
    assert not cloud.validate_registry_token(minted, **where)


@pytest.mark.parametrize("header", ["", "Bearer ", "Bearer mat_unknown", "Basic abc"])
def test_registry_without_a_known_bearer_token_is_401(
    cloud: MendaCloudEmulator, header: str
) -> None:
    response = requests.post(
        cloud.registry_url, json=REGISTRY, headers={"Authorization": header}, timeout=5
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


def test_revoked_access_token_is_401_invalid_token(cloud: MendaCloudEmulator) -> None:
    token, _ = cloud.issue_access_token("ci")
    cloud.revoke_access_token(token)
    response = exchange(cloud, token)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


def test_expired_access_token_is_401_invalid_token(cloud: MendaCloudEmulator) -> None:
    token, expires_at = cloud.issue_access_token("ci", lifetime=60)
    cloud.clock = lambda: expires_at
    assert exchange(cloud, token).json()["error"] == "invalid_token"
    cloud.clock = lambda: expires_at - timedelta(seconds=1)
    assert exchange(cloud, token).status_code == 200


def test_identity_not_allowed_the_domain_is_403(cloud: MendaCloudEmulator) -> None:
    cloud.add_m2m_client("narrow", "pw", domains=["other-domain"])
    token, _ = cloud.issue_access_token("narrow")
    response = exchange(cloud, token)
    assert response.status_code == 403
    assert response.json()["error"] == "access_denied"
    assert "menda-private" in response.json()["error_description"]
    cloud.allow("narrow", "menda-private")
    assert exchange(cloud, token).status_code == 200
    cloud.deny("narrow", "menda-private")
    assert exchange(cloud, token).status_code == 403


def test_unknown_registry_is_404_once_registries_are_declared(cloud: MendaCloudEmulator) -> None:
    token, _ = cloud.issue_access_token("ci")
    cloud.add_registry("menda-private", "058264169513", "eu-west-1")
    assert exchange(cloud, token).status_code == 200
    response = exchange(cloud, token, {**REGISTRY, "region": "us-east-1"})
    assert response.status_code == 404
    assert response.json()["error"] == "registry_not_found"


@pytest.mark.parametrize(
    "body",
    [
        {**REGISTRY, "registry_type": "npm"},
        {k: v for k, v in REGISTRY.items() if k != "domain"},
        {k: v for k, v in REGISTRY.items() if k != "format"},
        {**REGISTRY, "domain_owner": 58264169513},
        {**REGISTRY, "region": ""},
        {**REGISTRY, "repository": 3},
        ["not", "an", "object"],
    ],
)
def test_bad_registry_bodies_are_400_invalid_request(cloud: MendaCloudEmulator, body: Any) -> None:
    token, _ = cloud.issue_access_token("ci")
    response = exchange(cloud, token, body)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_registry_body_that_is_not_json_is_400(cloud: MendaCloudEmulator) -> None:
    token, _ = cloud.issue_access_token("ci")
    response = requests.post(
        cloud.registry_url,
        data=b"{not json",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        timeout=5,
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_every_response_carries_a_request_id(cloud: MendaCloudEmulator) -> None:
    token, _ = cloud.issue_access_token("ci")
    responses = [
        client_credentials(cloud, "ci", "s3cret"),
        client_credentials(cloud, "ci", "bad"),
        exchange(cloud, token),
        exchange(cloud, "nope"),
        requests.get(cloud.url + "/elsewhere", timeout=5),
        requests.get(cloud.url + "/_emulator/requests", timeout=5),
    ]
    ids = [r.headers["X-Request-Id"] for r in responses]
    assert len(set(ids)) == len(ids)
    assert [r.request_id for r in cloud.requests] == ids[:5]


def test_path_prefix_mounts_the_api_under_it() -> None:
    with MendaCloudEmulator(path_prefix="/menda/") as cloud:
        cloud.add_m2m_client("ci", "s3cret")
        assert cloud.url.endswith("/menda")
        assert cloud.token_url == cloud.url + "/api/v1/auth/oauth2/token"
        token = client_credentials(cloud, "ci", "s3cret").json()["access_token"]
        assert exchange(cloud, token).status_code == 200
        bare = requests.post(
            cloud.origin + "/api/v1/auth/oauth2/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": basic("ci", "s3cret")},
            timeout=5,
        )
        assert bare.status_code == 404
        assert [r.endpoint for r in cloud.requests] == ["token", "registry", "other"]


def test_log_records_requests_without_secrets(cloud: MendaCloudEmulator) -> None:
    login = cloud.add_user()
    access = client_credentials(cloud, "ci", "s3cret").json()["access_token"]
    rotated = refresh(cloud, login.refresh_token, "menda-cli").json()
    registry = exchange(cloud, access).json()["token"]
    log = cloud.requests
    assert all(isinstance(r, RecordedRequest) for r in log)
    assert [(r.endpoint, r.status, r.grant_type, r.identity) for r in log] == [
        ("token", 200, "client_credentials", "ci"),
        ("token", 200, "refresh_token", "alice"),
        ("registry", 200, None, "ci"),
    ]
    assert log[1].client_id == "menda-cli"
    assert log[2].body == REGISTRY
    assert log[0].user_agent is not None
    assert log[0].method == "POST"
    assert log[0].path == "/api/v1/auth/oauth2/token"
    dumped = repr(log) + json.dumps([r.to_json() for r in log])
    for secret in ("s3cret", login.refresh_token, rotated["refresh_token"], access, registry):
        assert secret not in dumped


def test_count_filters_and_clear_log(cloud: MendaCloudEmulator) -> None:
    client_credentials(cloud, "ci", "s3cret")
    client_credentials(cloud, "ci", "wrong")
    requests.get(cloud.url + "/nowhere", timeout=5)
    assert cloud.count() == 3
    assert cloud.count("token") == 2
    assert cloud.count("token", status=401) == 1
    assert cloud.count("other") == 1
    assert cloud.count("registry") == 0
    with pytest.raises(TypeError, match="no field"):
        cloud.count(colour="red")
    cloud.clear_log()
    assert cloud.requests == []


def test_concurrent_requests_are_all_served_and_logged(cloud: MendaCloudEmulator) -> None:
    statuses: list[int] = []

    def worker() -> None:
        for _ in range(5):
            statuses.append(client_credentials(cloud, "ci", "s3cret").status_code)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 40
    assert cloud.count("token", status=200) == 40


def test_keep_alive_connection_serves_several_requests(cloud: MendaCloudEmulator) -> None:
    with requests.Session() as session:
        for _ in range(3):
            response = session.post(
                cloud.token_url,
                data={"grant_type": "client_credentials"},
                headers={"Authorization": basic("ci", "s3cret")},
                timeout=5,
            )
            assert response.status_code == 200
    assert cloud.count("token") == 3


def test_identity_helpers_reject_unknown_names(cloud: MendaCloudEmulator) -> None:
    with pytest.raises(ValueError, match="unknown identity"):
        cloud.issue_access_token("nobody")
    with pytest.raises(ValueError, match="unknown identity"):
        cloud.allow("nobody", "d")
    cloud.add_user("alice")
    with pytest.raises(ValueError, match="already exists"):
        cloud.add_user("alice")
    second = cloud.login("alice")
    assert refresh(cloud, second.refresh_token, "menda-cli").status_code == 200


def test_stop_hangs_up_on_open_keep_alive_connections() -> None:
    with requests.Session() as session:
        with MendaCloudEmulator() as cloud:
            assert session.get(cloud.url + "/a", timeout=5).status_code == 404
            url = cloud.url
        with pytest.raises(requests.ConnectionError):
            session.get(url + "/a", timeout=2)


def test_unsupported_methods_and_bad_requests_get_json_with_a_request_id(
    cloud: MendaCloudEmulator,
) -> None:
    response = requests.options(cloud.token_url, timeout=5)
    assert response.status_code == 501
    assert response.headers["X-Request-Id"]
    assert response.json()["error"] == "server_error"
    head = requests.head(cloud.token_url, timeout=5)
    assert head.status_code == 501
    assert head.content == b""


def test_oversized_bodies_are_refused(cloud: MendaCloudEmulator) -> None:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", cloud.port, timeout=5)
    conn.putrequest("POST", "/api/v1/auth/oauth2/token")
    conn.putheader("Content-Length", str(2 << 20))  # announced, never sent
    conn.endheaders()
    response = conn.getresponse()
    assert response.status == 413
    conn.close()


def test_chunked_request_bodies_are_read(cloud: MendaCloudEmulator) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"grant_type=client"
        yield b"_credentials"

    response = requests.post(
        cloud.token_url,
        data=chunks(),
        headers={
            "Authorization": basic("ci", "s3cret"),
            "Content-Type": "application/x-www-form-urlencoded",
        },
        timeout=5,
    )
    assert response.status_code == 200


def test_serves_on_ipv6_loopback_when_available() -> None:
    import socket

    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        cloud = MendaCloudEmulator(host="::1").start()
    except OSError:
        pytest.skip("no IPv6 loopback here")
    try:
        assert cloud.url.startswith("http://[::1]:")
        assert requests.get(cloud.url + "/x", timeout=5).status_code == 404
    finally:
        cloud.stop()


def test_every_public_name_resolves() -> None:
    import menda.testing

    for name in menda.testing.__all__:
        assert getattr(menda.testing, name) is not None


def test_no_secret_in_the_emulator_internals_repr(cloud: MendaCloudEmulator) -> None:
    login = cloud.add_user()
    text = repr(cloud) + repr(cloud._principals) + repr(login)
    assert "s3cret" not in text
    assert login.access_token not in text
