"""What the user's environment may bring: ~/.netrc, proxies, identities sharing a name."""

from __future__ import annotations

import json
import sys
import time
from urllib.parse import quote, quote_plus

import pytest

from menda.cloud_client import MendaCloudClient, RegistryRequest
from menda.core_auth import Identity, TokenCache, format_time, resolve_identity
from menda.error import MendaCloudAPIError, NoCachedLoginError
from menda.testing import MendaCloudEmulator, MendaHome, Status, cache_file_name, unused_port

REGISTRY = RegistryRequest("menda-private", "058264169513", "eu-west-1", "menda-plugins", "pypi")
PARTS = (REGISTRY.domain, REGISTRY.domain_owner, REGISTRY.region)


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
    assert token_request.status == 200  # the token endpoint refuses any Authorization header
    assert token_request.token_header is None


def test_an_unreachable_proxy_is_named_in_the_error(
    menda_home: MendaHome, cache: TokenCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Proxies are never used for a loopback host, so this host is a remote one (never
    # resolved: the proxy is asked for it, and the proxy is not there).
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{unused_port()}")
    identity = Identity(
        host="https://api.menda.example",
        auth_type="m2m",
        cache_key="m2m-env:ci",
        source="env",
        client_id="ci",
        client_secret="proxy-test-secret",
    )
    client = MendaCloudClient(identity, cache=cache, max_attempts=1)

    with pytest.raises(MendaCloudAPIError) as caught:
        client.access_token()

    message = str(caught.value)
    assert "could not reach menda cloud through the proxy" in message
    assert "HTTPS_PROXY" in message
    assert "proxy-test-secret" not in message
    assert caught.value.status_code is None


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY"])
def test_a_loopback_host_is_reached_directly_whatever_the_proxy_variables_say(
    m2m: Identity,
    cache: TokenCache,
    menda_cloud: MendaCloudEmulator,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
) -> None:
    # A proxy would see the secret in clear text (http://) and is never what was meant.
    monkeypatch.setenv(variable, f"http://127.0.0.1:{unused_port()}")

    assert MendaCloudClient(m2m, cache=cache, max_attempts=1).access_token()
    assert menda_cloud.count(endpoint="token") == 1


def test_a_login_dated_implausibly_far_ahead_says_so(
    u2m: Identity, menda_home: MendaHome, menda_cloud: MendaCloudEmulator, cache: TokenCache
) -> None:
    menda_home.write_cached_login(
        "default",
        access_token="far-ahead-access-token",
        cached_at=time.time() + 30 * 86400,
    )

    with pytest.raises(NoCachedLoginError) as caught:
        MendaCloudClient(u2m, cache=cache).access_token()

    message = str(caught.value)
    assert message.startswith("No valid cached token for profile 'default'")
    assert "clock" in message
    assert "far-ahead-access-token" not in message
    assert menda_cloud.requests == []


def test_a_server_echoing_our_credentials_encoded_never_shows_them(
    m2m: Identity, menda_cloud: MendaCloudEmulator, cache: TokenCache
) -> None:
    secret = m2m.client_secret or ""
    encoded = (quote(secret, safe=""), quote_plus(secret))
    echoed = f"got client_secret={encoded[0]}, also {encoded[1]} and {secret}"
    menda_cloud.inject(
        "token",
        Status(401, body=json.dumps({"error": "invalid_client", "error_description": echoed})),
    )

    with pytest.raises(MendaCloudAPIError) as caught:
        MendaCloudClient(m2m, cache=cache, max_attempts=1).access_token()

    message = str(caught.value)
    assert "invalid_client" in message
    assert "got " in message
    for leaked in (*encoded, secret):
        assert leaked not in message


def test_m2m_from_env_and_an_m2m_profile_of_the_same_name_never_share_entries(
    menda_home: MendaHome,
    menda_cloud: MendaCloudEmulator,
    cache: TokenCache,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The same name everywhere: client id "ci" in the environment, profile "ci" (same client).
    menda_cloud.add_m2m_client("ci", "ci-secret")
    menda_home.add_m2m_profile(menda_cloud, "ci", "ci-secret", profile="ci")
    monkeypatch.setenv("MENDA_PROFILE_ID", "ci")
    from_profile = resolve_identity()
    monkeypatch.setenv("MENDA_CLIENT_ID", "ci")
    monkeypatch.setenv("MENDA_CLIENT_SECRET", "ci-secret")
    monkeypatch.setenv("MENDA_HOST", menda_cloud.url)
    from_env = resolve_identity()  # the complete trio wins over MENDA_PROFILE_ID
    assert (from_env.cache_key, from_profile.cache_key) == ("m2m-env:ci", "m2m-profile:ci")
    assert from_env.registry_key(*PARTS) != from_profile.registry_key(*PARTS)

    with MendaCloudClient(from_env, cache=cache) as client:
        env_credential = client.registry_token(REGISTRY)
        env_token = client.access_token()
    with MendaCloudClient(from_profile, cache=cache) as client:
        profile_credential = client.registry_token(REGISTRY)
        profile_token = client.access_token()

    assert env_token != profile_token
    assert env_credential.token != profile_credential.token
    assert not profile_credential.from_cache
    assert menda_cloud.count("token") == 2
    assert menda_cloud.count("registry") == 2
    names = sorted(path.name for path in cache.entries_dir.glob("*.json"))
    assert [n for n in names if not n.startswith("registry-")] == [
        cache_file_name("m2m-env:ci"),
        cache_file_name("m2m-profile:ci"),
    ]
    assert len([n for n in names if n.startswith("registry-")]) == 2
    identities = {
        json.loads(path.read_text(encoding="utf-8"))["identity"]
        for path in cache.entries_dir.glob("registry-*.json")
    }
    assert identities == {"m2m-env:ci", "m2m-profile:ci"}


def test_a_user_profile_never_uses_an_m2m_entry_of_the_same_name(
    menda_home: MendaHome, menda_cloud: MendaCloudEmulator, cache: TokenCache
) -> None:
    menda_cloud.add_m2m_client("default", "m2m-secret")
    token, expires = menda_cloud.issue_access_token("default")
    entry = {
        "access_token": token,
        "expires_at": format_time(expires),
        "host": menda_cloud.url,
        "client_id": "default",
    }
    for key in ("m2m-env:default", "m2m-profile:default", "u2m-profile:default", "default"):
        menda_home.write_cache_entry(key, entry)
    menda_home.write_config({"default": {"host": menda_cloud.url, "auth_type": "u2m"}})

    with pytest.raises(NoCachedLoginError):
        MendaCloudClient(resolve_identity(), cache=cache).access_token()
    assert menda_cloud.requests == []


def test_a_profile_whose_client_changed_does_not_reuse_the_old_clients_tokens(
    menda_home: MendaHome,
    menda_cloud: MendaCloudEmulator,
    cache: TokenCache,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    menda_cloud.add_m2m_client("old-client", "old-secret")
    menda_cloud.add_m2m_client("new-client", "new-secret")
    monkeypatch.setenv("MENDA_PROFILE_ID", "ci")
    menda_home.add_m2m_profile(menda_cloud, "old-client", "old-secret", profile="ci")
    with MendaCloudClient(resolve_identity(), cache=cache) as client:
        old = client.registry_token(REGISTRY)

    menda_home.add_m2m_profile(menda_cloud, "new-client", "new-secret", profile="ci")
    with MendaCloudClient(resolve_identity(), cache=cache) as client:
        new = client.registry_token(REGISTRY)

    assert new.from_cache is False
    assert new.token != old.token
    assert [(r.endpoint, r.identity) for r in menda_cloud.requests] == [
        ("token", "old-client"),
        ("registry", "old-client"),
        ("token", "new-client"),
        ("registry", "new-client"),
    ]
