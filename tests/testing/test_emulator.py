"""The menda cloud emulator: serving, the token endpoint, logins, the log; over real sockets."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from menda.testing import MendaCloudEmulator, RecordedRequest, UserLogin

DOMAIN, OWNER, REGION = "menda-private", "058264169513", "eu-west-1"
WHERE = {"domain": DOMAIN, "owner": OWNER, "region": REGION}


def client_credentials(
    cloud: MendaCloudEmulator, client_id: str, secret: str, **extra: str
) -> requests.Response:
    """What menda-keyring 0.0.2 sends (menda-cli adds scope=api/all)."""
    params = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    return requests.post(cloud.token_url, params={**params, **extra}, timeout=5)


def refresh(cloud: MendaCloudEmulator, refresh_token: str, client_id: str) -> requests.Response:
    params = {"grant_type": "refresh_token", "client_id": client_id, "refresh_token": refresh_token}
    return requests.post(cloud.token_url, params=params, timeout=5)


def exchange(cloud: MendaCloudEmulator, token: str) -> requests.Response:
    """What menda-keyring 0.0.2 sends: the token behind authorizationToken, no body."""
    headers = {"authorizationToken": f"Bearer {token}", "Content-Type": "application/json"}
    return requests.post(cloud.registry_url, headers=headers, timeout=5)


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
        response = requests.get(cloud.url + "/x", timeout=5)
        assert response.status_code == 404
        assert response.json() == {"detail": "Not Found"}
    finally:
        cloud.stop()
    cloud.stop()  # idempotent


def test_url_before_start_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="not running"):
        _ = MendaCloudEmulator().url


def test_client_credentials_in_the_query_string_issue_a_bearer_token(
    cloud: MendaCloudEmulator,
) -> None:
    response = client_credentials(cloud, "ci", "s3cret")
    assert response.status_code == 200
    # Exactly the CLI's model (it forbids extra keys): nothing more.
    body = response.json()
    assert set(body) == {"access_token", "expires_in", "token_type"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["access_token"].startswith("mat_")
    assert response.headers["X-Request-Id"]
    assert response.headers["Cache-Control"] == "no-store"


def test_the_clis_scope_is_accepted_and_others_refused(cloud: MendaCloudEmulator) -> None:
    assert client_credentials(cloud, "ci", "s3cret", scope="api/all").status_code == 200
    refused = client_credentials(cloud, "ci", "s3cret", scope="admin")
    assert refused.status_code == 400
    assert "scope" in refused.json()["detail"]


def test_access_token_lifetime_is_settable_at_any_time(cloud: MendaCloudEmulator) -> None:
    cloud.access_token_lifetime = 42
    assert client_credentials(cloud, "ci", "s3cret").json()["expires_in"] == 42


@pytest.mark.parametrize(
    "secret", ["a:b", "p%25q", "sp ace+plus", "#;=&/?", "ünïcødé", "mcs_x+/:%#;"]
)
def test_query_parameters_are_url_decoded(secret: str) -> None:
    with MendaCloudEmulator() as cloud:
        cloud.add_m2m_client("id:with spaces&+", secret)
        assert client_credentials(cloud, "id:with spaces&+", secret).status_code == 200
        assert cloud.requests[-1].client_id == "id:with spaces&+"


@pytest.fixture(scope="module")
def shared_cloud() -> Iterator[MendaCloudEmulator]:
    with MendaCloudEmulator() as emulator:
        yield emulator


@settings(max_examples=25, deadline=None)
@given(client_id=st.text(min_size=1, max_size=20), secret=st.text(min_size=1, max_size=30))
def test_any_client_id_and_secret_round_trip_through_the_query_string(
    shared_cloud: MendaCloudEmulator, client_id: str, secret: str
) -> None:
    shared_cloud.add_m2m_client(client_id, secret)
    assert client_credentials(shared_cloud, client_id, secret).status_code == 200


@pytest.mark.parametrize(
    ("client_id", "secret"), [("ci", "wrong"), ("nobody", "s3cret"), ("ci", "s3cret ")]
)
def test_wrong_or_unknown_client_is_401_with_a_detail(
    cloud: MendaCloudEmulator, client_id: str, secret: str
) -> None:
    response = client_credentials(cloud, client_id, secret)
    assert response.status_code == 401
    assert set(response.json()) == {"detail"}
    assert response.headers["X-Request-Id"]


def test_the_old_shape_basic_auth_and_form_body_is_refused(cloud: MendaCloudEmulator) -> None:
    response = requests.post(
        cloud.token_url,
        data={"grant_type": "client_credentials"},
        auth=("ci", "s3cret"),
        timeout=5,
    )
    assert response.status_code == 400
    assert "query string" in response.json()["detail"]
    assert cloud.requests[-1].token_header == "Authorization"
    assert cloud.requests[-1].token_scheme == "Basic"
    assert cloud.requests[-1].client_id == "ci"


@pytest.mark.parametrize(
    "send",
    [
        {"data": {"grant_type": "client_credentials", "client_id": "ci", "client_secret": "x"}},
        {"json": {"grant_type": "client_credentials", "client_id": "ci", "client_secret": "x"}},
    ],
    ids=["form", "json"],
)
def test_credentials_in_a_body_are_refused(cloud: MendaCloudEmulator, send: Any) -> None:
    response = requests.post(cloud.token_url, timeout=5, **send)
    assert response.status_code == 400
    assert "query string" in response.json()["detail"]
    assert cloud.requests[-1].has_body


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("", "grant_type"),
        ("grant_type=password&client_id=ci&client_secret=s3cret", "unsupported"),
        ("grant_type=client_credentials&client_id=ci", "client_secret"),
        ("grant_type=client_credentials&grant_type=refresh_token", "repeated"),
        ("grant_type=client_credentials&client_id=ci&client_secret=s3cret&x=1", "unexpected"),
        ("grant_type=refresh_token&client_id=menda-cli", "refresh_token"),
        ("grant_type=client_credentials&client_id=%FF&client_secret=s", "UTF-8"),
    ],
)
def test_bad_token_requests_are_400_with_a_detail(
    cloud: MendaCloudEmulator, query: str, words: str
) -> None:
    response = requests.post(f"{cloud.token_url}?{query}", timeout=5)
    assert response.status_code == 400
    assert words in response.json()["detail"]


def test_wrong_methods_are_405(cloud: MendaCloudEmulator) -> None:
    response = requests.get(cloud.token_url, timeout=5)
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert response.json() == {"detail": "Method Not Allowed"}
    assert requests.post(cloud.endpoint_url("whoami"), timeout=5).headers["Allow"] == "GET"


def test_add_user_returns_a_fresh_login_with_masked_repr(cloud: MendaCloudEmulator) -> None:
    login = cloud.add_user("alice", domains=["menda-private"])
    assert isinstance(login, UserLogin)
    assert login.client_id == "menda-cli"
    assert login.id_token.startswith("mit_")
    assert login.access_token.startswith("mat_")
    assert login.refresh_token.startswith("mrt_")
    assert login.expires_in == 3600
    assert login.expires_at > datetime.now(timezone.utc) + timedelta(minutes=59)
    for secret in (login.id_token, login.access_token, login.refresh_token):
        assert secret not in repr(login)
    assert exchange(cloud, login.id_token).status_code == 200
    assert exchange(cloud, login.access_token).status_code == 200
    assert [r.token_kind for r in cloud.requests] == ["id_token", "access_token"]


def test_cache_fields_of_a_login_expire_with_it(cloud: MendaCloudEmulator) -> None:
    login = cloud.add_user()
    fields = login.cache_fields()
    assert fields["cached_at"] == login.issued_at.timestamp()
    assert fields["expires_in"] == 3600
    later = login.cache_fields(login.issued_at + timedelta(seconds=600))
    assert later["expires_in"] == 3000
    assert later["cached_at"] + later["expires_in"] == login.expires_at.timestamp()


def test_refresh_rotates_the_refresh_token_by_default(cloud: MendaCloudEmulator) -> None:
    login = cloud.add_user()
    response = refresh(cloud, login.refresh_token, "menda-cli")
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["id_token", "access_token", "refresh_token", "expires_in", "token_type"]
    assert body["id_token"].startswith("mit_")
    assert body["access_token"] != login.access_token
    assert body["refresh_token"].startswith("mrt_")
    assert body["refresh_token"] != login.refresh_token
    assert refresh(cloud, login.refresh_token, "menda-cli").status_code == 401
    assert refresh(cloud, body["refresh_token"], "menda-cli").status_code == 200
    assert cloud.count("token", grant_type="refresh_token", identity="alice") == 2
    assert exchange(cloud, body["id_token"]).status_code == 200


def test_refresh_without_rotation_keeps_the_old_token(cloud: MendaCloudEmulator) -> None:
    cloud.rotate_refresh_tokens = False
    login = cloud.add_user()
    first = refresh(cloud, login.refresh_token, "menda-cli")
    assert first.status_code == 200
    assert "refresh_token" not in first.json()
    assert refresh(cloud, login.refresh_token, "menda-cli").status_code == 200


def test_revoked_refresh_token_is_401(cloud: MendaCloudEmulator) -> None:
    login = cloud.add_user()
    cloud.revoke_refresh_token(login.refresh_token)
    response = refresh(cloud, login.refresh_token, "menda-cli")
    assert response.status_code == 401
    assert "refresh token" in response.json()["detail"]


def test_refresh_with_another_public_client_id_is_refused(cloud: MendaCloudEmulator) -> None:
    login = cloud.add_user("alice")
    cloud.add_user("bob", client_id="other-cli")
    assert refresh(cloud, login.refresh_token, "other-cli").status_code == 401
    unknown = refresh(cloud, login.refresh_token, "nobody-cli")
    assert unknown.status_code == 401
    assert "client_id" in unknown.json()["detail"]


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
            params={"grant_type": "client_credentials", "client_id": "ci"},
            timeout=5,
        )
        assert bare.status_code == 404
        assert [r.endpoint for r in cloud.requests] == ["token", "registry", "other"]


def test_log_records_requests_without_secrets(cloud: MendaCloudEmulator) -> None:
    login = cloud.add_user()
    access = client_credentials(cloud, "ci", "s3cret", scope="api/all").json()["access_token"]
    rotated = refresh(cloud, login.refresh_token, "menda-cli").json()
    registry = exchange(cloud, access).json()["token"]
    log = cloud.requests
    assert all(isinstance(r, RecordedRequest) for r in log)
    assert [(r.endpoint, r.status, r.grant_type, r.identity) for r in log] == [
        ("token", 200, "client_credentials", "ci"),
        ("token", 200, "refresh_token", "alice"),
        ("registry", 200, None, "ci"),
    ]
    assert log[0].params == {
        "grant_type": "client_credentials",
        "client_id": "ci",
        "scope": "api/all",
    }
    assert log[1].params == {"grant_type": "refresh_token", "client_id": "menda-cli"}
    assert log[1].client_id == "menda-cli"
    assert log[2].params is None
    assert log[2].body is None
    assert log[2].content_type == "application/json"
    assert log[0].user_agent is not None
    assert log[0].method == "POST"
    assert log[0].path == "/api/v1/auth/oauth2/token"
    dumped = repr(log) + json.dumps([r.to_json() for r in log])
    secrets = ["s3cret", login.refresh_token, *rotated.values(), access, registry]
    for secret in secrets:
        if isinstance(secret, str) and len(secret) > 8:
            assert secret not in dumped


def test_count_filters_and_clear_log(cloud: MendaCloudEmulator) -> None:
    client_credentials(cloud, "ci", "s3cret")
    client_credentials(cloud, "ci", "wrong")
    requests.get(cloud.url + "/nowhere", timeout=5)
    assert cloud.count() == 3
    assert cloud.count("token") == 2
    assert cloud.count("token", status=401) == 1
    assert cloud.count("token", has_body=False, token_header=None) == 2
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
    params = {"grant_type": "client_credentials", "client_id": "ci", "client_secret": "s3cret"}
    with requests.Session() as session:
        for _ in range(3):
            assert session.post(cloud.token_url, params=params, timeout=5).status_code == 200
    assert cloud.count("token") == 3


def test_identity_helpers_reject_unknown_names(cloud: MendaCloudEmulator) -> None:
    with pytest.raises(ValueError, match="unknown identity"):
        cloud.issue_access_token("nobody")
    with pytest.raises(ValueError, match="unknown identity"):
        cloud.allow("nobody", "d")
    with pytest.raises(TypeError):
        cloud.add_m2m_client("x", "y", registry="menda-private")
    with pytest.raises(ValueError, match="registry"):
        cloud.add_m2m_client("x", "y", registry=("only", "two"))
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


def test_unsupported_methods_get_json_with_a_request_id(cloud: MendaCloudEmulator) -> None:
    response = requests.options(cloud.token_url, timeout=5)
    assert response.status_code == 501
    assert response.headers["X-Request-Id"]
    assert response.json()["detail"]
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
        yield b'{"grant_type": '
        yield b'"client_credentials"}'

    response = requests.post(
        cloud.token_url,
        data=chunks(),
        headers={"Content-Type": "application/json"},
        timeout=5,
    )
    assert response.status_code == 400
    assert cloud.requests[-1].body == {"grant_type": "client_credentials"}


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


def test_no_secret_in_the_emulator_internals_repr(cloud: MendaCloudEmulator) -> None:
    login = cloud.add_user()
    text = repr(cloud) + repr(cloud._principals) + repr(login)
    assert "s3cret" not in text
    assert login.access_token not in text
    assert login.id_token not in text
