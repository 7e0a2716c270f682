"""Errors, retries, timeouts, deadlines and secrets, against the emulator's fault injection."""

from __future__ import annotations

import json
import logging
import socket
import ssl
import threading
import time
import traceback
from collections.abc import Iterator
from datetime import timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
import trustme

from menda.cloud_client import MendaCloudClient, RegistryRequest
from menda.cloud_client._client import deadline_from_env
from menda.core_auth import CliTokenFile, Identity, utcnow
from menda.error import MendaCloudAPIError, NoCachedLoginError
from menda.testing import (
    Delay,
    Drop,
    Malformed,
    MendaCloudEmulator,
    MendaHome,
    NonJSON,
    Status,
    Truncate,
    UserLogin,
    unused_port,
)

REGISTRY = RegistryRequest("menda-private", "058264169513", "eu-west-1", "menda-plugins", "pypi")


def _client(identity: Identity, **kwargs: float | int | tuple[float, float]) -> MendaCloudClient:
    options: dict[str, object] = {"backoff": 0.01, "max_attempts": 3}
    options.update(kwargs)
    return MendaCloudClient(identity, **options)  # type: ignore[arg-type]


def _warm(client: MendaCloudClient, cloud: MendaCloudEmulator) -> None:
    """Cache an access token so that the test exercises the registry endpoint alone."""
    client.access_token()
    cloud.clear_log()


# -- error responses -------------------------------------------------------------------


def test_access_denied_carries_status_error_description_and_request_id(
    m2m: Identity, menda_cloud: MendaCloudEmulator, m2m_client: tuple[str, str]
) -> None:
    menda_cloud.deny(m2m_client[0], "menda-private")
    with _client(m2m) as client, pytest.raises(MendaCloudAPIError) as caught:
        client.registry_token(REGISTRY)

    error = caught.value
    [request] = [r for r in menda_cloud.requests if r.endpoint == "registry"]
    assert error.status_code == 403
    assert error.error is None  # the service answers {"detail": ...}, no OAuth error code
    assert error.request_id == request.request_id
    message = str(error)
    assert "/api/v1/auth/registry/token" in message
    assert menda_cloud.url in message
    assert "403" in message
    assert "may not use CodeArtifact domain 'menda-private'" in message
    assert "ask your Menda administrator for access" in message
    assert request.request_id is not None
    assert request.request_id in message


def test_a_tenant_without_its_registry_is_a_404_with_the_detail(
    m2m: Identity, menda_cloud: MendaCloudEmulator
) -> None:
    menda_cloud.add_registry("somewhere-else", "111122223333", "us-east-1")
    with _client(m2m) as client, pytest.raises(MendaCloudAPIError) as caught:
        client.registry_token(REGISTRY)

    assert caught.value.status_code == 404
    assert "no CodeArtifact domain 'menda-private'" in str(caught.value)
    assert menda_cloud.count("registry") == 1


def test_bad_request_is_raised_without_retry(
    m2m: Identity, menda_cloud: MendaCloudEmulator, waits: list[float]
) -> None:
    menda_cloud.inject("registry", Status(400, error="invalid_request"), times=3)
    with _client(m2m) as client, pytest.raises(MendaCloudAPIError) as caught:
        client.registry_token(REGISTRY)

    assert caught.value.status_code == 400
    assert caught.value.error == "invalid_request"
    assert "injected fault: HTTP 400" in str(caught.value)
    assert menda_cloud.count("registry") == 1
    assert waits == []


def test_wrong_client_secret_is_invalid_client_and_not_retried(
    menda_cloud: MendaCloudEmulator, m2m_client: tuple[str, str], menda_home: object
) -> None:
    identity = Identity(
        host=menda_cloud.url,
        auth_type="m2m",
        cache_key=f"m2m-env:{m2m_client[0]}",
        source="env",
        client_id=m2m_client[0],
        client_secret="not-the-secret",
    )
    with _client(identity) as client, pytest.raises(MendaCloudAPIError) as caught:
        client.access_token()

    message = str(caught.value)
    assert caught.value.status_code == 401
    assert "/api/v1/auth/oauth2/token" in message
    assert "HTTP 401: invalid client credentials" in message
    assert "Check the client id and secret (MENDA_CLIENT_ID / MENDA_CLIENT_SECRET" in message
    assert "not-the-secret" not in message
    assert menda_cloud.count("token") == 1


# -- retries ---------------------------------------------------------------------------


def test_429_with_retry_after_seconds_waits_that_long_then_succeeds(
    m2m: Identity, menda_cloud: MendaCloudEmulator, waits: list[float]
) -> None:
    menda_cloud.inject("registry", Status(429, retry_after=2))
    with _client(m2m) as client:
        _warm(client, menda_cloud)
        credential = client.registry_token(REGISTRY)

    assert credential.from_cache is False
    assert waits == [2.0]
    assert [r.status for r in menda_cloud.requests] == [429, 200]


def test_429_with_retry_after_http_date_waits_until_then(
    m2m: Identity, menda_cloud: MendaCloudEmulator, waits: list[float]
) -> None:
    when = format_datetime(utcnow() + timedelta(seconds=6), usegmt=True)
    menda_cloud.inject("registry", Status(429, retry_after=when))
    with _client(m2m) as client:
        _warm(client, menda_cloud)
        client.registry_token(REGISTRY)

    [wait] = waits
    assert 3.0 < wait <= 6.0
    assert menda_cloud.count("registry") == 2


def test_retry_after_is_capped_at_30_seconds(
    m2m: Identity, menda_cloud: MendaCloudEmulator, waits: list[float]
) -> None:
    menda_cloud.inject("token", Status(503, retry_after=3600))
    with _client(m2m, deadline=120.0) as client:
        client.access_token()

    assert waits == [30.0]


def test_retry_after_past_the_deadline_gives_up_instead_of_sleeping(
    m2m: Identity, menda_cloud: MendaCloudEmulator, waits: list[float]
) -> None:
    menda_cloud.inject("token", Status(503, retry_after=20))
    with _client(m2m, deadline=5.0) as client, pytest.raises(MendaCloudAPIError) as caught:
        client.access_token()

    assert caught.value.status_code == 503
    assert waits == []
    assert menda_cloud.count("token") == 1


def test_server_error_storm_gives_up_after_max_attempts_with_the_last_status(
    m2m: Identity, menda_cloud: MendaCloudEmulator, waits: list[float]
) -> None:
    for code in (500, 502, 504, 503):
        menda_cloud.inject("token", Status(code))
    with _client(m2m) as client, pytest.raises(MendaCloudAPIError) as caught:
        client.access_token()

    assert caught.value.status_code == 504
    assert "3 attempts" in str(caught.value)
    assert menda_cloud.count("token") == 3
    # Exponential back-off with jitter: at most backoff, then at most 2 * backoff.
    assert len(waits) == 2
    assert 0.005 <= waits[0] <= 0.01
    assert 0.01 <= waits[1] <= 0.02


def test_backoff_waits_are_capped_at_eight_seconds(
    m2m: Identity, menda_cloud: MendaCloudEmulator, waits: list[float]
) -> None:
    menda_cloud.inject("token", Status(500), times=4)
    with (
        _client(m2m, backoff=100.0, max_attempts=4, deadline=1000.0) as client,
        pytest.raises(MendaCloudAPIError),
    ):
        client.access_token()

    assert len(waits) == 3
    assert all(4.0 <= wait <= 8.0 for wait in waits)


def test_max_attempts_one_means_no_retry(
    m2m: Identity, menda_cloud: MendaCloudEmulator, waits: list[float]
) -> None:
    menda_cloud.inject("token", Status(503))
    with _client(m2m, max_attempts=1) as client, pytest.raises(MendaCloudAPIError) as caught:
        client.access_token()

    assert caught.value.status_code == 503
    assert waits == []


def test_a_transient_error_then_success_recovers(
    m2m: Identity, menda_cloud: MendaCloudEmulator, waits: list[float]
) -> None:
    menda_cloud.inject("token", Drop())
    menda_cloud.inject("token", Status(502))
    with _client(m2m) as client:
        assert client.access_token()

    assert [r.status for r in menda_cloud.requests] == [None, 502, 200]
    assert len(waits) == 2


def test_deadline_stops_retrying_and_raises_the_last_error(
    m2m: Identity, menda_cloud: MendaCloudEmulator
) -> None:
    # Really sleeping: the back-off (>= 0.1 s) fits in the deadline once, not twice.
    menda_cloud.inject("token", Status(503), times=10)
    with (
        _client(m2m, backoff=0.2, max_attempts=10, deadline=0.25) as client,
        pytest.raises(MendaCloudAPIError) as caught,
    ):
        client.access_token()

    assert caught.value.status_code == 503
    assert 1 <= menda_cloud.count("token") <= 2


@pytest.mark.parametrize("fault", [Drop(), Truncate()], ids=["drop", "truncate"])
def test_dropped_or_truncated_answers_are_retried_then_raised_without_status(
    m2m: Identity, menda_cloud: MendaCloudEmulator, fault: Drop | Truncate, waits: list[float]
) -> None:
    menda_cloud.inject("token", fault, times=3)
    with _client(m2m) as client, pytest.raises(MendaCloudAPIError) as caught:
        client.access_token()

    assert caught.value.status_code is None
    assert menda_cloud.url in str(caught.value)
    assert "MENDA_HOST" in str(caught.value)
    assert menda_cloud.count("token") == 3
    assert len(waits) == 2


def test_answer_slower_than_the_read_timeout_is_a_timeout_after_retries(
    m2m: Identity, menda_cloud: MendaCloudEmulator, waits: list[float]
) -> None:
    menda_cloud.inject("token", Delay(2.0), times=2)
    with (
        _client(m2m, timeout=(2.0, 0.2), max_attempts=2) as client,
        pytest.raises(MendaCloudAPIError) as caught,
    ):
        client.access_token()

    assert caught.value.status_code is None
    assert "read timeout" in str(caught.value)
    assert "2 attempts" in str(caught.value)
    # Both delayed requests were received (the emulator logs them only once they answer).
    assert menda_cloud.pending_faults("token") == []


def test_connection_refused_names_the_host_and_what_to_check(
    menda_home: object, waits: list[float]
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    identity = Identity(
        host=f"http://127.0.0.1:{port}",
        auth_type="m2m",
        cache_key="ci",
        source="env",
        client_id="ci",
        client_secret="secret-value",
    )
    with _client(identity, max_attempts=2) as client, pytest.raises(MendaCloudAPIError) as caught:
        client.access_token()

    message = str(caught.value)
    assert caught.value.status_code is None
    assert f"127.0.0.1:{port}" in message
    assert "MENDA_HOST" in message
    assert "proxy" in message.lower()
    assert "secret-value" not in message


# -- bodies that are not what they should be --------------------------------------------


def test_html_error_page_reports_the_status_and_a_hint(
    m2m: Identity, menda_cloud: MendaCloudEmulator, waits: list[float]
) -> None:
    menda_cloud.inject("token", NonJSON(502), times=3)
    with _client(m2m) as client, pytest.raises(MendaCloudAPIError) as caught:
        client.access_token()

    assert caught.value.status_code == 502
    assert caught.value.error is None
    assert "HTTP 502" in str(caught.value)
    assert "text/html, not JSON" in str(caught.value)
    assert "MENDA_HOST" in str(caught.value)


def test_html_answer_with_200_is_a_malformed_response(
    m2m: Identity, menda_cloud: MendaCloudEmulator
) -> None:
    menda_cloud.inject("token", NonJSON(200, body="<html>login portal</html>"))
    with _client(m2m) as client, pytest.raises(MendaCloudAPIError) as caught:
        client.access_token()

    assert "malformed response" in str(caught.value)
    assert "text/html" in str(caught.value)
    assert menda_cloud.count("token") == 1


def test_empty_error_body_still_reports_the_status(
    m2m: Identity, menda_cloud: MendaCloudEmulator
) -> None:
    menda_cloud.inject("token", Status(403, body="", content_type="text/plain"))
    with _client(m2m) as client, pytest.raises(MendaCloudAPIError) as caught:
        client.access_token()

    assert caught.value.status_code == 403
    assert "HTTP 403" in str(caught.value)
    assert "empty body" in str(caught.value)


def test_redirect_is_not_followed(m2m: Identity, menda_cloud: MendaCloudEmulator) -> None:
    menda_cloud.inject("token", Status(307, body="", content_type="text/plain"))
    with _client(m2m) as client, pytest.raises(MendaCloudAPIError) as caught:
        client.access_token()

    assert caught.value.status_code == 307
    assert "redirect" in str(caught.value)
    assert menda_cloud.count("token") == 1


@pytest.mark.parametrize(
    "body",
    [
        {"unexpected": "shape"},
        [],
        "a string",
        None,
        {"access_token": 42, "expires_in": 3600},
        {"access_token": "", "expires_in": 3600},
        {"access_token": "mat_x"},
        {"access_token": "mat_x", "expires_in": "3600"},
        {"access_token": "mat_x", "expires_in": True},
        {"access_token": "mat_x", "expires_in": -5},
        {"access_token": "mat_x", "expires_in": 1e300},
        {"access_token": "mat_x", "expires_in": 3600, "token_type": "MAC"},
        {"access_token": "mat x", "expires_in": 3600},
        {"access_token": "mat_x\n", "expires_in": 3600},
        {"access_token": "mat_x" + "y" * 20000, "expires_in": 3600},
    ],
)
def test_malformed_token_responses_raise_malformed_response(
    m2m: Identity, menda_cloud: MendaCloudEmulator, body: object
) -> None:
    menda_cloud.inject("token", Malformed(body))
    with _client(m2m) as client, pytest.raises(MendaCloudAPIError) as caught:
        client.access_token()

    assert "malformed response" in str(caught.value)
    assert "mat_x" not in str(caught.value)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"token": ""},
        {"token": "caat_x token"},
        {"token": "caat_x\r\n"},
        {"token": "caat_x", "expires_in": "soon"},
        {"token": "caat_x", "expires_in": -1},
        {"token": "caat_x", "expiration": "tomorrow"},
        {"token": "caat_x", "expires_at": 1767225600},
        {"token": "caat_x", "expires_at": "tomorrow"},
        {"token": "caat_x", "expires_at": "2026-13-40T25:61:00Z"},
        {"token": "caat_x", "expires_at": "2026-11-27T18:00:00"},
        {"token": None, "expires_at": "2026-11-27T18:00:00Z"},
        {"token": ["caat_x"], "expires_at": "2026-11-27T18:00:00Z"},
    ],
)
def test_malformed_registry_responses_raise_malformed_response(
    m2m: Identity, menda_cloud: MendaCloudEmulator, body: object
) -> None:
    menda_cloud.inject("registry", Malformed(body))
    with _client(m2m) as client, pytest.raises(MendaCloudAPIError) as caught:
        client.registry_token(REGISTRY)

    assert "malformed response" in str(caught.value)
    assert "caat_x" not in str(caught.value)


def test_registry_expiry_with_numeric_offset_is_converted_to_utc(
    m2m: Identity, menda_cloud: MendaCloudEmulator
) -> None:
    menda_cloud.inject(
        "registry", Malformed({"token": "caat_x", "expires_at": "2026-11-27T20:00:00.5+02:00"})
    )
    with _client(m2m) as client:
        credential = client.registry_token(REGISTRY)

    assert credential.expires_at.isoformat() == "2026-11-27T18:00:00.500000+00:00"


# -- secrets ---------------------------------------------------------------------------


def test_no_secret_in_messages_reprs_or_debug_logs(
    m2m: Identity,
    menda_cloud: MendaCloudEmulator,
    m2m_client: tuple[str, str],
    caplog: pytest.LogCaptureFixture,
    waits: list[float],
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = m2m_client[1]
    with _client(m2m) as client:
        access = client.access_token()
        menda_cloud.revoke_access_token(access)
        credential = client.registry_token(REGISTRY)
        menda_cloud.inject("registry", Status(503), times=3)
        other = RegistryRequest("other", "111122223333", "us-east-1")
        with pytest.raises(MendaCloudAPIError) as caught:
            client.registry_token(other)
        client_repr = repr(client)
    renewed = client.access_token()

    exposed = "\n".join(
        [str(caught.value), repr(caught.value), client_repr, repr(credential), caplog.text]
    )
    assert "POST" in caplog.text  # the debug lines are there...
    for value in (secret, access, renewed, credential.token):
        assert value not in exposed  # ...but no secret is


# -- TLS -------------------------------------------------------------------------------


class _TokenHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = b'{"access_token": "mat_tls", "token_type": "Bearer", "expires_in": 3600}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A TLS token endpoint whose certificate comes from a throw-away CA; yields URL, CA file."""
    ca = trustme.CA()
    server = HTTPServer(("127.0.0.1", 0), _TokenHandler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", ca_file
    finally:
        server.shutdown()
        server.server_close()


def _tls_identity(host: str) -> Identity:
    return Identity(
        host=host,
        auth_type="m2m",
        cache_key="tls",
        source="env",
        client_id="tls",
        client_secret="tls-secret",
    )


def test_tls_verification_failure_names_the_host_and_ca_variables(
    tls_server: tuple[str, Path], menda_home: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = tls_server
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)
    with _client(_tls_identity(url)) as client, pytest.raises(MendaCloudAPIError) as caught:
        client.access_token()

    message = str(caught.value)
    assert url in message
    assert "REQUESTS_CA_BUNDLE" in message
    assert "SSL_CERT_FILE" in message
    assert caught.value.status_code is None


def test_ssl_cert_file_is_honoured_when_requests_variables_are_unset(
    tls_server: tuple[str, Path], menda_home: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, ca_file = tls_server
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    with _client(_tls_identity(url)) as client:
        assert client.access_token() == "mat_tls"


def test_requests_ca_bundle_takes_precedence_over_ssl_cert_file(
    tls_server: tuple[str, Path], menda_home: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, ca_file = tls_server
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_file))
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    monkeypatch.setenv("SSL_CERT_FILE", "/nonexistent/ca.pem")
    with _client(_tls_identity(url)) as client:
        assert client.access_token() == "mat_tls"


def test_missing_ssl_cert_file_is_an_api_error_naming_the_variables(
    tls_server: tuple[str, Path], menda_home: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = tls_server
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    monkeypatch.setenv("SSL_CERT_FILE", "/nonexistent/ca.pem")
    with _client(_tls_identity(url)) as client, pytest.raises(MendaCloudAPIError) as caught:
        client.access_token()

    assert "SSL_CERT_FILE" in str(caught.value)
    assert caught.value.status_code is None


# -- what the message says -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "shown", "hidden", "error"),
    [
        (
            {"detail": "d-text", "message": "m-text", "error_description": "e-text"},
            "HTTP 400: d-text",
            ["m-text", "e-text"],
            None,
        ),
        ({"message": "Unauthorized"}, "HTTP 400: Unauthorized", [], None),
        (
            {"message": "m-text", "error_description": "e-text"},
            "HTTP 400: m-text",
            ["e-text"],
            None,
        ),
        ({"detail": "", "message": "m-text"}, "HTTP 400: m-text", [], None),
        (
            {"error": "invalid_grant", "error_description": "e-text"},
            "HTTP 400 invalid_grant: e-text",
            [],
            "invalid_grant",
        ),
        ({"error": "invalid_client"}, "HTTP 400 invalid_client.", [], "invalid_client"),
        (
            {"detail": "d-text", "error": "invalid_request"},
            "HTTP 400 invalid_request: d-text",
            [],
            "invalid_request",
        ),
        (
            {"detail": [{"loc": ["query", "client_id"], "msg": "field required", "type": "x"}]},
            "HTTP 400: field required",
            ["loc"],
            None,
        ),
        ({"unexpected": "shape"}, "HTTP 400 (the JSON body has no detail", [], None),
    ],
)
def test_error_text_is_detail_then_message_then_oauth_error(
    m2m: Identity,
    menda_cloud: MendaCloudEmulator,
    *,
    body: dict[str, object],
    shown: str,
    hidden: list[str],
    error: str | None,
) -> None:
    menda_cloud.inject("token", Status(400, body=json.dumps(body)))
    with _client(m2m) as client, pytest.raises(MendaCloudAPIError) as caught:
        client.access_token()

    message = str(caught.value)
    assert shown in message
    for text in hidden:
        assert text not in message
    assert caught.value.error == error
    assert caught.value.status_code == 400
    assert menda_cloud.count("token") == 1


def test_an_oauth_error_code_in_www_authenticate_is_reported(
    m2m: Identity, menda_cloud: MendaCloudEmulator
) -> None:
    menda_cloud.inject(
        "whoami",
        Status(
            403,
            body="",
            content_type="text/plain",
            headers={"WWW-Authenticate": 'Bearer error="insufficient_scope"'},
        ),
    )
    with _client(m2m) as client, pytest.raises(MendaCloudAPIError) as caught:
        client.whoami()

    assert caught.value.error == "insufficient_scope"
    assert "HTTP 403 insufficient_scope" in str(caught.value)


@pytest.mark.parametrize(
    ("endpoint", "status", "hint"),
    [
        ("token", 401, "Check the client id and secret (MENDA_CLIENT_ID / MENDA_CLIENT_SECRET"),
        ("token", 400, "Check the client id and secret (MENDA_CLIENT_ID / MENDA_CLIENT_SECRET"),
        ("registry", 403, "ask your Menda administrator for access"),
        ("registry", 404, "Check the host setting (MENDA_HOST or the profile's host)"),
        ("token", 404, "Check the host setting (MENDA_HOST or the profile's host)"),
        ("whoami", 404, "Check the host setting (MENDA_HOST or the profile's host)"),
        ("token", 503, "menda cloud is busy or unavailable: try again in a minute"),
        ("registry", 429, "menda cloud is busy or unavailable: try again in a minute"),
    ],
)
def test_each_status_gets_a_hint_saying_what_to_do(
    m2m: Identity,
    menda_cloud: MendaCloudEmulator,
    endpoint: str,
    status: int,
    hint: str,
) -> None:
    menda_cloud.inject(endpoint, Status(status))
    with _client(m2m, max_attempts=1) as client, pytest.raises(MendaCloudAPIError) as caught:
        if endpoint == "whoami":
            client.whoami()
        else:
            client.registry_token(REGISTRY)

    message = str(caught.value)
    assert caught.value.status_code == status
    assert f"HTTP {status}: injected fault: HTTP {status}. " in message
    assert hint in message


def test_x_request_id_is_in_the_message(m2m: Identity, menda_cloud: MendaCloudEmulator) -> None:
    menda_cloud.inject("token", Status(400, detail="nope"))
    with _client(m2m) as client, pytest.raises(MendaCloudAPIError) as caught:
        client.access_token()

    [request] = menda_cloud.requests
    assert request.request_id
    assert caught.value.request_id == request.request_id
    assert str(caught.value).endswith(f"(request id {request.request_id})")


class _Canned(BaseHTTPRequestHandler):
    """Answers every request with the server's ``reply``: (status, headers, body)."""

    server: _CannedServer

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.paths.append(self.path)
        status, headers, body = self.server.reply
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


class _CannedServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    reply: tuple[int, dict[str, str], bytes] = (500, {}, b"")
    paths: list[str]


@pytest.fixture
def canned() -> Iterator[_CannedServer]:
    """A bare HTTP server on loopback that answers whatever ``reply`` says (no X-Request-Id)."""
    server = _CannedServer(("127.0.0.1", 0), _Canned)
    server.paths = []
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _canned_identity(server: HTTPServer) -> Identity:
    return Identity(
        host=f"http://127.0.0.1:{server.server_address[1]}",
        auth_type="m2m",
        cache_key="m2m-env:canned",
        source="env",
        client_id="canned",
        client_secret="canned-secret",
    )


def test_x_amzn_request_id_is_in_the_message_when_there_is_no_x_request_id(
    canned: _CannedServer, menda_home: object
) -> None:
    canned.reply = (
        403,
        {"Content-Type": "application/json", "x-amzn-RequestId": "6f1c-amzn-42"},
        b'{"message": "Forbidden"}',
    )
    with _client(_canned_identity(canned)) as client, pytest.raises(MendaCloudAPIError) as caught:
        client.access_token()

    assert caught.value.request_id == "6f1c-amzn-42"
    assert "HTTP 403: Forbidden" in str(caught.value)
    assert str(caught.value).endswith("(request id 6f1c-amzn-42)")


def test_a_proxys_html_page_is_reported_with_its_status_and_request_id(
    canned: _CannedServer, menda_home: object, waits: list[float]
) -> None:
    canned.reply = (
        502,
        {"Content-Type": "text/html", "X-Request-Id": "gw-7", "Retry-After": "1"},
        b"<html><body>Bad Gateway</body></html>",
    )
    with _client(_canned_identity(canned)) as client, pytest.raises(MendaCloudAPIError) as caught:
        client.access_token()

    message = str(caught.value)
    assert caught.value.status_code == 502
    assert "HTTP 502 (the server answered text/html, not JSON" in message
    assert "Bad Gateway" not in message
    assert "(request id gw-7)" in message
    assert "gave up after 3 attempts" in message
    assert waits == [1.0, 1.0]


def test_a_4xx_with_retry_after_is_not_retried(
    m2m: Identity, menda_cloud: MendaCloudEmulator, waits: list[float]
) -> None:
    menda_cloud.inject("token", Status(409, retry_after=1), times=3)
    with _client(m2m) as client, pytest.raises(MendaCloudAPIError) as caught:
        client.access_token()

    assert caught.value.status_code == 409
    assert waits == []
    assert menda_cloud.count("token") == 1


def test_503_on_the_registry_endpoint_honours_retry_after(
    m2m: Identity, menda_cloud: MendaCloudEmulator, waits: list[float]
) -> None:
    menda_cloud.inject("registry", Status(503, retry_after=3), times=2)
    with _client(m2m) as client:
        _warm(client, menda_cloud)
        client.registry_token(REGISTRY)

    assert waits == [3.0, 3.0]
    assert [r.status for r in menda_cloud.requests] == [503, 503, 200]


def test_a_redirect_is_never_followed_to_another_host(
    m2m: Identity, menda_cloud: MendaCloudEmulator, m2m_client: tuple[str, str]
) -> None:
    with MendaCloudEmulator() as elsewhere:
        elsewhere.add_m2m_client(*m2m_client)
        elsewhere_url = elsewhere.token_url
        target = f"{elsewhere_url}?client_secret={quote_plus(m2m_client[1])}"
        menda_cloud.inject(
            "token", Status(302, body="", content_type="text/plain", headers={"Location": target})
        )
        with _client(m2m) as client, pytest.raises(MendaCloudAPIError) as caught:
            client.access_token()

        assert elsewhere.requests == []
    message = str(caught.value)
    assert caught.value.status_code == 302
    assert f"redirect to {elsewhere_url}." in message
    assert "does not follow redirects" in message
    assert "client_secret" not in message
    assert quote_plus(m2m_client[1]) not in message
    assert menda_cloud.count("token") == 1


# -- the client secret travels in the query string: it never shows -------------------------

SECRET = "zq9-SECRET-kiwi+/:%#;=&?-7x"
_LEAKS = (SECRET, quote(SECRET, safe=""), quote_plus(SECRET), "zq9-SECRET-kiwi", "client_secret=")


@pytest.mark.parametrize(
    "failure",
    [
        "connection_refused",
        "read_timeout",
        "tls_failure",
        "proxy_unreachable",
        "dropped",
        "truncated",
        "html_echoing_the_url",
        "json_echoing_the_secret",
        "redirect_carrying_the_secret",
        "wrong_secret",
    ],
)
def test_the_client_secret_never_shows_in_errors_tracebacks_or_debug_logs(
    menda_home: object,
    menda_cloud: MendaCloudEmulator,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    *,
    waits: list[float],
    failure: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    menda_cloud.add_m2m_client("leak-test", SECRET)
    host = menda_cloud.url
    timeout = (5.0, 15.0)
    sent_url = (
        f"{menda_cloud.token_url}?grant_type=client_credentials&client_id=leak-test"
        f"&client_secret={quote_plus(SECRET)}"
    )
    if failure == "connection_refused":
        host = f"http://127.0.0.1:{unused_port()}"
    elif failure == "read_timeout":
        menda_cloud.inject("token", Delay(1.0), times=3)
        timeout = (2.0, 0.1)
    elif failure == "tls_failure":
        for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
            monkeypatch.delenv(name, raising=False)
        host, _ = request.getfixturevalue("tls_server")
    elif failure == "proxy_unreachable":
        # Proxies are never used for a loopback host: this one is not, and never resolved.
        host = "https://api.menda.example"
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{unused_port()}")
    elif failure == "dropped":
        menda_cloud.inject("token", Drop(), times=3)
    elif failure == "truncated":
        menda_cloud.inject("token", Truncate(), times=3)
    elif failure == "html_echoing_the_url":
        page = f"<html>502: upstream failed for {sent_url} (secret {SECRET})</html>"
        menda_cloud.inject("token", NonJSON(502, body=page), times=3)
    elif failure == "json_echoing_the_secret":
        echo = f"bad request {sent_url} secret={SECRET} {quote(SECRET, safe='')}"
        menda_cloud.inject("token", Status(400, detail=echo, error=f"bad_{SECRET}"))
    elif failure == "redirect_carrying_the_secret":
        location = f"{menda_cloud.url}/elsewhere?client_secret={quote_plus(SECRET)}"
        menda_cloud.inject("token", Status(301, body="", headers={"Location": location}))
    elif failure == "wrong_secret":
        menda_cloud.add_m2m_client("leak-test", "another-secret")
    identity = Identity(
        host=host,
        auth_type="m2m",
        cache_key="m2m-env:leak-test",
        source="env",
        client_id="leak-test",
        client_secret=SECRET,
    )

    with _client(identity, timeout=timeout) as client, pytest.raises(MendaCloudAPIError) as caught:
        client.access_token()

    shown = "\n".join([str(caught.value), repr(caught.value), repr(client), caplog.text])
    printed = "".join(traceback.format_exception(caught.value))
    assert "/api/v1/auth/oauth2/token" in caplog.text  # the debug lines are there...
    for leaked in _LEAKS:  # ...but neither the secret nor the query string
        assert leaked not in shown, leaked
        assert leaked not in printed, leaked


# -- the deadline: MENDA_TIMEOUT --------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "deadline"),
    [
        (None, 30.0),
        ("", 30.0),
        ("12", 12.0),
        (" 2.5 ", 2.5),
        ("0", 30.0),
        ("-3", 30.0),
        ("soon", 30.0),
        ("nan", 30.0),
        ("inf", 30.0),
        ("3600", 3600.0),
        ("3601", 30.0),
    ],
)
def test_deadline_from_env_reads_menda_timeout(value: str | None, deadline: float) -> None:
    environ = {} if value is None else {"MENDA_TIMEOUT": value}
    assert deadline_from_env(environ) == deadline


def test_menda_timeout_is_the_deadline_of_each_call(
    m2m: Identity,
    menda_cloud: MendaCloudEmulator,
    monkeypatch: pytest.MonkeyPatch,
    waits: list[float],
) -> None:
    monkeypatch.setenv("MENDA_TIMEOUT", "0.4")
    menda_cloud.inject("token", Delay(3.0), times=3)
    started = time.monotonic()
    with MendaCloudClient(m2m) as client, pytest.raises(MendaCloudAPIError) as caught:
        client.access_token()

    assert time.monotonic() - started < 2.0
    assert caught.value.status_code is None
    assert "within 0.4 s" in str(caught.value) or "0.4 s deadline" in str(caught.value)
    assert waits == []


def test_an_explicit_deadline_wins_over_menda_timeout(
    m2m: Identity, menda_cloud: MendaCloudEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MENDA_TIMEOUT", "0.01")
    menda_cloud.inject("token", Delay(0.2))
    with MendaCloudClient(m2m, deadline=10.0) as client:
        assert client.access_token()


# -- malformed answers of the other endpoints ---------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"id_token": "mit_x", "expires_in": 3600},
        {"access_token": "mat_x"},
        {"access_token": "mat_x", "expires_in": 3600, "refresh_token": 7},
        {"access_token": "mat_x", "expires_in": 3600, "id_token": "mit x"},
        {"access_token": "mat_x", "expires_in": 3600, "token_type": "MAC"},
    ],
)
def test_malformed_refresh_answers_raise_malformed_response_and_write_nothing(
    u2m: Identity,
    menda_cloud: MendaCloudEmulator,
    menda_home: MendaHome,
    expired_alice: UserLogin,
    body: object,
) -> None:
    before = menda_home.token_file.read_bytes()
    menda_cloud.inject("token", Malformed(body))
    with _client(u2m) as client, pytest.raises(MendaCloudAPIError) as caught:
        client.access_token()

    assert "malformed response" in str(caught.value)
    assert "mat_x" not in str(caught.value)
    assert menda_home.token_file.read_bytes() == before


@pytest.mark.parametrize("body", [{}, {"app_client_id": ""}, {"app_client_id": 7}, []])
def test_malformed_discovery_answers_raise_malformed_response(
    u2m: Identity, menda_cloud: MendaCloudEmulator, expired_alice: UserLogin, body: object
) -> None:
    menda_cloud.inject("discovery", Malformed(body))
    with _client(u2m) as client, pytest.raises(MendaCloudAPIError) as caught:
        client.access_token()

    assert "malformed response" in str(caught.value)
    assert "app_client_id" in str(caught.value) or "JSON object" in str(caught.value)
    assert menda_cloud.count("token") == 0


@pytest.mark.parametrize("body", [{"username": 7}, {"identity_type": ["user"]}, "user"])
def test_malformed_whoami_answers_raise_malformed_response(
    m2m: Identity, menda_cloud: MendaCloudEmulator, body: object
) -> None:
    menda_cloud.inject("whoami", Malformed(body))
    with _client(m2m) as client, pytest.raises(MendaCloudAPIError) as caught:
        client.whoami()

    assert "malformed response" in str(caught.value)


def test_whoami_ignores_unknown_fields_and_allows_missing_ones(
    m2m: Identity, menda_cloud: MendaCloudEmulator
) -> None:
    menda_cloud.inject("whoami", Malformed({"username": "bot", "extra": {"x": 1}}))
    with _client(m2m) as client:
        me = client.whoami()

    assert me.username == "bot"
    assert (me.tenant_id, me.email, me.user_role, me.identity_type) == (None, None, None, None)


def test_only_secrets_are_masked_in_the_servers_text_not_the_client_id_or_grant_type(
    menda_cloud: MendaCloudEmulator, menda_home: object
) -> None:
    # A short client id appears inside ordinary words of the service's answer; it is
    # not a secret and must not be masked (only the secret and tokens are).
    menda_cloud.add_m2m_client("cli", "the-right-secret")
    identity = Identity(
        host=menda_cloud.url,
        auth_type="m2m",
        cache_key="m2m-env:cli",
        source="env",
        client_id="cli",
        client_secret="a-wrong-secret",
    )
    with _client(identity) as client, pytest.raises(MendaCloudAPIError) as caught:
        client.access_token()

    assert "invalid client credentials: unknown client or wrong secret" in str(caught.value)


def test_a_revoked_login_without_refresh_token_is_not_reported_as_expired(
    u2m: Identity, alice: UserLogin, menda_cloud: MendaCloudEmulator, menda_home: MendaHome
) -> None:
    # Valid by the clock, refused by menda cloud (401): saying "has expired" sends the
    # user looking at the wrong thing.
    menda_home.write_cached_login("default", alice, now=menda_cloud.now(), refresh_token="")
    menda_cloud.revoke_access_token(alice.id_token)

    with _client(u2m) as client, pytest.raises(NoCachedLoginError) as caught:
        client.registry_token(REGISTRY)

    message = str(caught.value)
    assert "expired" not in message
    assert "401" in message or "refused" in message or "rejected" in message


def test_user_tokens_never_show_in_errors_or_debug_logs(
    u2m: Identity,
    expired_alice: UserLogin,
    menda_cloud: MendaCloudEmulator,
    menda_home: MendaHome,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    old = expired_alice
    # The refresh (refresh token in the query string) succeeds; then the service echoes
    # the presented id token back in its refusals of the registry and of whoami.
    with _client(u2m) as client:
        fresh = client.access_token()
        echo = f"token {fresh} ({quote(fresh, safe='')}) refused"
        menda_cloud.inject("registry", Status(403, detail=echo, error=fresh[:40]))
        with pytest.raises(MendaCloudAPIError) as registry_error:
            client.registry_token(REGISTRY)
        menda_cloud.inject("whoami", Status(403, detail=echo))
        with pytest.raises(MendaCloudAPIError) as whoami_error:
            client.whoami()
        menda_cloud.inject("token", Status(400, detail=f"bad refresh_token={old.refresh_token}"))
        with pytest.raises(NoCachedLoginError) as refresh_error:
            client.refresh(CliTokenFile(menda_home.token_file).load("default"))  # type: ignore[arg-type]

    written = menda_home.read_cli_tokens()["default"]
    shown = "\n".join(
        [
            *(str(e.value) for e in (registry_error, whoami_error, refresh_error)),
            *(repr(e.value) for e in (registry_error, whoami_error, refresh_error)),
            caplog.text,
        ]
    )
    assert "POST" in caplog.text
    assert "token *** (***) refused" in str(registry_error.value)
    for token in (
        old.refresh_token,
        old.id_token,
        old.access_token,
        written["id_token"],
        written["access_token"],
        written["refresh_token"],
    ):
        assert token not in shown


def test_a_registry_failure_is_remembered_until_something_changes(
    m2m: Identity,
    menda_cloud: MendaCloudEmulator,
    monkeypatch: pytest.MonkeyPatch,
    waits: list[float],
) -> None:
    menda_cloud.inject("registry", Status(403, detail="not for you"))
    with _client(m2m) as client:
        with pytest.raises(MendaCloudAPIError) as first:
            client.registry_token(REGISTRY)
        menda_cloud.clear_log()
        with pytest.raises(MendaCloudAPIError) as again:
            client.registry_token(REGISTRY)

    assert menda_cloud.requests == []  # failed again at once, from the memory
    assert (again.value.status_code, str(again.value)) == (403, str(first.value))

    # A changed environment may change the outcome: menda cloud is asked again.
    monkeypatch.setenv("MENDA_TIMEOUT", "20")
    with _client(m2m) as client:
        assert client.registry_token(REGISTRY).from_cache is False
    assert [r.endpoint for r in menda_cloud.requests] == ["registry"]
