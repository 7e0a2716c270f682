"""Errors, retries, timeouts and deadlines against the emulator's fault injection."""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from collections.abc import Iterator
from datetime import timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
import trustme

from menda.cloud_client import MendaCloudClient, RegistryRequest
from menda.core_auth import Identity, utcnow
from menda.error import MendaCloudAPIError
from menda.testing._faults import Delay, Drop, Malformed, NonJSON, Status, Truncate
from menda.testing.emulator import MendaCloudEmulator

REGISTRY = RegistryRequest("menda-private", "058264169513", "eu-west-1", "menda-plugins", "pypi")


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the client's back-off waits instead of sleeping them."""
    recorded: list[float] = []
    monkeypatch.setattr("menda.cloud_client._http._sleep", recorded.append)
    return recorded


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
    assert error.error == "access_denied"
    assert error.request_id == request.request_id
    message = str(error)
    assert "/api/v1/auth/registry/token" in message
    assert menda_cloud.url in message
    assert "403" in message
    assert "may not use CodeArtifact domain 'menda-private'" in message
    assert request.request_id is not None
    assert request.request_id in message


def test_unknown_registry_is_404_registry_not_found(
    m2m: Identity, menda_cloud: MendaCloudEmulator
) -> None:
    menda_cloud.add_registry("somewhere-else", "111122223333", "us-east-1")
    with _client(m2m) as client, pytest.raises(MendaCloudAPIError) as caught:
        client.registry_token(REGISTRY)

    assert caught.value.status_code == 404
    assert caught.value.error == "registry_not_found"
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
        cache_key=m2m_client[0],
        source="env",
        client_id=m2m_client[0],
        client_secret="not-the-secret",
    )
    with _client(identity) as client, pytest.raises(MendaCloudAPIError) as caught:
        client.access_token()

    assert caught.value.status_code == 401
    assert caught.value.error == "invalid_client"
    assert "/api/v1/auth/oauth2/token" in str(caught.value)
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
        {"access_token": "mat_x", "expires_in": 3600, "refresh_token": 7},
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
        {"token": "caat_x"},
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
    thread = threading.Thread(target=server.serve_forever, daemon=True)
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
