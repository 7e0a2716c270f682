"""Whatever menda cloud (or something in its place) answers: a token or MendaCloudAPIError."""

from __future__ import annotations

import base64
import json
import time
from datetime import timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from menda.cloud_client import MendaCloudClient, RegistryRequest, WhoAmI
from menda.core_auth import Identity, TokenCache
from menda.error import MendaCloudAPIError, NoCachedLoginError
from menda.testing import (
    CLI_TOKEN_KEYS,
    Malformed,
    MendaCloudEmulator,
    MendaHome,
    NonJSON,
    Status,
    UserLogin,
    read_cli_token_file,
)

REGISTRY = RegistryRequest("menda-private", "058264169513", "eu-west-1")
STATUSES = st.sampled_from([200, 400, 401, 403, 404, 409, 429, 500, 502, 503])

_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=12,
)
_field_values = _scalars | st.lists(_scalars, max_size=2) | st.just("2026-11-27T18:00:00Z")
# Objects close to the real shapes find more than arbitrary JSON does.
_near_token = st.fixed_dictionaries(
    {},
    optional={
        "access_token": _field_values,
        "expires_in": _field_values,
        "token_type": _field_values,
        "refresh_token": _field_values,
        "error": _field_values,
        "error_description": _field_values,
    },
)
_lifetimes = (
    _field_values
    | st.integers(min_value=-(10**12), max_value=10**12)
    | st.datetimes(timezones=st.just(timezone.utc)).map(lambda d: d.isoformat())
)
_header = st.fixed_dictionaries(
    {}, optional={"ver": _scalars, "isu": _lifetimes, "enc": _scalars, "exp": _lifetimes}
)
_jwe_like = st.tuples(_header | _json, st.lists(st.text(max_size=8), max_size=5)).map(
    lambda parts: ".".join([_b64(json.dumps(parts[0]).encode()), *parts[1]])
)
_near_registry = st.fixed_dictionaries(
    {},
    optional={
        "token": _field_values | _jwe_like,
        "expires_at": _lifetimes,
        "expiration": _lifetimes,
        "expires_in": _lifetimes,
        "detail": _field_values,
        "message": _field_values,
        "error": _field_values,
    },
)
_near_refresh = st.fixed_dictionaries(
    {},
    optional={
        "id_token": _field_values,
        "access_token": _field_values,
        "refresh_token": _field_values,
        "expires_in": _field_values,
        "token_type": _field_values,
        "detail": _field_values,
    },
)
_near_whoami = st.fixed_dictionaries(
    {},
    optional={name: _field_values for name in WhoAmI._fields},
)

_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _fresh_client(m2m: Identity, cache: TokenCache) -> MendaCloudClient:
    cache.delete(m2m.cache_key)
    return MendaCloudClient(m2m, cache=cache, max_attempts=1, backoff=0.0)


def _outcome(call: Any) -> Any:
    try:
        return call()
    except MendaCloudAPIError as exc:
        assert str(exc)
        assert exc.status_code is None or 100 <= exc.status_code <= 599
        return None


@_SETTINGS
@given(status=STATUSES, body=_json | _near_token)
def test_any_json_from_the_token_endpoint_is_a_token_or_a_menda_cloud_api_error(
    m2m: Identity, menda_cloud: MendaCloudEmulator, cache: TokenCache, status: int, body: Any
) -> None:
    menda_cloud.clear_faults()
    menda_cloud.inject("token", Malformed(body, status=status))
    with _fresh_client(m2m, cache) as client:
        _outcome(client.access_token)


@_SETTINGS
@given(status=STATUSES, body=_json | _near_registry)
def test_any_json_from_the_registry_endpoint_is_a_token_or_a_menda_cloud_api_error(
    m2m: Identity, menda_cloud: MendaCloudEmulator, cache: TokenCache, status: int, body: Any
) -> None:
    menda_cloud.clear_faults()
    menda_cloud.inject("registry", Malformed(body, status=status))
    with MendaCloudClient(m2m, cache=cache, max_attempts=1, backoff=0.0) as client:
        credential = _outcome(lambda: client.registry_token(REGISTRY))
    if credential is not None:
        assert credential.token
        assert credential.expires_at is None or credential.expires_at.tzinfo is not None
    # Keep the next example cold for the registry token (and without the remembered
    # failure), warm for the access token.
    for pattern in ("registry-*.json", "failed-*.json"):
        for path in cache.entries_dir.glob(pattern):
            path.unlink()


@_SETTINGS
@given(status=STATUSES, body=_json | _near_refresh)
def test_any_answer_to_a_refresh_is_a_login_or_an_error_and_never_a_broken_file(
    u2m: Identity,
    alice: UserLogin,
    menda_cloud: MendaCloudEmulator,
    menda_home: MendaHome,
    cache: TokenCache,
    *,
    status: int,
    body: Any,
) -> None:
    login = menda_cloud.login(alice.name)
    menda_home.write_cached_login("default", login, expires_in=3600, cached_at=time.time() - 7200)
    menda_cloud.clear_faults()
    menda_cloud.inject("token", Malformed(body, status=status))
    with MendaCloudClient(u2m, cache=cache, max_attempts=1, backoff=0.0) as client:
        try:
            token = _outcome(client.access_token)
        except NoCachedLoginError as exc:
            assert status in (400, 401, 403)
            assert "refused to refresh" in str(exc)
            token = None

    # Whatever came back, the CLI's file still parses, with the CLI's six keys.
    written = read_cli_token_file(menda_home.token_file)["default"]
    assert list(written) == list(CLI_TOKEN_KEYS)
    if token is not None:
        assert token in (written["id_token"], written["access_token"])


@_SETTINGS
@given(status=STATUSES, body=_json | _near_whoami)
def test_any_answer_to_whoami_is_a_whoami_or_a_menda_cloud_api_error(
    m2m: Identity, menda_cloud: MendaCloudEmulator, cache: TokenCache, status: int, body: Any
) -> None:
    menda_cloud.clear_faults()
    menda_cloud.inject("whoami", Malformed(body, status=status))
    with MendaCloudClient(m2m, cache=cache, max_attempts=1, backoff=0.0) as client:
        me = _outcome(client.whoami)
    if me is not None:
        assert all(value is None or isinstance(value, str) for value in me)


@_SETTINGS
@given(
    status=STATUSES,
    body=st.text(st.characters(codec="utf-8"), max_size=200),
    content_type=st.sampled_from(
        ["text/html; charset=utf-8", "text/plain", "application/json", "application/octet-stream"]
    ),
)
def test_any_text_body_is_a_menda_cloud_api_error(
    m2m: Identity,
    menda_cloud: MendaCloudEmulator,
    cache: TokenCache,
    *,
    status: int,
    body: str,
    content_type: str,
) -> None:
    menda_cloud.clear_faults()
    menda_cloud.inject("token", NonJSON(status=status, body=body, content_type=content_type))
    with _fresh_client(m2m, cache) as client:
        _outcome(client.access_token)


@_SETTINGS
@given(
    status=st.sampled_from([429, 503]),
    retry_after=st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
    | st.integers(min_value=0, max_value=10**30).map(str),
)
def test_any_retry_after_value_is_handled(
    m2m: Identity,
    menda_cloud: MendaCloudEmulator,
    cache: TokenCache,
    status: int,
    retry_after: str,
) -> None:
    menda_cloud.clear_faults()
    menda_cloud.inject("token", Status(status, retry_after=retry_after))
    client = MendaCloudClient(m2m, cache=cache, max_attempts=2, backoff=0.0, deadline=0.5)
    cache.delete(m2m.cache_key)
    with client:
        _outcome(client.access_token)
