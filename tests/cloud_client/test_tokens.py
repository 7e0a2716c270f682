"""Access, user and registry tokens from the real emulator and the real token cache."""

from __future__ import annotations

import base64
import configparser
import io
import json
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from menda.cloud_client import (
    MendaCloudClient,
    RegistryCredential,
    RegistryRequest,
    WhoAmI,
    __version__,
)
from menda.core_auth import Identity, Login, TokenCache, format_time, resolve_identity
from menda.error import MendaCloudAPIError, NoCachedLoginError
from menda.testing import (
    CLI_TOKEN_KEYS,
    FakeClock,
    Malformed,
    MendaCloudEmulator,
    MendaHome,
    Status,
    UserLogin,
    cache_file_name,
    format_rfc3339,
    write_cache_entry,
    write_legacy_cache_entry,
)

REGISTRY = RegistryRequest(
    domain="menda-private",
    domain_owner="058264169513",
    region="eu-west-1",
    repository="menda-plugins",
    format="pypi",
)
OTHER_REGISTRY = RegistryRequest(domain="other", domain_owner="111122223333", region="us-east-1")
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")


def _parts(registry: RegistryRequest) -> tuple[str, str, str]:
    return (registry.domain, registry.domain_owner, registry.region)


def _entry_path(cache: TokenCache, identity: Identity, registry: RegistryRequest) -> Any:
    return cache.path_for(identity.registry_key(*_parts(registry)))


def _jwe(header: dict[str, Any]) -> str:
    """A token shaped like a CodeArtifact one: five base64url parts, the first JSON."""

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")

    first = part(json.dumps(header, separators=(",", ":")).encode())
    return ".".join([first, part(b"k" * 16), part(b"iv" * 6), part(b"c" * 40), part(b"t" * 16)])


def _calls(cloud: MendaCloudEmulator) -> list[tuple[str, str | None, int | None]]:
    return [(r.endpoint, r.grant_type, r.status) for r in cloud.requests]


# -- M2M: the wire shape -------------------------------------------------------------------


def test_client_credentials_go_in_the_query_string_without_body_or_basic_auth(
    m2m: Identity, menda_cloud: MendaCloudEmulator
) -> None:
    with MendaCloudClient(m2m) as client:
        client.access_token()

    [request] = menda_cloud.requests
    assert (request.method, request.path, request.status) == (
        "POST",
        "/api/v1/auth/oauth2/token",
        200,
    )
    # client_secret was there too: the emulator never records a secret parameter.
    assert request.params == {"grant_type": "client_credentials", "client_id": m2m.client_id}
    assert request.grant_type == "client_credentials"
    assert request.identity == m2m.client_id
    assert request.has_body is False
    assert request.body is None
    assert request.token_header is None  # no Authorization: Basic


def test_registry_exchange_sends_bearer_in_authorization_token_and_no_body(
    m2m: Identity, menda_cloud: MendaCloudEmulator
) -> None:
    with MendaCloudClient(m2m) as client:
        client.registry_token(REGISTRY)

    [request] = [r for r in menda_cloud.requests if r.endpoint == "registry"]
    assert (request.method, request.path, request.status) == (
        "POST",
        "/api/v1/auth/registry/token",
        200,
    )
    assert request.token_header == "authorizationToken"
    assert request.token_scheme == "Bearer"
    assert request.token_kind == "access_token"
    assert request.identity == m2m.client_id
    assert request.has_body is False
    assert (request.content_type or "").startswith("application/json")
    assert request.params is None


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
    assert _calls(menda_cloud) == [
        ("token", "client_credentials", 200),
        ("registry", None, 200),
    ]


def test_each_registry_asked_for_gets_its_own_entry(
    m2m: Identity, menda_cloud: MendaCloudEmulator, cache: TokenCache
) -> None:
    with MendaCloudClient(m2m, cache=cache) as client:
        client.registry_token(REGISTRY)
        client.registry_token(OTHER_REGISTRY)
        again = client.registry_token(OTHER_REGISTRY)

    assert again.from_cache is True
    assert menda_cloud.count("registry") == 2
    assert _entry_path(cache, m2m, REGISTRY).exists()
    assert _entry_path(cache, m2m, OTHER_REGISTRY).exists()


def test_warm_access_token_makes_only_a_registry_request(
    m2m: Identity, menda_cloud: MendaCloudEmulator
) -> None:
    with MendaCloudClient(m2m) as client:
        client.access_token()
    menda_cloud.clear_log()

    with MendaCloudClient(m2m) as client:
        credential = client.registry_token(REGISTRY)

    assert credential.from_cache is False
    assert _calls(menda_cloud) == [("registry", None, 200)]


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


@posix_only
def test_access_token_entry_has_the_documented_fields_and_mode(
    m2m: Identity, cache: TokenCache, clock: FakeClock
) -> None:
    with MendaCloudClient(m2m, cache=cache) as client:
        token = client.access_token()

    path = cache.path_for(m2m.cache_key)
    assert path.name == cache_file_name(f"m2m-env:{m2m.client_id}")
    assert json.loads(path.read_text(encoding="utf-8")) == {
        "access_token": token,
        "token_type": "Bearer",
        "expires_at": format_time(clock.now() + timedelta(seconds=3600)),
        "host": m2m.host,
        "client_id": m2m.client_id,
    }
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.entries_dir.stat().st_mode) == 0o700


def test_registry_token_is_stored_in_the_cache_entry_format(
    m2m: Identity, menda_cloud: MendaCloudEmulator, cache: TokenCache
) -> None:
    with MendaCloudClient(m2m, cache=cache) as client:
        credential = client.registry_token(REGISTRY)

    path = _entry_path(cache, m2m, REGISTRY)
    assert path.name.startswith("registry-")
    assert len(path.stem) == len("registry-") + 32
    entry = json.loads(path.read_text(encoding="utf-8"))
    assert entry == {
        "token": credential.token,
        "expires_at": format_time(credential.expires_at),  # type: ignore[arg-type]
        "host": m2m.host,
        "identity": m2m.cache_key,
        "domain": REGISTRY.domain,
        "domain_owner": REGISTRY.domain_owner,
        "region": REGISTRY.region,
    }


def test_cached_access_token_for_another_host_is_not_used(
    m2m: Identity, menda_cloud: MendaCloudEmulator, menda_home: MendaHome
) -> None:
    expires = datetime.now(timezone.utc) + timedelta(hours=1)
    menda_home.write_cache_entry(
        m2m.cache_key,
        {
            "access_token": "mat_for_elsewhere",
            "token_type": "Bearer",
            "expires_at": format_time(expires),
            "host": "https://elsewhere.example",
            "client_id": m2m.client_id,
        },
    )
    with MendaCloudClient(m2m) as client:
        token = client.access_token()

    assert token != "mat_for_elsewhere"
    assert menda_cloud.count("token") == 1


def test_cached_access_token_of_another_client_id_is_not_used(
    m2m: Identity, menda_cloud: MendaCloudEmulator, menda_home: MendaHome
) -> None:
    expires = datetime.now(timezone.utc) + timedelta(hours=1)
    menda_home.write_cache_entry(
        m2m.cache_key,
        {
            "access_token": "mat_of_another_client",
            "expires_at": format_time(expires),
            "host": m2m.host,
            "client_id": "someone-else",
        },
    )
    with MendaCloudClient(m2m) as client:
        assert client.access_token() != "mat_of_another_client"
    assert menda_cloud.count("token") == 1


def test_a_valid_cached_access_token_entry_is_used_without_a_request(
    m2m: Identity, menda_cloud: MendaCloudEmulator, menda_home: MendaHome
) -> None:
    token, expires = menda_cloud.issue_access_token(m2m.client_id or "")
    write_cache_entry(
        menda_home.cache_dir,
        m2m.cache_key,
        {
            "access_token": token,
            "expires_at": format_time(expires),
            "host": m2m.host + "/",  # compared after normalisation
            "client_id": m2m.client_id,
        },
    )
    with MendaCloudClient(m2m) as client:
        assert client.access_token() == token
        client.registry_token(REGISTRY)

    assert _calls(menda_cloud) == [("registry", None, 200)]


def test_version_0_1_cache_files_are_never_read(
    m2m: Identity, menda_cloud: MendaCloudEmulator, menda_home: MendaHome
) -> None:
    token, expires = menda_cloud.issue_access_token(m2m.client_id or "")
    write_legacy_cache_entry(
        menda_home.cache_dir,
        m2m.client_id or "",
        {
            "access_token": token,
            "expires_at": format_time(expires),
            "host": m2m.host,
            "client_id": m2m.client_id,
            "auth_type": "m2m",
        },
    )
    with MendaCloudClient(m2m) as client:
        assert client.access_token() != token
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
    with MendaCloudClient(m2m, user_agent_extra="menda-keyring/0.2.0") as client:
        client.access_token()

    agent = menda_cloud.requests[0].user_agent or ""
    assert agent.startswith(f"menda-cloud-client/{__version__} menda-keyring/0.2.0 ")
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
            client.whoami()

        assert [r.path for r in cloud.requests] == [
            "/gateway/menda/api/v1/auth/oauth2/token",
            "/gateway/menda/api/v1/auth/registry/token",
            "/gateway/menda/api/v1/auth/whoami",
        ]
        assert all(r.status == 200 for r in cloud.requests)


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
def test_query_string_credentials_survive_special_characters(
    menda_cloud: MendaCloudEmulator, menda_home: MendaHome, client_id: str, client_secret: str
) -> None:
    menda_cloud.add_m2m_client(client_id, client_secret)
    identity = Identity(
        host=menda_cloud.url,
        auth_type="m2m",
        cache_key=f"m2m-env:{client_id}",
        source="env",
        client_id=client_id,
        client_secret=client_secret,
    )
    with MendaCloudClient(identity) as client:
        client.access_token()

    [request] = menda_cloud.requests
    assert request.status == 200
    assert request.identity == client_id
    assert request.params == {"grant_type": "client_credentials", "client_id": client_id}


def test_client_credentials_method_returns_a_new_token_and_caches_nothing(
    m2m: Identity, menda_cloud: MendaCloudEmulator, cache: TokenCache, clock: FakeClock
) -> None:
    with MendaCloudClient(m2m, cache=cache) as client:
        first = client.client_credentials()
        second = client.client_credentials()

    assert first.access_token != second.access_token
    assert first.expires_at == clock.now() + timedelta(seconds=3600)
    assert (first.host, first.client_id, first.token_type) == (m2m.host, m2m.client_id, "Bearer")
    assert "'***'" in repr(first)
    assert first.access_token not in repr(first)
    assert menda_cloud.count("token", grant_type="client_credentials") == 2
    assert not cache.path_for(m2m.cache_key).exists()


def test_exchange_method_exchanges_a_given_token_and_caches_nothing(
    m2m: Identity, menda_cloud: MendaCloudEmulator, cache: TokenCache
) -> None:
    with MendaCloudClient(m2m, cache=cache) as client:
        bearer = client.access_token()
        credential = client.exchange(bearer)

    assert credential.from_cache is False
    assert menda_cloud.validate_registry_token(
        credential.token, domain="menda-private", owner="058264169513", region="eu-west-1"
    )
    [minted] = menda_cloud.minted_registry_tokens
    assert credential.expires_at == minted.expires_at
    assert list(cache.entries_dir.glob("registry-*.json")) == []


def test_exchange_of_a_refused_token_raises_without_renewal(
    m2m: Identity, menda_cloud: MendaCloudEmulator
) -> None:
    with MendaCloudClient(m2m) as client, pytest.raises(MendaCloudAPIError) as caught:
        client.exchange("mat_not_one_the_service_issued")

    assert caught.value.status_code == 401
    assert "mat_not_one_the_service_issued" not in str(caught.value)
    assert _calls(menda_cloud) == [("registry", None, 401)]


def test_whoami_for_a_machine_identity_sends_the_raw_access_token(
    m2m: Identity, menda_cloud: MendaCloudEmulator
) -> None:
    with MendaCloudClient(m2m) as client:
        me = client.whoami()

    assert me == WhoAmI(
        tenant_id=menda_cloud.tenant_id,
        username=m2m.client_id,
        email=None,
        user_role="member",
        identity_type="service_principal",
    )
    [request] = [r for r in menda_cloud.requests if r.endpoint == "whoami"]
    assert (request.method, request.status) == ("GET", 200)
    assert request.token_header == "authorizationToken"
    assert request.token_scheme is None  # the raw token, no "Bearer"
    assert request.token_kind == "access_token"


def test_whoami_for_a_user_presents_the_id_token(
    u2m: Identity, alice: UserLogin, menda_cloud: MendaCloudEmulator
) -> None:
    with MendaCloudClient(u2m) as client:
        me = client.whoami()

    assert me.identity_type == "user"
    assert me.username == "alice"
    assert me.email == "alice@example.com"
    assert me.tenant_id == menda_cloud.tenant_id
    [request] = menda_cloud.requests
    assert (request.endpoint, request.token_kind, request.token_scheme) == (
        "whoami",
        "id_token",
        None,
    )


def test_whoami_401_is_raised_without_renewal(
    m2m: Identity, menda_cloud: MendaCloudEmulator
) -> None:
    menda_cloud.inject("whoami", Status(401))
    with MendaCloudClient(m2m) as client, pytest.raises(MendaCloudAPIError) as caught:
        client.whoami()

    assert caught.value.status_code == 401
    assert _calls(menda_cloud) == [("token", "client_credentials", 200), ("whoami", None, 401)]


def test_discover_asks_for_the_host_name_and_returns_the_app_client_id(
    u2m: Identity, menda_cloud: MendaCloudEmulator
) -> None:
    menda_cloud.app_client_id = "tenant-login-app"
    with MendaCloudClient(u2m) as client:
        assert client.discover() == "tenant-login-app"

    [request] = menda_cloud.requests
    assert (request.endpoint, request.method, request.status) == ("discovery", "GET", 200)
    assert request.params == {"hostname": "127.0.0.1"}
    assert request.has_body is False
    assert request.token_header is None


# -- registry token lifetimes -------------------------------------------------------------

_OPAQUE = "caat_opaque-token-without-a-header"


_LIFETIMES: dict[str, tuple[Callable[[datetime], dict[str, Any]], timedelta]] = {
    "expires_at": (
        lambda now: {"token": _OPAQUE, "expires_at": format_rfc3339(now + timedelta(hours=2))},
        timedelta(hours=2),
    ),
    "expiration": (
        lambda now: {"token": _OPAQUE, "expiration": format_rfc3339(now + timedelta(hours=3))},
        timedelta(hours=3),
    ),
    "expires_in": (lambda now: {"token": _OPAQUE, "expires_in": 5400}, timedelta(minutes=90)),
    "jwe_header_exp": (
        lambda now: {
            "token": _jwe(
                {
                    "ver": 1,
                    "isu": int(now.timestamp()),
                    "enc": "A128GCM",
                    "exp": int(now.timestamp()) + 4 * 3600,
                }
            )
        },
        timedelta(hours=4),
    ),
    "answer_beats_header": (
        lambda now: {
            "token": _jwe({"ver": 1, "exp": int(now.timestamp()) + 4 * 3600}),
            "expires_in": 3600,
        },
        timedelta(hours=1),
    ),
    "unknown_fields_ignored": (
        lambda now: {"token": _OPAQUE, "expires_in": 3600, "domain": 7, "extra": [1, 2]},
        timedelta(hours=1),
    ),
}


@pytest.mark.parametrize("case", sorted(_LIFETIMES))
def test_registry_token_lifetime_comes_from_the_answer_else_the_tokens_header(
    m2m: Identity, menda_cloud: MendaCloudEmulator, cache: TokenCache, clock: FakeClock, case: str
) -> None:
    body, lifetime = _LIFETIMES[case]
    menda_cloud.inject("registry", Malformed(body(clock.now())))
    with MendaCloudClient(m2m, cache=cache) as client:
        credential = client.registry_token(REGISTRY)
        again = client.registry_token(REGISTRY)

    assert credential.expires_at == clock.now() + lifetime
    assert credential.from_cache is False
    assert (again.from_cache, again.token, again.expires_at) == (
        True,
        credential.token,
        credential.expires_at,
    )
    assert menda_cloud.count("registry") == 1


def test_the_emulators_codeartifact_token_lifetime_is_read_from_its_header(
    m2m: Identity, menda_cloud: MendaCloudEmulator
) -> None:
    # The emulator answers {"token": ...} only, as the real service does.
    menda_cloud.registry_token_lifetime = 5 * 3600
    with MendaCloudClient(m2m) as client:
        credential = client.registry_token(REGISTRY)

    [minted] = menda_cloud.minted_registry_tokens
    assert credential.expires_at == minted.expires_at


_UNKNOWN_LIFETIMES: dict[str, Callable[[datetime], dict[str, Any]]] = {
    "opaque_token": lambda now: {"token": _OPAQUE},
    "header_without_exp": lambda now: {"token": _jwe({"ver": 1, "enc": "A128GCM"})},
    "header_not_json": lambda now: {"token": "bm90LWpzb24.a.b.c.d"},
    "header_exp_not_a_number": lambda now: {"token": _jwe({"exp": "tomorrow"})},
    "nulls": lambda now: {"token": _OPAQUE, "expires_at": None, "expires_in": None},
    "longer_than_codeartifact_grants": lambda now: {"token": _OPAQUE, "expires_in": 86400},
    "header_exp_days_ahead": lambda now: {"token": _jwe({"exp": int(now.timestamp()) + 3 * 86400})},
}


@pytest.mark.parametrize("case", sorted(_UNKNOWN_LIFETIMES))
def test_registry_token_without_a_known_lifetime_is_returned_but_never_cached(
    m2m: Identity, menda_cloud: MendaCloudEmulator, cache: TokenCache, clock: FakeClock, case: str
) -> None:
    menda_cloud.inject("registry", Malformed(_UNKNOWN_LIFETIMES[case](clock.now())))
    with MendaCloudClient(m2m, cache=cache) as client:
        credential = client.registry_token(REGISTRY)
        again = client.registry_token(REGISTRY)

    assert credential.expires_at is None
    assert credential.from_cache is False
    assert again.from_cache is False  # the emulator's own token, asked for again
    assert menda_cloud.count("registry") == 2
    # The second (the emulator's, with a lifetime in its header) is cached; the first never was.
    entry = json.loads(_entry_path(cache, m2m, REGISTRY).read_text(encoding="utf-8"))
    assert entry["token"] == again.token != credential.token


def test_registry_token_already_expired_is_returned_but_not_cached(
    m2m: Identity, menda_cloud: MendaCloudEmulator, cache: TokenCache
) -> None:
    menda_cloud.registry_token_lifetime = -60
    with MendaCloudClient(m2m, cache=cache) as client:
        credential = client.registry_token(REGISTRY)
        again = client.registry_token(REGISTRY)

    assert credential.expires_at is not None
    assert credential.expires_at < datetime.now(timezone.utc)
    assert credential.from_cache is False
    assert again.from_cache is False
    assert menda_cloud.count("registry") == 2
    assert not _entry_path(cache, m2m, REGISTRY).exists()


def test_registry_token_close_to_expiry_is_not_served_from_cache(
    m2m: Identity, menda_cloud: MendaCloudEmulator, clock: FakeClock
) -> None:
    with MendaCloudClient(m2m) as client:
        first = client.registry_token(REGISTRY)
        clock.advance(hours=11, minutes=46)  # 14 minutes left: less than the 15-minute margin
        second = client.registry_token(REGISTRY)

    assert second.from_cache is False
    assert second.token != first.token
    assert menda_cloud.count("registry") == 2


def test_registry_credential_repr_masks_the_token() -> None:
    credential = RegistryCredential(
        token="caat_supersecret", expires_at=datetime.now(timezone.utc), from_cache=True
    )
    assert "caat_supersecret" not in repr(credential)
    assert "from_cache=True" in repr(credential)
    unknown = RegistryCredential(token="caat_supersecret", expires_at=None, from_cache=False)
    assert "expires_at=None" in repr(unknown)


# -- U2M: the login in the Menda CLI's token file --------------------------------------------


def test_u2m_presents_the_id_token_of_the_clis_login_without_a_token_request(
    u2m: Identity, alice: UserLogin, menda_cloud: MendaCloudEmulator
) -> None:
    with MendaCloudClient(u2m) as client:
        assert client.access_token() == alice.id_token
        client.registry_token(REGISTRY)

    [request] = menda_cloud.requests
    assert (request.endpoint, request.status, request.identity) == ("registry", 200, "alice")
    assert (request.token_header, request.token_scheme, request.token_kind) == (
        "authorizationToken",
        "Bearer",
        "id_token",
    )
    assert request.has_body is False


def test_u2m_presents_the_access_token_when_the_id_token_is_empty(
    u2m: Identity, alice: UserLogin, menda_cloud: MendaCloudEmulator, menda_home: MendaHome
) -> None:
    menda_home.write_cached_login("default", alice, now=menda_cloud.now(), id_token="")
    with MendaCloudClient(u2m) as client:
        assert client.access_token() == alice.access_token
        client.registry_token(REGISTRY)

    [request] = menda_cloud.requests
    assert (request.endpoint, request.status, request.token_kind) == (
        "registry",
        200,
        "access_token",
    )


def test_u2m_uses_the_section_of_its_own_profile_only(
    menda_home: MendaHome, menda_cloud: MendaCloudEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    bob = menda_cloud.add_user("bob")
    alice = menda_home.add_u2m_profile(menda_cloud, profile="work", user="alice")
    menda_home.write_cached_login("default", bob, now=menda_cloud.now())
    monkeypatch.setenv("MENDA_PROFILE_ID", "work")

    with MendaCloudClient(resolve_identity()) as client:
        assert client.access_token() == alice.id_token
    assert menda_cloud.requests == []


def _cli_file_text(sections: dict[str, dict[str, str]]) -> str:
    """What the Menda CLI's ``parser.write`` makes of these sections."""
    parser = configparser.ConfigParser(interpolation=None)
    for name, values in sections.items():
        parser[name] = values
    buffer = io.StringIO()
    parser.write(buffer)
    return buffer.getvalue()


def test_u2m_expired_login_is_refreshed_and_written_back_in_the_clis_format(
    u2m: Identity, menda_cloud: MendaCloudEmulator, menda_home: MendaHome
) -> None:
    menda_cloud.app_client_id = "tenant-login-app"
    login = menda_cloud.add_user("alice")
    menda_home.write_cached_login(
        "default",
        id_token=login.id_token,
        access_token=login.access_token,
        refresh_token=login.refresh_token,
        expires_in=3600,
        cached_at=time.time() - 7200,
    )
    other = {
        "id_token": "",
        "access_token": "other-access-token",
        "refresh_token": "",
        "expires_in": "3600",
        "token_type": "Bearer",
        "cached_at": "1764540000.123456",
    }
    menda_home.write_cached_login("other", **other)

    with MendaCloudClient(u2m) as client:
        token = client.access_token()
        client.registry_token(REGISTRY)

    discovery, refresh, registry = menda_cloud.requests
    assert (discovery.endpoint, discovery.status) == ("discovery", 200)
    assert discovery.params == {"hostname": "127.0.0.1"}
    assert (refresh.endpoint, refresh.method, refresh.status) == ("token", "POST", 200)
    assert refresh.params == {"grant_type": "refresh_token", "client_id": "tenant-login-app"}
    assert (refresh.has_body, refresh.token_header) == (False, None)
    assert (registry.endpoint, registry.status, registry.token_kind) == (
        "registry",
        200,
        "id_token",
    )

    sections = menda_home.read_cli_tokens()
    assert list(sections) == ["default", "other"]
    assert sections["other"] == other
    written = sections["default"]
    assert list(written) == list(CLI_TOKEN_KEYS)
    assert written["id_token"] == token
    assert token not in (login.id_token, "")
    assert written["access_token"] not in (login.access_token, "")
    assert written["refresh_token"] not in (login.refresh_token, "")  # rotated
    assert written["expires_in"] == "3600"
    assert written["token_type"] == "Bearer"
    assert written["cached_at"] == str(float(written["cached_at"]))
    assert abs(float(written["cached_at"]) - time.time()) < 60
    # Byte for byte what the CLI itself would have written for these sections.
    assert menda_home.token_file.read_text(encoding="utf-8") == _cli_file_text(sections)
    if sys.platform != "win32":
        assert stat.S_IMODE(menda_home.token_file.stat().st_mode) == 0o600

    # The rotated refresh token written back is the one that works next time.
    menda_home.write_cached_login("default", **{**written, "cached_at": time.time() - 7200})
    with MendaCloudClient(u2m) as client:
        assert client.access_token() not in (token, "")
    assert menda_cloud.count("token", grant_type="refresh_token", status=200) == 2


def test_u2m_refresh_without_a_new_refresh_token_keeps_the_old_one(
    u2m: Identity,
    menda_cloud: MendaCloudEmulator,
    menda_home: MendaHome,
    expired_alice: UserLogin,
) -> None:
    menda_cloud.rotate_refresh_tokens = False
    with MendaCloudClient(u2m) as client:
        client.access_token()

    written = menda_home.read_cli_tokens()["default"]
    assert written["refresh_token"] == expired_alice.refresh_token
    assert written["id_token"] != expired_alice.id_token


def test_u2m_refresh_refused_raises_no_cached_login_saying_so(
    u2m: Identity,
    menda_cloud: MendaCloudEmulator,
    menda_home: MendaHome,
    expired_alice: UserLogin,
) -> None:
    menda_cloud.revoke_refresh_token(expired_alice.refresh_token)
    before = menda_home.token_file.read_bytes()

    with MendaCloudClient(u2m) as client, pytest.raises(NoCachedLoginError) as caught:
        client.registry_token(REGISTRY)

    message = str(caught.value)
    assert message.startswith(f"No valid cached token for profile 'default' (host {u2m.host})")
    assert "refused to refresh" in message
    assert "HTTP 401" in message
    assert message.endswith("Run 'menda auth login', or switch to M2M.")
    for token in (expired_alice.refresh_token, expired_alice.id_token, expired_alice.access_token):
        assert token not in message
    assert _calls(menda_cloud) == [("discovery", None, 200), ("token", "refresh_token", 401)]
    assert menda_home.token_file.read_bytes() == before


def test_u2m_without_a_login_raises_no_cached_login_without_a_request(
    u2m: Identity, menda_cloud: MendaCloudEmulator, menda_home: MendaHome
) -> None:
    with MendaCloudClient(u2m) as client, pytest.raises(NoCachedLoginError) as caught:
        client.access_token()

    message = str(caught.value)
    assert message.startswith("No valid cached token for profile 'default'")
    assert "no login in" in message
    assert str(menda_home.token_file) in message
    assert menda_cloud.requests == []


def test_u2m_ignores_a_login_cached_for_another_profile_and_0_1_files(
    u2m: Identity, menda_cloud: MendaCloudEmulator, menda_home: MendaHome
) -> None:
    login = menda_cloud.add_user("alice")
    menda_home.write_cached_login("someone-else", login, now=menda_cloud.now())
    legacy = {
        "access_token": login.access_token,
        "expires_at": format_time(login.expires_at),
        "host": u2m.host,
        "auth_type": "u2m",
    }
    write_legacy_cache_entry(menda_home.cache_dir, "default", legacy)
    write_legacy_cache_entry(menda_home.cache_dir, u2m.cache_key, legacy)

    with MendaCloudClient(u2m) as client, pytest.raises(NoCachedLoginError):
        client.access_token()
    assert menda_cloud.requests == []


def test_u2m_expired_login_without_refresh_token_raises_no_cached_login(
    u2m: Identity, menda_cloud: MendaCloudEmulator, menda_home: MendaHome
) -> None:
    login = menda_cloud.add_user("alice")
    menda_home.write_cached_login(
        "default",
        login,
        refresh_token="",
        expires_in=3600,
        cached_at=time.time() - 3541,  # 59 s left: inside the CLI's 60 s margin
    )

    with MendaCloudClient(u2m) as client, pytest.raises(NoCachedLoginError) as caught:
        client.access_token()
    assert "expired and holds no refresh token" in str(caught.value)
    assert menda_cloud.requests == []


def test_u2m_login_without_cached_at_counts_as_expired(
    u2m: Identity, menda_cloud: MendaCloudEmulator, menda_home: MendaHome
) -> None:
    login = menda_cloud.add_user("alice")
    menda_home.write_cached_login("default", login, cached_at="")

    with MendaCloudClient(u2m) as client:
        assert client.access_token() != login.id_token
    assert menda_cloud.count("token", grant_type="refresh_token", status=200) == 1


def test_refresh_method_returns_a_new_login_and_writes_nothing(
    u2m: Identity,
    menda_cloud: MendaCloudEmulator,
    menda_home: MendaHome,
    expired_alice: UserLogin,
) -> None:
    before = menda_home.token_file.read_bytes()
    old = Login(
        access_token=expired_alice.access_token,
        expires_in=3600,
        id_token=expired_alice.id_token,
        refresh_token=expired_alice.refresh_token,
        cached_at=time.time() - 7200,
    )
    with MendaCloudClient(u2m) as client:
        fresh = client.refresh(old)

    assert fresh.is_valid()
    assert fresh.expires_in == menda_cloud.access_token_lifetime
    assert fresh.bearer == fresh.id_token != expired_alice.id_token
    assert fresh.refresh_token not in ("", expired_alice.refresh_token)
    assert menda_home.token_file.read_bytes() == before
    assert [r.endpoint for r in menda_cloud.requests] == ["discovery", "token"]


# -- 401 from the registry endpoint: renew once, then retry ----------------------------------


def test_m2m_401_gets_new_client_credentials_once_and_retries(
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
    assert _calls(menda_cloud) == [
        ("registry", None, 401),
        ("token", "client_credentials", 200),
        ("registry", None, 200),
    ]


def test_u2m_401_refreshes_the_login_once_and_retries(
    u2m: Identity, alice: UserLogin, menda_cloud: MendaCloudEmulator, menda_home: MendaHome
) -> None:
    menda_cloud.revoke_access_token(alice.id_token)  # valid by the clock, refused by the service

    with MendaCloudClient(u2m) as client:
        credential = client.registry_token(REGISTRY)

    assert credential.from_cache is False
    assert _calls(menda_cloud) == [
        ("registry", None, 401),
        ("discovery", None, 200),
        ("token", "refresh_token", 200),
        ("registry", None, 200),
    ]
    assert menda_cloud.requests[-1].token_kind == "id_token"
    written = menda_home.read_cli_tokens()["default"]
    assert written["id_token"] != alice.id_token
    assert written["refresh_token"] != alice.refresh_token


def test_m2m_401_twice_raises_after_one_renewal(
    m2m: Identity, menda_cloud: MendaCloudEmulator
) -> None:
    menda_cloud.inject("registry", Status(401), times=2)
    with MendaCloudClient(m2m) as client, pytest.raises(MendaCloudAPIError) as caught:
        client.registry_token(REGISTRY)

    assert caught.value.status_code == 401
    assert "rejected a fresh token too" in str(caught.value)
    assert _calls(menda_cloud) == [
        ("token", "client_credentials", 200),
        ("registry", None, 401),
        ("token", "client_credentials", 200),
        ("registry", None, 401),
    ]


def test_u2m_401_twice_raises_after_one_refresh(
    u2m: Identity, alice: UserLogin, menda_cloud: MendaCloudEmulator
) -> None:
    menda_cloud.inject("registry", Status(401, body='{"message": "Unauthorized"}'), times=2)
    with MendaCloudClient(u2m) as client, pytest.raises(MendaCloudAPIError) as caught:
        client.registry_token(REGISTRY)

    assert caught.value.status_code == 401
    assert "HTTP 401: Unauthorized" in str(caught.value)
    assert _calls(menda_cloud) == [
        ("registry", None, 401),
        ("discovery", None, 200),
        ("token", "refresh_token", 200),
        ("registry", None, 401),
    ]


def test_u2m_401_with_a_refused_refresh_token_raises_no_cached_login(
    u2m: Identity, alice: UserLogin, menda_cloud: MendaCloudEmulator
) -> None:
    menda_cloud.revoke_access_token(alice.id_token)
    menda_cloud.revoke_refresh_token(alice.refresh_token)

    with MendaCloudClient(u2m) as client, pytest.raises(NoCachedLoginError) as caught:
        client.registry_token(REGISTRY)

    assert "refused to refresh" in str(caught.value)
    assert menda_cloud.count("registry") == 1


def test_u2m_401_with_a_login_without_refresh_token_raises_no_cached_login(
    u2m: Identity, alice: UserLogin, menda_cloud: MendaCloudEmulator, menda_home: MendaHome
) -> None:
    menda_home.write_cached_login("default", alice, now=menda_cloud.now(), refresh_token="")
    menda_cloud.revoke_access_token(alice.id_token)

    with MendaCloudClient(u2m) as client, pytest.raises(NoCachedLoginError):
        client.registry_token(REGISTRY)
    assert _calls(menda_cloud) == [("registry", None, 401)]
