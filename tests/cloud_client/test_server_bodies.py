"""Whatever menda cloud (or something in its place) answers: a token or MendaCloudAPIError."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from menda.cloud_client import MendaCloudClient, RegistryRequest
from menda.core_auth import Identity, TokenCache
from menda.error import MendaCloudAPIError
from menda.testing._faults import Malformed, NonJSON, Status
from menda.testing.emulator import MendaCloudEmulator

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
_near_registry = st.fixed_dictionaries(
    {}, optional={"token": _field_values, "expires_at": _field_values, "error": _field_values}
)

_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _fresh_client(m2m: Identity, cache: TokenCache) -> MendaCloudClient:
    cache.delete(m2m.cache_key)
    return MendaCloudClient(m2m, cache=cache, max_attempts=1, backoff=0.0)


def _outcome(call: Any) -> None:
    try:
        call()
    except MendaCloudAPIError as exc:
        assert str(exc)
        assert exc.status_code is None or 100 <= exc.status_code <= 599


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
        _outcome(lambda: client.registry_token(REGISTRY))
    # Keep the next example cold for the registry token, warm for the access token.
    for path in cache.directory.glob("registry-*.token"):
        path.unlink()


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
