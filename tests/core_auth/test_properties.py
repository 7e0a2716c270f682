"""Property-based tests: parsers of untrusted files never fail with anything unexpected."""

from __future__ import annotations

import configparser
import contextlib
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from menda.core_auth import (
    AccessToken,
    CliTokenFile,
    Login,
    RegistryToken,
    TokenCache,
    format_time,
    load_profile,
    normalize_host,
    parse_time,
)
from menda.core_auth._entries import escape_key
from menda.error.exceptions import InvalidConfigError, MendaConfigError

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
HOST = "https://api.example.menda.cloud"
NOW = datetime(2026, 11, 27, 6, 0, 0, tzinfo=timezone.utc)


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


# ----------------------------------------------------------------------------- the CLI's .token

TOKEN_CHARS = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E, blacklist_characters="%"),
    min_size=1,
    max_size=40,
)
CLI_LINES = st.one_of(
    st.sampled_from(
        [
            "[default]",
            "[dev]",
            "[DEFAULT]",
            "[]",
            "[default",
            "id_token = eyJ.id",
            "id_token =",
            "access_token = eyJ.access",
            "access_token =",
            "refresh_token = rt",
            "expires_in = 3600",
            "expires_in = -1",
            "expires_in = 3600.5",
            "expires_in = " + "9" * 30,
            "token_type = Bearer",
            "token_type =",
            "cached_at = 1795759100.5",
            "cached_at =",
            "cached_at = nan",
            "cached_at = 1e400",
            "cached_at = -1e308",
            "extra = 1",
            "  continuation",
            "# comment",
            "key",
            "= value",
            "",
        ]
    ),
    st.text(max_size=30),
)
CLI_TEXT = st.lists(CLI_LINES, max_size=14).map("\n".join)
LOGINS = st.builds(
    Login,
    access_token=TOKEN_CHARS,
    expires_in=st.integers(min_value=0, max_value=10**9),
    token_type=st.sampled_from(["Bearer", "bearer", "DPoP"]),
    id_token=st.just("") | TOKEN_CHARS,
    refresh_token=st.just("") | TOKEN_CHARS,
    cached_at=st.none()
    | st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12),
)
# Profile names the CLI's file can hold: printable, no '%', no ']', not blank, not DEFAULT.
PROFILES = st.sampled_from(["default", "dev", "ci.prod", "[x", " padded"]) | st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Cf", "Zl", "Zp"), blacklist_characters="%]"),
    min_size=1,
    max_size=12,
).filter(lambda name: name.strip() != "" and name != "DEFAULT" and name.isprintable())


def check_login_file(token_file: CliTokenFile, profile: str) -> None:
    login = token_file.load(profile)
    if login is not None:
        assert isinstance(login, Login)
        assert login.access_token
        assert login.token_type
        assert login.expires_in >= 0
        assert isinstance(login.bearer, str)
        assert isinstance(login.is_valid(NOW), bool)
        assert isinstance(login.is_from_the_future(NOW), bool)
        assert login.expires_at is None or login.expires_at.tzinfo is not None
        assert "eyJ" not in repr(login)
    state = token_file.state()
    assert state.exists
    assert state.parses is (state.problem is None)


def check_store_keeps_or_refuses(token_file: CliTokenFile, data: bytes) -> None:
    """A file that parses keeps every other section; one that does not is left alone."""
    parses = token_file.state().parses
    before = _sections(token_file.path) if parses else None
    login = Login("fresh-token", 3600, cached_at=NOW.timestamp())
    stored = token_file.store("default", login)
    if not parses:
        assert stored is False
        assert token_file.path.read_bytes() == data
        return
    assert stored is True
    assert before is not None
    after = _sections(token_file.path)
    assert after.pop("default") == login.section()
    before.pop("default", None)
    assert after == before
    assert token_file.load("default") == login


def _sections(path: Path) -> dict[str, dict[str, str]]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(path.read_text("utf-8"))
    return {name: dict(parser.items(name, raw=True)) for name in parser.sections()}


@SETTINGS
@given(text=CLI_TEXT, profile=st.sampled_from(["default", "dev", "DEFAULT", ""]))
def test_random_cli_token_text_is_a_login_or_none(scratch: Path, text: str, profile: str) -> None:
    token_file = CliTokenFile(scratch / "cli-text" / ".token")
    token_file.path.parent.mkdir(exist_ok=True)
    data = text.encode("utf-8", "surrogatepass")
    token_file.path.write_bytes(data)
    check_login_file(token_file, profile)
    check_store_keeps_or_refuses(token_file, data)


@SETTINGS
@given(data=st.binary(max_size=300), prefix=st.sampled_from([b"", b"[default]\n"]))
def test_random_cli_token_bytes_are_a_login_or_none(
    scratch: Path, data: bytes, prefix: bytes
) -> None:
    token_file = CliTokenFile(scratch / "cli-bytes" / ".token")
    token_file.path.parent.mkdir(exist_ok=True)
    token_file.path.write_bytes(prefix + data)
    check_login_file(token_file, "default")
    check_store_keeps_or_refuses(token_file, prefix + data)


@SETTINGS
@given(logins=st.dictionaries(PROFILES, LOGINS, min_size=1, max_size=4))
def test_stored_logins_read_back_equal_by_us_and_by_configparser(
    scratch: Path, logins: dict[str, Login]
) -> None:
    directory = scratch / "cli-round-trip"
    token_file = CliTokenFile(directory / ".token")
    token_file.path.unlink(missing_ok=True)
    for profile, login in logins.items():
        assert token_file.store(profile, login)
    assert _sections(token_file.path) == {p: login.section() for p, login in logins.items()}
    for profile, login in logins.items():
        assert token_file.load(profile) == login
    assert token_file.state().profiles == tuple(logins)


@SETTINGS
@given(
    login=LOGINS,
    bad=st.sampled_from(["%", "\n", "\r", "%(x)s"]),
    where=st.sampled_from(["access_token", "id_token", "refresh_token", "token_type"]),
)
def test_values_the_cli_cannot_read_back_are_never_written(
    scratch: Path, login: Login, bad: str, where: str
) -> None:
    token_file = CliTokenFile(scratch / "cli-refuse" / ".token")
    token_file.path.unlink(missing_ok=True)
    assert token_file.store("keep", Login("kept", 60, cached_at=1.0))
    before = token_file.path.read_bytes()
    broken = login._replace(**{where: getattr(login, where) + bad + "x"})
    assert token_file.store("default", broken) is False
    assert token_file.path.read_bytes() == before


@SETTINGS
@given(
    name=PROFILES,
    bad=st.sampled_from(["%", "]", "\n", "\r", "\x00", "\x1b", "\u2028"]),
)
def test_profile_names_the_file_cannot_hold_are_never_written(
    scratch: Path, name: str, bad: str
) -> None:
    token_file = CliTokenFile(scratch / "cli-refuse-name" / ".token")
    token_file.path.unlink(missing_ok=True)
    assert token_file.store("keep", Login("kept", 60, cached_at=1.0))
    before = token_file.path.read_bytes()
    assert token_file.store(name + bad, Login("x", 60, cached_at=1.0)) is False
    assert token_file.path.read_bytes() == before


@SETTINGS
@given(
    cached_at=st.floats(allow_nan=False, allow_infinity=False, min_value=0, max_value=4e9),
    expires_in=st.integers(min_value=0, max_value=10**6),
    now=st.floats(min_value=0, max_value=4e9),
)
def test_validity_agrees_with_the_cli_rule(cached_at: float, expires_in: int, now: float) -> None:
    login = Login("a", expires_in, cached_at=cached_at)
    moment = datetime.fromtimestamp(now, tz=timezone.utc)
    elapsed = moment.timestamp() - cached_at
    cli_expired = elapsed >= expires_in - 60
    if elapsed >= -86400:
        assert login.is_valid(moment) is not cli_expired
    else:
        assert not login.is_valid(moment)  # cached a day ahead: a wrong clock


# ----------------------------------------------------------------------------- our entries

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
        [
            HOST,
            "ci-bot",
            "m2m-env:ci-bot",
            "Bearer",
            "menda-private",
            "058264169513",
            "eu-west-1",
            "2026-11-27T07:00:00Z",
            "2026-11-27T07:00:00+01:00",
        ]
    ),
)
ENTRY_FIELDS = (
    "access_token",
    "token_type",
    "expires_at",
    "host",
    "client_id",
    "token",
    "identity",
    "domain",
    "domain_owner",
    "region",
)
ENTRIES = st.fixed_dictionaries({}, optional=dict.fromkeys(ENTRY_FIELDS, FIELD_VALUES))
REGISTRY = ("menda-private", "058264169513", "eu-west-1")


def check_loads(cache: TokenCache) -> None:
    entry = cache.read_entry("k")
    assert entry is None or isinstance(entry, dict)
    access, why = cache.check_access_token("k", host=HOST, client_id="ci-bot")
    assert isinstance(why, str)
    assert (access is None) is (why != "ok")
    if access is not None:
        assert isinstance(access, AccessToken)
        assert entry is not None
        assert access.access_token == entry["access_token"]
        assert access.client_id == "ci-bot"
        assert access.expires_at.tzinfo is not None
        assert isinstance(access.is_valid(NOW), bool)
    registry, why = cache.check_registry_token(
        "k", host=HOST, identity="m2m-env:ci-bot", registry=REGISTRY
    )
    assert (registry is None) is (why != "ok")
    if registry is not None:
        assert isinstance(registry, RegistryToken)
        assert isinstance(registry.token, str)
        assert (registry.domain, registry.domain_owner, registry.region) == REGISTRY
        assert isinstance(registry.is_valid(NOW), bool)


@SETTINGS
@given(data=st.binary(max_size=300))
def test_random_entry_bytes_are_a_miss_or_an_entry(scratch: Path, data: bytes) -> None:
    cache = TokenCache(scratch / "cache-bytes")
    cache.entries_dir.mkdir(parents=True, exist_ok=True)
    cache.path_for("k").write_bytes(data)
    check_loads(cache)


@SETTINGS
@given(value=JSON_VALUES | ENTRIES)
def test_random_json_entry_is_a_miss_or_an_entry(scratch: Path, value: Any) -> None:
    cache = TokenCache(scratch / "cache-json")
    cache.entries_dir.mkdir(parents=True, exist_ok=True)
    cache.path_for("k").write_text(json.dumps(value), encoding="utf-8")
    check_loads(cache)
    # Storing over anything replaces it, and reads back.
    token = AccessToken("at", NOW + timedelta(hours=1), HOST, "ci-bot")
    assert cache.store_access_token("k", token)
    assert cache.load_access_token("k", host=HOST, client_id="ci-bot") == token


@SETTINGS
@given(
    token=TOKEN_CHARS,
    client_id=st.text(min_size=1, max_size=20),
    expires_at=st.datetimes(
        min_value=datetime(1970, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.just(timezone.utc),
    ),
)
def test_stored_access_tokens_read_back(
    scratch: Path, token: str, client_id: str, expires_at: datetime
) -> None:
    cache = TokenCache(scratch / "cache-round-trip")
    stored = AccessToken(token, expires_at, HOST, client_id)
    assert cache.store_access_token("m2m-env:" + client_id, stored)
    loaded = cache.load_access_token("m2m-env:" + client_id, host=HOST, client_id=client_id)
    assert loaded == stored._replace(expires_at=expires_at.replace(microsecond=0))


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
    assert cache.path_for(a).parent == cache.entries_dir
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
