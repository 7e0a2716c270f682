from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator

import pytest
import requests

from menda.testing import FakeCodeArtifact

DOMAIN, OWNER, REGION, REPO = "menda-private", "058264169513", "eu-west-1", "plugins"
HOST = f"{DOMAIN}-{OWNER}.d.codeartifact.{REGION}.amazonaws.com"
GOOD = "caat_good-token"
BASIC = "Basic YXdzOmNhYXRfZ29vZC10b2tlbg=="  # aws:caat_good-token


class FixedTokenValidator:
    def validate_registry_token(self, token: str, *, domain: str, owner: str, region: str) -> bool:
        return token == GOOD and (domain, owner, region) == (DOMAIN, OWNER, REGION)


@pytest.fixture
def ca() -> Iterator[FakeCodeArtifact]:
    with FakeCodeArtifact(FixedTokenValidator()) as server:
        index_url = server.add_repository(DOMAIN, OWNER, REGION, REPO)
        server.add_package(index_url, "pkg", "1.0")
        yield server


def _connect(ca: FakeCodeArtifact) -> socket.socket:
    return socket.create_connection(("127.0.0.1", ca.port), timeout=10)


def _read_head(sock: socket.socket | ssl.SSLSocket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(1)
        if not chunk:
            break
        data += chunk
    return data


def _read_response(sock: socket.socket | ssl.SSLSocket) -> tuple[int, dict[str, str], bytes]:
    head = _read_head(sock).decode("latin-1")
    status_line, *lines = head.split("\r\n")
    headers = {}
    for line in lines:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = b""
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        body += sock.recv(length - len(body))
    return int(status_line.split()[1]), headers, body


def _open_tunnel(ca: FakeCodeArtifact, host: str = HOST) -> ssl.SSLSocket:
    raw = _connect(ca)
    raw.sendall(f"CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n".encode())
    assert _read_head(raw).startswith(b"HTTP/1.1 200")
    context = ssl.create_default_context(cafile=str(ca.ca_pem_path))
    return context.wrap_socket(raw, server_hostname=host)


def test_requests_reaches_the_genuine_host_name_through_the_proxy(ca: FakeCodeArtifact) -> None:
    response = requests.get(
        f"https://{HOST}/pypi/{REPO}/simple/pkg/",
        auth=("aws", GOOD),
        proxies={"https": ca.proxy_url},
        verify=str(ca.ca_pem_path),
        timeout=10,
    )
    assert response.status_code == 200
    assert "pkg-1.0-py3-none-any.whl" in response.text


def test_certificate_is_issued_for_exactly_the_requested_host(ca: FakeCodeArtifact) -> None:
    with _open_tunnel(ca) as tls:
        cert = tls.getpeercert()
    assert cert is not None
    assert ("DNS", HOST) in cert["subjectAltName"]


def test_untrusted_clients_fail_verification(ca: FakeCodeArtifact) -> None:
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(
            f"https://{HOST}/pypi/{REPO}/simple/",
            proxies={"https": ca.proxy_url},
            verify=True,  # the system store does not know the test CA
            timeout=10,
        )
    # and the proxy keeps serving afterwards
    ok = requests.get(
        f"https://{HOST}/pypi/{REPO}/simple/",
        auth=("aws", GOOD),
        proxies={"https": ca.proxy_url},
        verify=str(ca.ca_pem_path),
        timeout=10,
    )
    assert ok.status_code == 200


def test_keep_alive_serves_many_requests_over_one_tls_connection(ca: FakeCodeArtifact) -> None:
    with _open_tunnel(ca) as tls:
        for path in (f"/pypi/{REPO}/simple/", f"/pypi/{REPO}/simple/pkg/", f"/pypi/{REPO}/simple/"):
            request = f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: {BASIC}\r\n\r\n"
            tls.sendall(request.encode())
            status, headers, body = _read_response(tls)
            assert status == 200
            assert headers.get("connection", "").lower() != "close"
            assert b"<html>" in body
        tls.sendall(f"GET /pypi/{REPO}/simple/ HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
        status, headers, _ = _read_response(tls)
        assert status == 401
        assert headers["www-authenticate"] == f'Basic realm="{DOMAIN}-{OWNER}"'
    assert ca.requests.count(method="CONNECT") == 1
    assert ca.requests.statuses(via="tunnel") == [200, 200, 200, 401]


def test_plain_http_absolute_form_is_dispatched_by_host(ca: FakeCodeArtifact) -> None:
    response = requests.get(
        f"http://{HOST}/pypi/{REPO}/simple/pkg/",
        auth=("aws", GOOD),
        proxies={"http": ca.proxy_url},
        timeout=10,
    )
    assert response.status_code == 200
    assert "pkg-1.0-py3-none-any.whl" in response.text
    [record] = ca.requests.records(host=HOST)
    assert (record.scheme, record.via, record.path) == (
        "http",
        "proxy",
        f"/pypi/{REPO}/simple/pkg/",
    )


def test_plain_http_absolute_form_still_needs_the_token(ca: FakeCodeArtifact) -> None:
    response = requests.get(
        f"http://{HOST}/pypi/{REPO}/simple/", proxies={"http": ca.proxy_url}, timeout=10
    )
    assert response.status_code == 401


@pytest.mark.parametrize(
    "target",
    [
        "pypi.org:443",
        f"{HOST}.evil.example:443",
        f"{HOST}:8443",
        "127.0.0.1:22",
        "[bad-ipv6:443",
    ],
)
def test_connect_to_a_foreign_host_is_refused_and_closed(ca: FakeCodeArtifact, target: str) -> None:
    with _connect(ca) as raw:
        raw.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        status, headers, _ = _read_response(raw)
        assert status == 502
        assert headers["connection"] == "close"
        assert raw.recv(1) == b""
    assert ca.requests.count(method="CONNECT", status=502) == 1


def test_absolute_form_to_a_foreign_host_is_refused(ca: FakeCodeArtifact) -> None:
    response = requests.get(
        "http://example.com/simple/", proxies={"http": ca.proxy_url}, timeout=10
    )
    assert response.status_code == 502
    assert ca.requests.count(host="example.com", status=502) == 1


def test_requests_through_https_proxy_to_a_foreign_host_fail(ca: FakeCodeArtifact) -> None:
    with pytest.raises(requests.exceptions.ProxyError):
        requests.get("https://pypi.org/simple/", proxies={"https": ca.proxy_url}, timeout=10)


def test_garbage_instead_of_a_tls_handshake_is_survived_quietly(
    ca: FakeCodeArtifact, capfd: pytest.CaptureFixture[str]
) -> None:
    with _connect(ca) as raw:
        raw.sendall(f"CONNECT {HOST}:443 HTTP/1.1\r\n\r\n".encode())
        assert _read_head(raw).startswith(b"HTTP/1.1 200")
        raw.sendall(b"GET / HTTP/1.1\r\n\r\n")  # plaintext inside the tunnel
        raw.settimeout(10)
        try:
            leftover = raw.recv(1024)
        except ConnectionResetError:
            leftover = b""
        assert b"HTTP/1.1 200" not in leftover
    with _connect(ca) as raw:
        raw.sendall(b"\x00\x01 nonsense\r\n\r\n")
        _read_head(raw)
    with _connect(ca) as raw:
        raw.sendall(f"GET /pypi/{REPO}/simple/".encode())  # hang up mid-request
    response = requests.get(ca.public_index_url, timeout=10)
    assert response.status_code == 200
    captured = capfd.readouterr()
    assert "Traceback" not in captured.err
    assert captured.err == ""


def test_direct_requests_to_unknown_paths_are_404(ca: FakeCodeArtifact) -> None:
    with requests.Session() as s:
        s.trust_env = False
        assert s.get(f"http://127.0.0.1:{ca.port}/nothing").status_code == 404
        assert s.get(f"http://127.0.0.1:{ca.port}/pypi/{REPO}/simple/").status_code == 404


def test_stop_closes_idle_keep_alive_tunnels(ca: FakeCodeArtifact) -> None:
    tls = _open_tunnel(ca)
    try:
        tls.sendall(f"GET /pypi/{REPO}/simple/ HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
        assert _read_response(tls)[0] == 401
        ca.stop()
        tls.settimeout(5)  # a timeout (connection left open) fails the test
        try:
            data = tls.recv(1)
        except (ssl.SSLError, ConnectionError):
            data = b""
        assert data == b""
    finally:
        tls.close()
