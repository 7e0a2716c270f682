"""Fault injection: each kind, seen by a plain client over a real socket."""

from __future__ import annotations

import http.client
import json
import time
from urllib.parse import urlsplit

import pytest
import requests

from menda.testing import (
    Delay,
    Drop,
    Malformed,
    MendaCloudEmulator,
    NonJSON,
    Status,
    Truncate,
    fault_from_dict,
    fault_to_dict,
)

QUERY = "grant_type=client_credentials&client_id=ci&client_secret=s3cret"


def token_request(cloud: MendaCloudEmulator, timeout: float = 5) -> requests.Response:
    return requests.post(f"{cloud.token_url}?{QUERY}", timeout=timeout)


def registry_request(cloud: MendaCloudEmulator, token: str) -> requests.Response:
    headers = {"authorizationToken": f"Bearer {token}", "Content-Type": "application/json"}
    return requests.post(cloud.registry_url, headers=headers, timeout=5)


def raw_token_request(cloud: MendaCloudEmulator) -> http.client.HTTPResponse:
    """One request on a fresh connection; the caller reads (and may fail on) the body."""
    parts = urlsplit(cloud.url)
    assert parts.hostname is not None
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    conn.request("POST", f"/api/v1/auth/oauth2/token?{QUERY}")
    return conn.getresponse()


def test_status_fault_applies_to_the_next_n_requests_then_stops(
    cloud: MendaCloudEmulator,
) -> None:
    cloud.inject("token", Status(503), times=2)
    assert [token_request(cloud).status_code for _ in range(3)] == [503, 503, 200]
    assert [r.fault for r in cloud.requests] == ["status", "status", None]
    assert cloud.pending_faults("token") == []


def test_status_fault_body_is_a_detail_with_request_id(cloud: MendaCloudEmulator) -> None:
    cloud.inject("token", Status(429, retry_after=3))
    response = token_request(cloud)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3"
    assert response.headers["X-Request-Id"]
    assert response.json() == {"detail": "injected fault: HTTP 429"}


def test_status_fault_retry_after_may_be_an_http_date(cloud: MendaCloudEmulator) -> None:
    date = "Wed, 21 Oct 2026 07:28:00 GMT"
    cloud.inject("token", Status(503, retry_after=date))
    assert token_request(cloud).headers["Retry-After"] == date


def test_status_fault_with_custom_body_detail_and_error(cloud: MendaCloudEmulator) -> None:
    cloud.inject("token", Status(500, body="oops", content_type="text/plain"))
    cloud.inject("token", Status(400, error="invalid_grant", detail="refused"))
    first = token_request(cloud)
    assert (first.status_code, first.text, first.headers["Content-Type"]) == (
        500,
        "oops",
        "text/plain",
    )
    assert token_request(cloud).json() == {"detail": "refused", "error": "invalid_grant"}


def test_status_fault_adds_arbitrary_headers(cloud: MendaCloudEmulator) -> None:
    cloud.inject("registry", Status(403, headers={"x-amzn-RequestId": "abc-123"}))
    cloud.inject("token", Malformed(headers={"X-Extra": "1"}))
    response = registry_request(cloud, cloud.issue_access_token("ci")[0])
    assert response.headers["x-amzn-RequestId"] == "abc-123"
    assert response.headers["X-Request-Id"]
    assert token_request(cloud).headers["X-Extra"] == "1"


def test_bodies_may_be_bytes_that_are_not_utf8(cloud: MendaCloudEmulator) -> None:
    cloud.inject("token", Status(502, body=b"\xff\xfe bad", content_type="text/plain"))
    cloud.inject("token", NonJSON(status=200, body=b"\x80\x81"))
    assert token_request(cloud).content == b"\xff\xfe bad"
    assert token_request(cloud).content == b"\x80\x81"


def test_status_401_on_registry_looks_like_an_expired_access_token(
    cloud: MendaCloudEmulator,
) -> None:
    token, _ = cloud.issue_access_token("ci")
    cloud.inject("registry", Status(401))
    response = registry_request(cloud, token)
    assert response.status_code == 401
    assert response.json()["detail"]
    assert cloud.minted_registry_tokens == []


def test_faults_are_per_endpoint_and_in_order(cloud: MendaCloudEmulator) -> None:
    token, _ = cloud.issue_access_token("ci")
    cloud.inject("registry", Status(502))
    cloud.inject("registry", Status(504))
    assert token_request(cloud).status_code == 200
    codes = [registry_request(cloud, token).status_code for _ in range(3)]
    assert codes == [502, 504, 200]


@pytest.mark.parametrize(
    ("endpoint", "method"),
    [
        ("discovery", "GET"),
        ("device_authorize", "POST"),
        ("device_token", "POST"),
        ("whoami", "GET"),
    ],
)
def test_every_endpoint_takes_faults(cloud: MendaCloudEmulator, endpoint: str, method: str) -> None:
    cloud.inject(endpoint, Status(503, retry_after=1))
    cloud.inject(endpoint, Truncate())
    url = cloud.endpoint_url(endpoint)
    first = requests.request(method, url, timeout=5)
    assert (first.status_code, first.headers["Retry-After"]) == (503, "1")
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.request(method, url, timeout=5)
    assert [r.fault for r in cloud.requests] == ["status", "truncate"]
    assert {r.endpoint for r in cloud.requests} == {endpoint}


def test_delay_answers_normally_after_waiting(cloud: MendaCloudEmulator) -> None:
    cloud.inject("token", Delay(0.3))
    started = time.monotonic()
    response = token_request(cloud)
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.3
    assert cloud.requests[0].fault == "delay"
    assert cloud.requests[0].identity == "ci"


def test_delay_longer_than_the_client_read_timeout_times_out(cloud: MendaCloudEmulator) -> None:
    cloud.inject("token", Delay(5))
    with pytest.raises(requests.Timeout):
        token_request(cloud, timeout=0.2)
    # Stopping does not wait for the sleeping request (the fixture stops it now).


def test_malformed_is_200_json_of_the_wrong_shape(cloud: MendaCloudEmulator) -> None:
    cloud.inject("token", Malformed())
    cloud.inject("token", Malformed({"access_token": 12, "expires_in": "soon"}))
    cloud.inject("token", Malformed(["a", "list"]))
    assert token_request(cloud).json() == {"unexpected": "shape"}
    assert token_request(cloud).json() == {"access_token": 12, "expires_in": "soon"}
    response = token_request(cloud)
    assert (response.status_code, response.json()) == (200, ["a", "list"])


def test_nonjson_is_an_html_page(cloud: MendaCloudEmulator) -> None:
    cloud.inject("token", NonJSON())
    cloud.inject("token", NonJSON(status=200, body="<html>ok?</html>"))
    first = token_request(cloud)
    assert first.status_code == 502
    assert first.headers["Content-Type"].startswith("text/html")
    with pytest.raises(ValueError):
        first.json()
    assert token_request(cloud).text == "<html>ok?</html>"


def test_drop_closes_the_connection_without_an_answer(cloud: MendaCloudEmulator) -> None:
    cloud.inject("token", Drop())
    with pytest.raises(requests.ConnectionError):
        token_request(cloud)
    assert token_request(cloud).status_code == 200
    assert [(r.status, r.fault) for r in cloud.requests] == [(None, "drop"), (200, None)]


def test_drop_seen_by_a_raw_client_is_a_remote_disconnect(cloud: MendaCloudEmulator) -> None:
    cloud.inject("token", Drop())
    with pytest.raises(http.client.RemoteDisconnected):
        raw_token_request(cloud)


def test_truncate_sends_less_body_than_content_length(cloud: MendaCloudEmulator) -> None:
    cloud.inject("token", Truncate())
    response = raw_token_request(cloud)
    assert response.status == 200
    declared = int(response.headers["Content-Length"])
    with pytest.raises(http.client.IncompleteRead) as caught:
        response.read()
    assert len(caught.value.partial) < declared


def test_truncate_is_an_error_for_requests_too(cloud: MendaCloudEmulator) -> None:
    cloud.inject("token", Truncate())
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        token_request(cloud)
    assert cloud.requests[0].fault == "truncate"


def test_inject_rejects_unknown_endpoints(cloud: MendaCloudEmulator) -> None:
    with pytest.raises(ValueError, match="endpoint"):
        cloud.inject("tokens", Status(500))


def test_clear_faults_drops_pending_ones(cloud: MendaCloudEmulator) -> None:
    cloud.inject("token", Status(500), times=5)
    cloud.clear_faults()
    assert token_request(cloud).status_code == 200


@pytest.mark.parametrize(
    "fault",
    [
        Status(503, retry_after="Wed, 21 Oct 2026 07:28:00 GMT"),
        Status(500, body=b"\xff\x00", headers={"x-amzn-RequestId": "r"}),
        NonJSON(body=b"\x80"),
        Delay(0.5),
        Malformed({"x": [1]}),
        NonJSON(status=200),
        Drop(),
        Truncate(),
    ],
)
def test_faults_round_trip_through_their_json_form(fault: object) -> None:
    as_json = json.loads(json.dumps(fault_to_dict(fault)))  # type: ignore[arg-type]
    assert fault_from_dict(as_json) == fault


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"kind": "explode"},
        {"kind": "status"},
        {"kind": "drop", "seconds": 1},
        {"kind": "nonjson", "body": {"base64": "!!"}},
    ],
)
def test_fault_from_dict_rejects_bad_input(data: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        fault_from_dict(data)
