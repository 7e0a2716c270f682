"""What the user's environment may bring to a request: ~/.netrc, proxies."""

from __future__ import annotations

import socket
import sys
from datetime import timedelta

import pytest

from menda.cloud_client import MendaCloudClient, RegistryRequest
from menda.core_auth import Identity, TokenCache, utcnow
from menda.error import MendaCloudAPIError, NoCachedLoginError
from menda.testing.emulator import MendaCloudEmulator
from menda.testing.pytest_plugin import MendaHome

REGISTRY = RegistryRequest("menda-private", "058264169513", "eu-west-1", "menda-plugins", "pypi")


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_netrc_entry_never_replaces_our_credentials(
    m2m: Identity, menda_home: MendaHome, menda_cloud: MendaCloudEmulator, cache: TokenCache
) -> None:
    # requests fills Authorization from ~/.netrc when the caller passes no auth;
    # that would send the user's netrc password to menda cloud instead of ours.
    netrc = menda_home.home / ".netrc"
    netrc.write_text("default login netrc-user password netrc-password\n")
    if sys.platform != "win32":
        netrc.chmod(0o600)  # Python's netrc ignores a password in a group-readable file

    credential = MendaCloudClient(m2m, cache=cache).registry_token(REGISTRY)

    assert credential.token
    (token_request,) = [r for r in menda_cloud.requests if r.endpoint == "token"]
    assert token_request.client_id == m2m.client_id
    assert token_request.status == 200


def test_an_unreachable_proxy_is_named_in_the_error(
    m2m: Identity, cache: TokenCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{_dead_port()}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = MendaCloudClient(m2m, cache=cache, max_attempts=1)

    with pytest.raises(MendaCloudAPIError) as caught:
        client.access_token()

    assert "proxy" in str(caught.value)
    assert caught.value.status_code is None


def test_no_proxy_sends_menda_cloud_requests_direct(
    m2m: Identity,
    cache: TokenCache,
    menda_cloud: MendaCloudEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{_dead_port()}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")

    assert MendaCloudClient(m2m, cache=cache, max_attempts=1).access_token()
    assert menda_cloud.count(endpoint="token") == 1


def test_a_login_dated_implausibly_far_ahead_says_so(
    u2m: Identity, menda_home: MendaHome, menda_cloud: MendaCloudEmulator, cache: TokenCache
) -> None:
    menda_home.write_cached_login(
        "default",
        host=menda_cloud.url,
        access_token="far-ahead-access-token",
        expires_at=utcnow() + timedelta(days=30),
    )

    with pytest.raises(NoCachedLoginError) as caught:
        MendaCloudClient(u2m, cache=cache).access_token()

    message = str(caught.value)
    assert message.startswith("No valid cached token for profile 'default'")
    assert "clock" in message
    assert "far-ahead-access-token" not in message


def test_a_server_echoing_our_credentials_encoded_never_shows_them(
    m2m: Identity, menda_cloud: MendaCloudEmulator, cache: TokenCache
) -> None:
    import base64
    from urllib.parse import quote

    from menda.testing._faults import Status

    secret = m2m.client_secret or ""
    pair = f"{quote(m2m.client_id or '', safe='')}:{quote(secret, safe='')}"
    basic = base64.b64encode(pair.encode()).decode()
    echoed = f"got Basic {basic}, secret {quote(secret, safe='')} and {secret}"
    menda_cloud.inject(
        "token",
        Status(401, body=f'{{"error": "invalid_client", "error_description": "{echoed}"}}'),
    )

    with pytest.raises(MendaCloudAPIError) as caught:
        MendaCloudClient(m2m, cache=cache, max_attempts=1).access_token()

    message = str(caught.value)
    assert "invalid_client" in message
    for leaked in (basic, quote(secret, safe=""), secret):
        assert leaked not in message
