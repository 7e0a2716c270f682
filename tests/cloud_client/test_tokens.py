"""Access and registry tokens from the real emulator and the real token cache."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from menda.cloud_client import MendaCloudClient, RegistryCredential, RegistryRequest, __version__
from menda.core_auth import Identity, TokenCache, registry_cache_key, resolve_identity
from menda.error import MendaCloudAPIError, NoCachedLoginError
from menda.testing.emulator import MendaCloudEmulator
from menda.testing.pytest_plugin import MendaHome

REGISTRY = RegistryRequest(
    domain="menda-private",
    domain_owner="058264169513",
    region="eu-west-1",
    repository="menda-plugins",
    format="pypi",
)
OTHER_REGISTRY = RegistryRequest(domain="other", domain_owner="111122223333", region="us-east-1")


def test_m2m_cold_cache_makes_one_token_and_one_registry_request(
    m2m: Identity, menda_cloud: MendaCloudEmulator
) -> None:
    with MendaCloudClient(m2m) as client:
        credential = client.registry_token(REGISTRY)

    assert credential.from_cache is False
    assert credential.username == "aws"
    assert menda_cloud.validate_registry_token(
        credential.token, domain="menda-private", owner="058264169513", region="eu-west-1"
    )
    assert menda_cloud.count("token") == 1
    assert menda_cloud.count("token", grant_type="client_credentials") == 1
    assert menda_cloud.count("registry") == 1


def test_registry_request_sends_codeartifact_body_and_nulls_for_a_bare_host(
    m2m: Identity, menda_cloud: MendaCloudEmulator
) -> None:
    with MendaCloudClient(m2m) as client:
        client.registry_token(REGISTRY)
        client.registry_token(OTHER_REGISTRY)

    bodies = [r.body for r in menda_cloud.requests if r.endpoint == "registry"]
    assert bodies == [
        {
            "registry_type": "codeartifact",
            "domain": "menda-private",
            "domain_owner": "058264169513",
            "region": "eu-west-1",
            "repository": "menda-plugins",
            "format": "pypi",
        },
        {
            "registry_type": "codeartifact",
            "domain": "other",
            "domain_owner": "111122223333",
            "region": "us-east-1",
            "repository": None,
            "format": None,
        },
    ]


def test_warm_access_token_makes_only_a_registry_request(
    m2m: Identity, menda_cloud: MendaCloudEmulator
) -> None:
    with MendaCloudClient(m2m) as client:
        client.access_token()
    menda_cloud.clear_log()

    with MendaCloudClient(m2m) as client:
        credential = client.registry_token(REGISTRY)

    assert credential.from_cache is False
    assert menda_cloud.count("token") == 0
    assert menda_cloud.count("registry") == 1


def test_warm_registry_token_is_served_from_cache_without_a_request(
    m2m: Identity, menda_cloud: MendaCloudEmulator
) -> None:
    with MendaCloudClient(m2m) as client:
        first = client.registry_token(REGISTRY)
    menda_cloud.clear_log()

    with MendaCloudClient(m2m) as client:
        second = client.registry_token(REGISTRY)

    assert second.from_cache is True
    assert second.token == first.token
    assert second.expires_at == first.expires_at
    assert menda_cloud.requests == []


def test_access_token_is_cached_and_reused(m2m: Identity, menda_cloud: MendaCloudEmulator) -> None:
    with MendaCloudClient(m2m) as client:
        first = client.access_token()
        second = client.access_token()
    with MendaCloudClient(m2m) as client:
        third = client.access_token()

    assert first == second == third
    assert menda_cloud.count("token") == 1


def test_importing_the_package_does_not_import_requests() -> None:
    code = (
        "import sys, menda.cloud_client\n"
        "assert 'requests' not in sys.modules, 'requests imported'\n"
        "assert 'urllib3' not in sys.modules, 'urllib3 imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_registry_cache_hit_does_not_import_requests(
    m2m: Identity, menda_cloud: MendaCloudEmulator, menda_home: MendaHome
) -> None:
    with MendaCloudClient(m2m) as client:
        expected = client.registry_token(REGISTRY)
    menda_cloud.clear_log()
    code = (
        "import sys\n"
        "from menda.core_auth import resolve_identity\n"
        "from menda.cloud_client import MendaCloudClient, RegistryRequest\n"
        "credential = MendaCloudClient(resolve_identity()).registry_token(RegistryRequest(\n"
        "    'menda-private', '058264169513', 'eu-west-1', 'menda-plugins', 'pypi'))\n"
        "assert credential.from_cache, credential\n"
        "assert 'requests' not in sys.modules, 'requests imported'\n"
        "print(credential.token)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=menda_home.env(),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == expected.token
    assert menda_cloud.requests == []


def test_user_agent_names_the_client_the_caller_and_python(
    m2m: Identity, menda_cloud: MendaCloudEmulator
) -> None:
    with MendaCloudClient(m2m, user_agent_extra="menda-keyring/0.1.0") as client:
        client.access_token()

    agent = menda_cloud.requests[0].user_agent or ""
    assert agent.startswith(f"menda-cloud-client/{__version__} menda-keyring/0.1.0 ")
    assert "Python/" in agent or "PyPy/" in agent


def test_host_with_a_path_prefix_gets_endpoints_appended(
    menda_home: MendaHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    with MendaCloudEmulator(path_prefix="/gateway/menda") as cloud:
        cloud.add_m2m_client("prefixed", "secret")
        monkeypatch.setenv("MENDA_CLIENT_ID", "prefixed")
        monkeypatch.setenv("MENDA_CLIENT_SECRET", "secret")
        monkeypatch.setenv("MENDA_HOST", cloud.url + "/")
        identity = resolve_identity()
        with MendaCloudClient(identity) as client:
            client.registry_token(REGISTRY)

        assert {r.path for r in cloud.requests} == {
            "/gateway/menda/api/v1/auth/oauth2/token",
            "/gateway/menda/api/v1/auth/registry/token",
        }


@pytest.mark.parametrize(
    ("client_id", "client_secret"),
    [
        ("plain", "p%40ss:w0rd+more"),
        ("id:with:colons", "secret with spaces"),
        ("100%+id", "%%::++"),
        ("ünïcødé-ïd", "sécret-€-密码"),
        ("id with space", "a+b=c&d/e?f#g;h"),
    ],
)
def test_basic_auth_form_encodes_special_characters(
    menda_cloud: MendaCloudEmulator, menda_home: MendaHome, client_id: str, client_secret: str
) -> None:
    menda_cloud.add_m2m_client(client_id, client_secret)
    identity = Identity(
        host=menda_cloud.url,
        auth_type="m2m",
        cache_key=client_id,
        source="env",
        client_id=client_id,
        client_secret=client_secret,
    )
    with MendaCloudClient(identity) as client:
        client.access_token()

    [request] = menda_cloud.requests
    assert request.status == 200
    assert request.identity == client_id


def test_cached_access_token_for_another_host_is_not_used(
    m2m: Identity, menda_cloud: MendaCloudEmulator, menda_home: MendaHome
) -> None:
    expires = datetime.now(timezone.utc) + timedelta(hours=1)
    menda_home.write_cached_login(
        m2m.cache_key,
        host="https://elsewhere.example",
        access_token="mat_for_elsewhere",
        expires_at=expires,
        extra={"auth_type": "m2m", "client_id": m2m.client_id},
    )
    with MendaCloudClient(m2m) as client:
        token = client.access_token()

    assert token != "mat_for_elsewhere"
    assert menda_cloud.count("token") == 1


def test_registry_token_already_expired_is_returned_but_not_cached(
    m2m: Identity, menda_cloud: MendaCloudEmulator, cache: TokenCache
) -> None:
    menda_cloud.registry_token_lifetime = -60
    with MendaCloudClient(m2m, cache=cache) as client:
        credential = client.registry_token(REGISTRY)
        again = client.registry_token(REGISTRY)

    assert credential.expires_at < datetime.now(timezone.utc)
    assert credential.from_cache is False
    assert again.from_cache is False
    assert menda_cloud.count("registry") == 2
    key = registry_cache_key(m2m.cache_key, m2m.host, *_parts(REGISTRY))
    assert not cache.path_for(key).exists()


def test_registry_token_is_stored_in_the_cache_entry_format(
    m2m: Identity, menda_cloud: MendaCloudEmulator, cache: TokenCache
) -> None:
    with MendaCloudClient(m2m, cache=cache) as client:
        credential = client.registry_token(REGISTRY)

    key = registry_cache_key(m2m.cache_key, m2m.host, *_parts(REGISTRY))
    entry = json.loads(cache.path_for(key).read_text(encoding="utf-8"))
    assert entry["token"] == credential.token
    assert entry["host"] == m2m.host
    assert entry["identity"] == m2m.cache_key
    assert (entry["domain"], entry["domain_owner"], entry["region"]) == _parts(REGISTRY)


# -- u2m -------------------------------------------------------------------------------


def test_u2m_uses_the_cached_login_without_a_token_request(
    u2m: Identity, menda_cloud: MendaCloudEmulator, menda_home: MendaHome
) -> None:
    login = menda_cloud.add_user("alice")
    menda_home.write_cached_login("default", host=menda_cloud.url, **login.cache_fields())

    with MendaCloudClient(u2m) as client:
        assert client.access_token() == login.access_token
        client.registry_token(REGISTRY)

    assert menda_cloud.count("token") == 0
    assert menda_cloud.count("registry") == 1


def test_u2m_refreshes_an_expired_login_and_saves_the_rotated_refresh_token(
    u2m: Identity, menda_cloud: MendaCloudEmulator, menda_home: MendaHome, cache: TokenCache
) -> None:
    login = menda_cloud.add_user("alice", client_id="menda-cli-public")
    expired = datetime.now(timezone.utc) - timedelta(minutes=5)
    menda_home.write_cached_login(
        "default",
        host=menda_cloud.url,
        access_token=login.access_token,
        refresh_token=login.refresh_token,
        expires_at=expired,
        client_id=login.client_id,
        extra={"cli_field": "kept"},
    )

    with MendaCloudClient(u2m) as client:
        token = client.access_token()

    assert token != login.access_token
    [request] = menda_cloud.requests
    assert request.grant_type == "refresh_token"
    assert request.client_id == "menda-cli-public"
    entry = json.loads(cache.path_for("default").read_text(encoding="utf-8"))
    assert entry["access_token"] == token
    assert entry["refresh_token"] != login.refresh_token
    assert entry["client_id"] == "menda-cli-public"
    assert entry["auth_type"] == "u2m"
    assert entry["cli_field"] == "kept"

    # The rotated refresh token is the one that works next time.
    menda_home.write_cached_login(
        "default",
        host=menda_cloud.url,
        access_token=token,
        refresh_token=entry["refresh_token"],
        expires_at=expired,
        client_id=login.client_id,
    )
    with MendaCloudClient(u2m) as client:
        client.access_token()
    assert menda_cloud.count("token", grant_type="refresh_token", status=200) == 2


def test_u2m_revoked_refresh_token_raises_no_cached_login(
    u2m: Identity, menda_cloud: MendaCloudEmulator, menda_home: MendaHome
) -> None:
    login = menda_cloud.add_user("alice")
    menda_cloud.revoke_refresh_token(login.refresh_token)
    menda_home.write_cached_login(
        "default",
        host=menda_cloud.url,
        access_token=login.access_token,
        refresh_token=login.refresh_token,
        expires_at=datetime.now(timezone.utc) - timedelta(hours=1),
        client_id=login.client_id,
    )

    with MendaCloudClient(u2m) as client, pytest.raises(NoCachedLoginError) as caught:
        client.registry_token(REGISTRY)

    message = str(caught.value)
    assert message.startswith("No valid cached token for profile 'default'")
    assert menda_cloud.url in message
    assert message.endswith("Run 'menda auth login', or switch to M2M.")
    assert login.refresh_token not in message
    assert menda_cloud.count("registry") == 0


def test_u2m_without_a_cached_login_raises_no_cached_login_without_a_request(
    u2m: Identity, menda_cloud: MendaCloudEmulator
) -> None:
    with MendaCloudClient(u2m) as client, pytest.raises(NoCachedLoginError) as caught:
        client.access_token()

    assert str(caught.value).startswith("No valid cached token for profile 'default'")
    assert menda_cloud.requests == []


def test_u2m_expired_login_without_refresh_token_raises_no_cached_login(
    u2m: Identity, menda_cloud: MendaCloudEmulator, menda_home: MendaHome
) -> None:
    login = menda_cloud.add_user("alice")
    menda_home.write_cached_login(
        "default",
        host=menda_cloud.url,
        access_token=login.access_token,
        expires_at=datetime.now(timezone.utc) - timedelta(seconds=1),
        client_id=login.client_id,
    )

    with MendaCloudClient(u2m) as client, pytest.raises(NoCachedLoginError):
        client.access_token()
    assert menda_cloud.requests == []


# -- 401 invalid_token at the registry endpoint ------------------------------------------


def test_m2m_invalid_token_reauthenticates_once_and_retries(
    m2m: Identity, menda_cloud: MendaCloudEmulator
) -> None:
    with MendaCloudClient(m2m) as client:
        revoked = client.access_token()
    menda_cloud.revoke_access_token(revoked)
    menda_cloud.clear_log()

    with MendaCloudClient(m2m) as client:
        credential = client.registry_token(REGISTRY)
        assert client.access_token() != revoked

    assert credential.from_cache is False
    assert [(r.endpoint, r.status) for r in menda_cloud.requests] == [
        ("registry", 401),
        ("token", 200),
        ("registry", 200),
    ]


def test_u2m_invalid_token_refreshes_once_and_retries(
    u2m: Identity, menda_cloud: MendaCloudEmulator, menda_home: MendaHome
) -> None:
    login = menda_cloud.add_user("alice")
    menda_home.write_cached_login("default", host=menda_cloud.url, **login.cache_fields())
    menda_cloud.revoke_access_token(login.access_token)

    with MendaCloudClient(u2m) as client:
        client.registry_token(REGISTRY)

    assert [(r.endpoint, r.grant_type, r.status) for r in menda_cloud.requests] == [
        ("registry", None, 401),
        ("token", "refresh_token", 200),
        ("registry", None, 200),
    ]


def test_invalid_token_twice_raises_after_one_retry(
    m2m: Identity, menda_cloud: MendaCloudEmulator
) -> None:
    from menda.testing._faults import Status

    menda_cloud.inject("registry", Status(401), times=2)
    with MendaCloudClient(m2m) as client, pytest.raises(MendaCloudAPIError) as caught:
        client.registry_token(REGISTRY)

    assert caught.value.status_code == 401
    assert caught.value.error == "invalid_token"
    assert menda_cloud.count("registry") == 2
    assert menda_cloud.count("token") == 2


def test_u2m_invalid_token_with_dead_refresh_token_raises_no_cached_login(
    u2m: Identity, menda_cloud: MendaCloudEmulator, menda_home: MendaHome
) -> None:
    login = menda_cloud.add_user("alice")
    menda_home.write_cached_login("default", host=menda_cloud.url, **login.cache_fields())
    menda_cloud.revoke_access_token(login.access_token)
    menda_cloud.revoke_refresh_token(login.refresh_token)

    with MendaCloudClient(u2m) as client, pytest.raises(NoCachedLoginError):
        client.registry_token(REGISTRY)
    assert menda_cloud.count("registry") == 1


def test_registry_credential_repr_masks_the_token() -> None:
    credential = RegistryCredential(
        token="caat_supersecret", expires_at=datetime.now(timezone.utc), from_cache=True
    )
    assert "caat_supersecret" not in repr(credential)
    assert "from_cache=True" in repr(credential)


def _parts(registry: RegistryRequest) -> tuple[str, str, str]:
    return (registry.domain, registry.domain_owner, registry.region)
