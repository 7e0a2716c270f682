"""Property-based tests: parsers of untrusted files never fail with anything unexpected."""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from menda.core_auth import AccessToken, RegistryToken, TokenCache, load_profile, normalize_host
from menda.core_auth._cache import escape_key, format_time, parse_time
from menda.error.exceptions import InvalidConfigError, MendaConfigError

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
HOST = "https://api.example.menda.cloud"
NOW = datetime(2026, 11, 27, 6, 0, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as name:
        yield Path(name)


# ----------------------------------------------------------------------------- config files

INI_LINES = st.one_of(
    st.sampled_from(
        [
            "[default]",
            "[DEFAULT]",
            "[dev]",
            "[]",
            "[default",
            "host = api.example.menda.cloud",
            "host = http://example.com",
            "host = https://u:p@x",
            "host =",
            "auth_type = m2m",
            "auth_type = U2M",
            "auth_type = sso",
            "client_id = id",
            "client_secret = %(x)s#;",
            "  continuation",
            "# comment",
            "; comment",
            "key",
            "= value",
            ":",
            "",
        ]
    ),
    st.text(max_size=30),
)
INI_TEXT = st.lists(INI_LINES, max_size=12).map("\n".join)


def write_and_load(path: Path, data: bytes, profile: str | None) -> None:
    path.write_bytes(data)
    with contextlib.suppress(MendaConfigError):
        load_profile(profile, path=path, environ={})


@SETTINGS
@given(text=INI_TEXT, profile=st.sampled_from([None, "default", "dev", "DEFAULT"]))
def test_random_ini_text_raises_only_menda_config_errors(
    scratch: Path, text: str, profile: str | None
) -> None:
    write_and_load(scratch / "mendacfg", text.encode("utf-8", "surrogatepass"), profile)


@SETTINGS
@given(data=st.binary(max_size=300))
def test_random_bytes_as_config_raise_only_menda_config_errors(scratch: Path, data: bytes) -> None:
    write_and_load(scratch / "mendacfg-bytes", data, None)


@SETTINGS
@given(
    prefix=st.sampled_from([b"[default]\nhost = h.example\n", b"[default]\n", b""]),
    data=st.binary(max_size=100),
)
def test_random_bytes_after_a_valid_prefix_raise_only_menda_config_errors(
    scratch: Path, prefix: bytes, data: bytes
) -> None:
    write_and_load(scratch / "mendacfg-prefixed", prefix + data, None)


@SETTINGS
@given(value=st.text(max_size=40))
def test_normalize_host_raises_only_invalid_config_error(value: str) -> None:
    try:
        result = normalize_host(value, setting="MENDA_HOST")
    except InvalidConfigError:
        return
    assert result.startswith(("https://", "http://"))
    assert normalize_host(result, setting="MENDA_HOST") == result


# ----------------------------------------------------------------------------- cache files

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
FIELD_VALUES = st.one_of(
    JSON_VALUES,
    st.sampled_from(
        [HOST, "m2m", "u2m", "ci-bot", "2026-11-27T07:00:00Z", "2026-11-27T07:00:00+01:00"]
    ),
)
ENTRIES = st.fixed_dictionaries(
    {},
    optional={
        name: FIELD_VALUES
        for name in (
            "access_token",
            "token_type",
            "expires_at",
            "host",
            "auth_type",
            "client_id",
            "refresh_token",
            "token",
            "identity",
            "domain",
            "domain_owner",
            "region",
        )
    },
)


def check_loads(cache: TokenCache) -> None:
    entry = cache.read_entry("k")
    assert entry is None or isinstance(entry, dict)
    access = cache.load_access_token("k", host=HOST, client_id="ci-bot")
    if access is not None:
        assert isinstance(access, AccessToken)
        assert isinstance(access.access_token, str)
        assert access.expires_at.tzinfo is not None
        assert isinstance(access.is_valid(NOW), bool)
    registry = cache.load_registry_token("k", host=HOST, identity="ci-bot")
    if registry is not None:
        assert isinstance(registry, RegistryToken)
        assert isinstance(registry.token, str)
        assert isinstance(registry.is_valid(NOW), bool)


@SETTINGS
@given(data=st.binary(max_size=300))
def test_random_cache_bytes_are_a_miss_or_an_entry(scratch: Path, data: bytes) -> None:
    cache = TokenCache(scratch / "cache-bytes")
    cache.directory.mkdir(exist_ok=True)
    cache.path_for("k").write_bytes(data)
    check_loads(cache)


@SETTINGS
@given(value=JSON_VALUES | ENTRIES)
def test_random_json_in_cache_is_a_miss_or_an_entry(scratch: Path, value: Any) -> None:
    cache = TokenCache(scratch / "cache-json")
    cache.directory.mkdir(exist_ok=True)
    cache.path_for("k").write_text(json.dumps(value), encoding="utf-8")
    check_loads(cache)
    # Rewriting over any existing object keeps its other fields and never raises.
    token = AccessToken("at", NOW + timedelta(hours=1), HOST, "m2m", "ci-bot")
    assert cache.store_access_token("k", token)
    assert cache.load_access_token("k", host=HOST, client_id="ci-bot") == token
    if isinstance(value, dict):
        stored = cache.read_entry("k")
        assert stored is not None
        for name, field in value.items():
            if name not in {
                "access_token",
                "token_type",
                "expires_at",
                "host",
                "auth_type",
                "client_id",
                "refresh_token",
            }:
                # Compared as JSON text: NaN is not equal to itself.
                assert json.dumps(stored[name]) == json.dumps(field)


KEYS = st.text(max_size=30) | st.sampled_from(["..", ".", "../x", "a/b", "ci.prod", "%2E", ""])


@settings(max_examples=300, deadline=None)
@given(a=KEYS, b=KEYS)
def test_escaping_is_injective_and_never_makes_a_path(a: str, b: str) -> None:
    escaped_a, escaped_b = escape_key(a), escape_key(b)
    if a != b:
        assert escaped_a != escaped_b
    for escaped in (escaped_a, escaped_b):
        assert "/" not in escaped
        assert "\\" not in escaped
        assert "." not in escaped
        assert set(escaped) <= set(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-%"
        )
    cache = TokenCache(Path("/nonexistent/cache"))
    assert cache.path_for(a).parent == cache.directory
    assert cache.path_for(a).name not in (".", "..")


@settings(max_examples=200, deadline=None)
@given(value=st.text(max_size=40))
def test_parse_time_never_raises(value: str) -> None:
    parsed = parse_time(value)
    assert parsed is None or parsed.utcoffset() == timedelta(0)


@settings(max_examples=200, deadline=None)
@given(
    moment=st.datetimes(
        min_value=datetime(1970, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.just(timezone.utc),
    )
)
def test_format_then_parse_round_trips_to_the_second(moment: datetime) -> None:
    assert parse_time(format_time(moment)) == moment.replace(microsecond=0)
