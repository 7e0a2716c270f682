"""``TokenCache``: our own entries in ``<cache dir>/menda-keyring/`` beside the CLI's ``.token``."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from menda.core_auth import (
    ACCESS_TOKEN_MARGIN,
    REGISTRY_TOKEN_MARGIN,
    AccessToken,
    CliTokenFile,
    Login,
    RegistryToken,
    TokenCache,
    default_cache_dir,
    format_time,
    registry_cache_key,
    set_clock,
    utcnow,
)

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX file modes")
not_root = pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads and writes anyway"
)

HOST = "https://api.example.menda.cloud"
NOW = datetime(2026, 11, 27, 6, 0, 0, tzinfo=timezone.utc)
REGISTRY = ("menda-private", "058264169513", "eu-west-1")
IDENTITY = "m2m-env:ci-bot"
LOGIN = Login("a", 3600, cached_at=NOW.timestamp())


@pytest.fixture(autouse=True)
def frozen_now(clock: Any) -> None:
    clock.set(NOW)


@pytest.fixture
def cache(tmp_path: Path) -> TokenCache:
    return TokenCache(tmp_path / "cache")


def access_entry(**overrides: Any) -> dict[str, Any]:
    """An access entry as we write it; a None override removes the field."""
    entry: dict[str, Any] = {
        "access_token": "at-secret",
        "token_type": "Bearer",
        "expires_at": "2026-11-27T07:00:00Z",
        "host": HOST,
        "client_id": "ci-bot",
    }
    entry.update(overrides)
    return {k: v for k, v in entry.items() if v is not None}


def registry_entry(**overrides: Any) -> dict[str, Any]:
    """A registry entry as we write it; a None override removes the field."""
    entry: dict[str, Any] = {
        "token": "reg-secret",
        "expires_at": "2026-11-27T18:00:00Z",
        "host": HOST,
        "identity": IDENTITY,
        "domain": REGISTRY[0],
        "domain_owner": REGISTRY[1],
        "region": REGISTRY[2],
    }
    entry.update(overrides)
    return {k: v for k, v in entry.items() if v is not None}


def put(cache: TokenCache, key: str, content: bytes | str | dict[str, Any]) -> Path:
    """Write an entry file as another program would, bypassing our writer."""
    cache.entries_dir.mkdir(parents=True, exist_ok=True)
    path = cache.path_for(key)
    if isinstance(content, dict):
        content = json.dumps(content)
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def load_access(cache: TokenCache, key: str = "k", client_id: str = "ci-bot") -> AccessToken | None:
    return cache.load_access_token(key, host=HOST, client_id=client_id)


def load_registry(
    cache: TokenCache, key: str = "k", identity: str = IDENTITY
) -> RegistryToken | None:
    return cache.load_registry_token(key, host=HOST, identity=identity, registry=REGISTRY)


# ----------------------------------------------------------------------------- clock


def test_utcnow_is_aware_utc_and_follows_the_clock(clock: Any) -> None:
    assert utcnow() == NOW
    clock.advance(90)
    assert utcnow() == NOW + timedelta(seconds=90)
    assert utcnow().utcoffset() == timedelta(0)


def test_utcnow_real_source_is_aware() -> None:
    previous = set_clock(None)  # real time, whatever clock a fixture set
    try:
        assert utcnow().utcoffset() == timedelta(0)
        assert abs(utcnow() - datetime.now(timezone.utc)) < timedelta(minutes=1)
    finally:
        set_clock(previous)


def test_set_clock_moves_utcnow_and_returns_the_previous_source() -> None:
    moment = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    previous = set_clock(lambda: moment)
    try:
        assert utcnow() == moment
    finally:
        assert set_clock(previous)() == moment


# ----------------------------------------------------------------------------- layout


def test_default_cache_dir_is_under_home(isolated_home: Path) -> None:
    assert default_cache_dir({}) == isolated_home / ".menda" / "tokens" / "cache"
    assert TokenCache().directory == isolated_home / ".menda" / "tokens" / "cache"


def test_menda_token_cache_dir_overrides(
    tmp_path: Path, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert default_cache_dir({"MENDA_TOKEN_CACHE_DIR": str(tmp_path / "c")}) == tmp_path / "c"
    assert default_cache_dir({"MENDA_TOKEN_CACHE_DIR": "~/tc"}) == isolated_home / "tc"
    monkeypatch.setenv("MENDA_TOKEN_CACHE_DIR", str(tmp_path / "d"))
    assert TokenCache().directory == tmp_path / "d"
    assert TokenCache(environ={"MENDA_TOKEN_CACHE_DIR": ""}).directory.name == "cache"


def test_logins_are_the_cli_file_and_entries_live_in_menda_keyring(cache: TokenCache) -> None:
    assert isinstance(cache.logins, CliTokenFile)
    assert cache.logins.path == cache.directory / ".token"
    assert cache.entries_dir == cache.directory / "menda-keyring"
    assert cache.path_for("m2m-env:ci-bot") == cache.entries_dir / "m2m-env%3Aci-bot.json"


@pytest.mark.parametrize(
    ("key", "filename"),
    [
        ("m2m-env:ci-bot", "m2m-env%3Aci-bot.json"),
        ("m2m-profile:default", "m2m-profile%3Adefault.json"),
        ("u2m-profile:dev", "u2m-profile%3Adev.json"),
        (
            "registry-0123456789abcdef0123456789abcdef",
            "registry-0123456789abcdef0123456789abcdef.json",
        ),
        ("ci.prod", "ci%2Eprod.json"),
        ("A-Z_a-z0-9", "A-Z_a-z0-9.json"),
        ("../x", "%2E%2E%2Fx.json"),
        ("a/b\\c", "a%2Fb%5Cc.json"),
        ("100%", "100%25.json"),
        ("é", "%C3%A9.json"),
        ("a b", "a%20b.json"),
        ("..", "%2E%2E.json"),
        ("", ".json"),
    ],
)
def test_file_names_escape_every_unsafe_character(
    cache: TokenCache, key: str, filename: str
) -> None:
    path = cache.path_for(key)
    assert path.name == filename
    assert path.parent == cache.entries_dir


def test_path_traversal_key_stays_in_the_entries_directory(cache: TokenCache) -> None:
    assert cache.write_entry("../x", {"a": 1})
    assert sorted(p.name for p in cache.entries_dir.iterdir()) == ["%2E%2E%2Fx.json"]
    assert sorted(p.name for p in cache.directory.iterdir()) == ["menda-keyring"]
    assert cache.read_entry("../x") == {"a": 1}


def test_no_key_can_name_the_cli_token_file(cache: TokenCache) -> None:
    for key in ("", ".token", "../.token", "/.token"):
        assert cache.path_for(key).parent == cache.entries_dir
        assert cache.write_entry(key, {"x": 1})
    assert not cache.logins.path.exists()


def test_registry_cache_key_is_the_documented_hash() -> None:
    material = "\x00".join([IDENTITY, HOST, *REGISTRY])
    expected = "registry-" + hashlib.sha256(material.encode()).hexdigest()[:32]
    key = registry_cache_key(IDENTITY, HOST, *REGISTRY)
    assert key == expected
    assert len(key) == len("registry-") + 32
    assert registry_cache_key(IDENTITY, HOST, REGISTRY[0], REGISTRY[1], "us-east-1") != key
    assert registry_cache_key("m2m-profile:ci-bot", HOST, *REGISTRY) != key


def test_identity_kinds_with_one_name_never_share_an_entry(cache: TokenCache) -> None:
    keys = ["m2m-env:ci", "m2m-profile:ci", "u2m-profile:ci", "ci"]
    assert len({cache.path_for(k) for k in keys}) == len(keys)
    assert len({registry_cache_key(k, HOST, *REGISTRY) for k in keys}) == len(keys)
    token = AccessToken("env-token", NOW + timedelta(hours=1), HOST, "ci")
    assert cache.store_access_token("m2m-env:ci", token)
    assert cache.load_access_token("m2m-env:ci", host=HOST, client_id="ci") == token
    assert cache.load_access_token("m2m-profile:ci", host=HOST, client_id="ci") is None
    assert cache.read_entry("u2m-profile:ci") is None
    assert cache.read_entry("ci") is None


def test_old_0_1_token_json_files_are_never_read(cache: TokenCache, clock: Any) -> None:
    # 0.1 wrote <escaped key>.token JSON files straight into the cache directory.
    old = {
        "access_token": "old-0.1-token",
        "token_type": "Bearer",
        "expires_at": "2026-11-27T07:00:00Z",
        "host": HOST,
        "auth_type": "u2m",
        "client_id": "ci-bot",
        "refresh_token": "old-refresh",
    }
    cache.directory.mkdir(parents=True)
    for name in ("default.token", "ci-bot.token", "m2m-profile%3Adefault.token", ".token"):
        (cache.directory / name).write_text(json.dumps(old), encoding="utf-8")
    before = (cache.directory / ".token").read_bytes()
    assert cache.logins.load("default") is None
    assert cache.logins.load("ci-bot") is None
    assert cache.load_access_token("ci-bot", host=HOST, client_id="ci-bot") is None
    assert cache.load_access_token("m2m-env:ci-bot", host=HOST, client_id="ci-bot") is None
    assert cache.load_access_token("m2m-profile:default", host=HOST, client_id="ci-bot") is None
    # A JSON ".token" (0.1's empty key) is not the CLI's INI: never rewritten either.
    assert cache.logins.store("default", LOGIN) is False
    assert (cache.directory / ".token").read_bytes() == before


# ----------------------------------------------------------------------------- writes


@posix_only
def test_directories_are_created_0700_and_files_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        cache = TokenCache(tmp_path / "a" / "b" / "cache")
        assert cache.write_entry("k", {"x": 1})
        with cache.lock("k") as held:
            assert held
    finally:
        os.umask(old)
    for directory in (tmp_path / "a", tmp_path / "a" / "b", cache.directory, cache.entries_dir):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(cache.path_for("k").stat().st_mode) == 0o600
    lock_file = cache.entries_dir / "k.lock"
    assert stat.S_IMODE(lock_file.stat().st_mode) == 0o600


@posix_only
def test_modes_are_set_at_creation_never_by_chmod(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Any] = []

    def spy(*args: Any, **kwargs: Any) -> None:
        calls.append(args)

    monkeypatch.setattr(os, "chmod", spy)
    monkeypatch.setattr(os, "fchmod", spy)
    old = os.umask(0o022)
    try:
        cache = TokenCache(tmp_path / "cache")
        assert cache.write_entry("k", {"x": 1})
        assert cache.logins.store("default", LOGIN)
        with cache.lock("k") as held:
            assert held
    finally:
        os.umask(old)
    assert calls == []
    assert stat.S_IMODE(cache.entries_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(cache.path_for("k").stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.logins.path.stat().st_mode) == 0o600


@posix_only
def test_strange_umask_still_gives_usable_0700_directory(tmp_path: Path) -> None:
    old = os.umask(0o277)
    try:
        cache = TokenCache(tmp_path / "cache")
        assert cache.write_entry("k", {"x": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE(cache.entries_dir.stat().st_mode) == 0o700
    assert cache.read_entry("k") == {"x": 1}


def test_write_then_read_round_trips(cache: TokenCache) -> None:
    assert cache.write_entry("k", {"a": "b", "n": [1, 2]})
    assert cache.read_entry("k") == {"a": "b", "n": [1, 2]}


def test_atomic_write_leaves_no_temporary_files(cache: TokenCache) -> None:
    for i in range(5):
        assert cache.write_entry("k", {"i": i})
    assert sorted(p.name for p in cache.entries_dir.iterdir()) == ["k.json"]


def test_failed_replace_keeps_the_old_entry(
    cache: TokenCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cache.write_entry("k", {"i": 1})

    def fail(*args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    assert cache.write_entry("k", {"i": 2}) is False
    monkeypatch.undo()
    assert cache.read_entry("k") == {"i": 1}
    assert sorted(p.name for p in cache.entries_dir.iterdir()) == ["k.json"]


def test_unserialisable_entry_is_not_written(cache: TokenCache) -> None:
    assert not cache.write_entry("k", {"x": object()})
    assert cache.read_entry("k") is None


def test_delete_removes_and_never_raises(cache: TokenCache) -> None:
    cache.delete("absent")
    cache.write_entry("k", {"x": 1})
    cache.delete("k")
    assert cache.read_entry("k") is None


def test_access_entry_format_is_the_documented_one(cache: TokenCache) -> None:
    token = AccessToken(
        access_token="at",
        expires_at=datetime(2026, 11, 27, 8, 0, 0, 999999, tzinfo=timezone(timedelta(hours=1))),
        host=HOST,
        client_id="ci-bot",
    )
    assert cache.store_access_token("m2m-env:ci-bot", token)
    text = cache.path_for("m2m-env:ci-bot").read_text("ascii")
    assert json.loads(text) == {
        "access_token": "at",
        "token_type": "Bearer",
        "expires_at": "2026-11-27T07:00:00Z",
        "host": HOST,
        "client_id": "ci-bot",
    }
    assert text.endswith("}\n")


def test_registry_entry_format_is_the_documented_one(cache: TokenCache) -> None:
    token = RegistryToken(
        token="reg",
        expires_at=datetime(2026, 11, 27, 19, 0, 0, 123456, tzinfo=timezone(timedelta(hours=1))),
        host=HOST,
        identity=IDENTITY,
        domain="d",
        domain_owner="o",
        region="r",
    )
    assert cache.store_registry_token("registry-x", token)
    raw = json.loads(cache.path_for("registry-x").read_text("utf-8"))
    assert raw == {
        "token": "reg",
        "expires_at": "2026-11-27T18:00:00Z",
        "host": HOST,
        "identity": IDENTITY,
        "domain": "d",
        "domain_owner": "o",
        "region": "r",
    }


def test_non_ascii_values_are_stored_as_json_escapes(cache: TokenCache) -> None:
    assert cache.write_entry("k", {"client_id": "cliént"})
    assert b"\\u00e9" in cache.path_for("k").read_bytes()
    assert cache.read_entry("k") == {"client_id": "cliént"}


# ----------------------------------------------------------------------------- reads


def test_access_token_entry_is_loaded(cache: TokenCache) -> None:
    put(cache, "k", access_entry())
    assert load_access(cache) == AccessToken(
        access_token="at-secret",
        expires_at=datetime(2026, 11, 27, 7, 0, tzinfo=timezone.utc),
        host=HOST,
        client_id="ci-bot",
        token_type="Bearer",
    )
    assert cache.check_access_token("k", host=HOST, client_id="ci-bot")[1] == "ok"


def test_token_type_defaults_to_bearer(cache: TokenCache) -> None:
    put(cache, "k", access_entry(token_type=None))
    token = load_access(cache)
    assert token is not None
    assert token.token_type == "Bearer"


def test_store_then_load_access_token(cache: TokenCache) -> None:
    token = AccessToken("at", NOW + timedelta(minutes=30), HOST, "ci-bot", "Bearer")
    assert cache.store_access_token("m2m-profile:ci", token)
    assert load_access(cache, "m2m-profile:ci") == token


def test_store_then_load_registry_token(cache: TokenCache) -> None:
    token = RegistryToken("reg", NOW + timedelta(hours=12), HOST, IDENTITY, *REGISTRY)
    assert cache.store_registry_token("registry-1", token)
    assert load_registry(cache, "registry-1") == token


def test_unknown_fields_are_ignored(cache: TokenCache) -> None:
    put(cache, "k", access_entry(auth_type="m2m", scope="api/all", extra={"x": 1}))
    assert load_access(cache) is not None
    put(cache, "r", registry_entry(repository="menda-plugins"))
    assert load_registry(cache, "r") is not None


@pytest.mark.parametrize(
    ("overrides", "host", "client_id", "reason"),
    [
        ({}, "https://other.example", "ci-bot", "it was issued by another host"),
        ({}, HOST, "someone-else", "it belongs to another client id"),
        ({"client_id": 7}, HOST, "ci-bot", "field 'client_id' is missing or mistyped"),
        ({"access_token": None}, HOST, "ci-bot", "field 'access_token' is missing or mistyped"),
        ({"access_token": ""}, HOST, "ci-bot", "field 'access_token' is missing or mistyped"),
        ({"host": None}, HOST, "ci-bot", "field 'host' is missing or mistyped"),
        ({"token_type": False}, HOST, "ci-bot", "field 'token_type' is missing or mistyped"),
        ({"expires_at": None}, HOST, "ci-bot", "'expires_at' is missing or not RFC 3339"),
        ({"expires_at": 1795762800}, HOST, "ci-bot", "'expires_at' is missing or not RFC 3339"),
        ({"host": "http://evil.example"}, HOST, "ci-bot", "it was issued by another host"),
    ],
)
def test_access_entry_is_used_only_when_it_matches(
    cache: TokenCache, overrides: dict[str, Any], host: str, client_id: str, reason: str
) -> None:
    put(cache, "k", access_entry(**overrides))
    assert cache.check_access_token("k", host=host, client_id=client_id) == (None, reason)
    assert cache.load_access_token("k", host=host, client_id=client_id) is None


def test_missing_entry_reason(cache: TokenCache) -> None:
    reason = "no entry, or the entry is not a readable JSON object"
    assert cache.check_access_token("absent", host=HOST, client_id="c") == (None, reason)
    assert cache.check_registry_token(
        "absent", host=HOST, identity=IDENTITY, registry=REGISTRY
    ) == (None, reason)


@pytest.mark.parametrize(
    ("overrides", "identity", "registry", "reason"),
    [
        ({}, "m2m-profile:ci-bot", REGISTRY, "it belongs to another identity"),
        ({}, IDENTITY, ("other-domain", *REGISTRY[1:]), "it is for another registry"),
        ({}, IDENTITY, (REGISTRY[0], "111111111111", REGISTRY[2]), "it is for another registry"),
        ({}, IDENTITY, (*REGISTRY[:2], "us-east-1"), "it is for another registry"),
        ({"host": "https://other.example"}, IDENTITY, REGISTRY, "it was issued by another host"),
        ({"token": 5}, IDENTITY, REGISTRY, "field 'token' is missing or mistyped"),
        ({"token": ""}, IDENTITY, REGISTRY, "field 'token' is missing or mistyped"),
        ({"identity": None}, IDENTITY, REGISTRY, "field 'identity' is missing or mistyped"),
        ({"domain": 1}, IDENTITY, REGISTRY, "field 'domain' is missing or mistyped"),
        ({"region": None}, IDENTITY, REGISTRY, "field 'region' is missing or mistyped"),
        ({"expires_at": "tomorrow"}, IDENTITY, REGISTRY, "'expires_at' is missing or not RFC 3339"),
    ],
)
def test_registry_entry_is_used_only_when_it_matches(
    cache: TokenCache,
    overrides: dict[str, Any],
    identity: str,
    registry: tuple[str, str, str],
    reason: str,
) -> None:
    put(cache, "k", registry_entry(**overrides))
    assert cache.check_registry_token("k", host=HOST, identity=identity, registry=registry) == (
        None,
        reason,
    )
    assert cache.load_registry_token("k", host=HOST, identity=identity, registry=registry) is None


def test_equivalent_host_spelling_matches(cache: TokenCache) -> None:
    put(cache, "k", access_entry(host="https://API.example.menda.cloud:443/"))
    token = load_access(cache)
    assert token is not None
    assert token.host == HOST
    put(cache, "r", registry_entry(host="api.example.menda.cloud"))
    assert load_registry(cache, "r") is not None


def test_expired_and_within_margin_tokens_load_but_are_not_valid(cache: TokenCache) -> None:
    put(cache, "expired", access_entry(expires_at="2026-11-27T05:00:00Z"))
    expired = load_access(cache, "expired")
    assert expired is not None
    assert not expired.is_valid()
    put(cache, "edge", access_entry(expires_at=format_time(NOW + ACCESS_TOKEN_MARGIN)))
    edge = load_access(cache, "edge")
    assert edge is not None
    assert not edge.is_valid()
    assert edge.is_valid(NOW - timedelta(seconds=1))


def test_access_token_margin_is_60_seconds() -> None:
    assert timedelta(seconds=60) == ACCESS_TOKEN_MARGIN
    token = AccessToken("at", NOW + timedelta(seconds=61), HOST, "c")
    assert token.is_valid(NOW)
    assert not token.is_valid(NOW + timedelta(seconds=1))


def test_registry_token_margin_is_15_minutes() -> None:
    assert timedelta(minutes=15) == REGISTRY_TOKEN_MARGIN
    token = RegistryToken(
        "t", NOW + REGISTRY_TOKEN_MARGIN + timedelta(seconds=1), HOST, "i", "d", "o", "r"
    )
    assert token.is_valid(NOW)
    assert not token.is_valid(NOW + timedelta(seconds=1))


def test_implausibly_far_future_expiry_is_not_valid() -> None:
    assert AccessToken("at", NOW + timedelta(hours=24), HOST, "c").is_valid(NOW)
    assert not AccessToken("at", NOW + timedelta(hours=24, seconds=1), HOST, "c").is_valid(NOW)
    limit = NOW + timedelta(hours=12, minutes=5)
    assert RegistryToken("t", limit, HOST, "i", "d", "o", "r").is_valid(NOW)
    late = limit + timedelta(seconds=1)
    assert not RegistryToken("t", late, HOST, "i", "d", "o", "r").is_valid(NOW)


def test_is_valid_reads_the_clock(clock: Any) -> None:
    token = AccessToken("at", NOW + timedelta(minutes=5), HOST, "c")
    assert token.is_valid()
    clock.advance(minutes=4)
    assert not token.is_valid()


def test_naive_expiry_is_taken_as_utc(cache: TokenCache) -> None:
    token = AccessToken("at", datetime(2026, 11, 27, 7, 0), HOST, "c")
    assert token.is_valid(datetime(2026, 11, 27, 6, 58, tzinfo=timezone.utc))
    assert not token.is_valid(datetime(2026, 11, 27, 6, 59, 30, tzinfo=timezone.utc))
    assert cache.store_access_token("k", token)
    entry = cache.read_entry("k")
    assert entry is not None
    assert entry["expires_at"] == "2026-11-27T07:00:00Z"


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{",
        b'{"access_token": "at", "expires_at": "2026-11-27T07:00',
        b"\xff\xfe\x00",
        b"null",
        b"[]",
        b'["access_token"]',
        b'"string"',
        b"42",
        b"[" * 100000,
        b"[default]\naccess_token = a\n",
    ],
)
def test_corrupt_truncated_or_non_object_entry_is_a_miss(cache: TokenCache, content: bytes) -> None:
    put(cache, "k", content)
    assert cache.read_entry("k") is None
    assert load_access(cache) is None
    assert load_registry(cache) is None


@pytest.mark.parametrize(
    "overrides",
    [
        {"expires_at": 1795762800},
        {"expires_at": "tomorrow"},
        {"expires_at": "2026-11-27T07:00:00"},
        {"expires_at": "2026-13-27T07:00:00Z"},
        {"expires_at": None},
        {"access_token": 123},
        {"access_token": ""},
        {"access_token": None},
        {"access_token": ["at"]},
        {"host": None},
        {"host": ["https://api.example.menda.cloud"]},
        {"client_id": 7},
        {"client_id": None},
        {"token_type": False},
        {"token_type": ""},
    ],
)
def test_wrongly_typed_access_entry_is_a_miss(cache: TokenCache, overrides: dict[str, Any]) -> None:
    put(cache, "k", access_entry(**overrides))
    assert load_access(cache) is None


def test_entry_that_is_a_directory_is_a_miss(cache: TokenCache) -> None:
    cache.path_for("k").mkdir(parents=True)
    assert cache.read_entry("k") is None
    assert not cache.write_entry("k", {"x": 1})


@posix_only
def test_entry_that_is_a_fifo_is_a_miss_without_blocking(
    cache: TokenCache, without_hanging: Callable[..., Any]
) -> None:
    cache.entries_dir.mkdir(parents=True)
    os.mkfifo(cache.path_for("k"))
    assert without_hanging(lambda: cache.read_entry("k"), cache.path_for("k")) is None
    assert without_hanging(lambda: load_access(cache), cache.path_for("k")) is None


@posix_only
def test_symlinked_entry_is_not_followed(cache: TokenCache, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.json"
    target.write_text(json.dumps(access_entry()), encoding="utf-8")
    cache.entries_dir.mkdir(parents=True)
    cache.path_for("k").symlink_to(target)
    assert cache.read_entry("k") is None
    assert load_access(cache) is None
    # Writing replaces the link itself; the file it pointed to is untouched.
    assert cache.store_access_token("k", AccessToken("new", NOW + timedelta(hours=1), HOST, "c"))
    assert not cache.path_for("k").is_symlink()
    assert json.loads(target.read_text("utf-8")) == access_entry()


def test_oversized_entry_is_a_miss(cache: TokenCache) -> None:
    put(cache, "k", json.dumps(access_entry(pad="x" * (1 << 16))))
    assert cache.read_entry("k") is None


@posix_only
@not_root
def test_unreadable_entry_is_a_miss(cache: TokenCache) -> None:
    path = put(cache, "k", access_entry())
    path.chmod(0)
    assert cache.read_entry("k") is None
    assert load_access(cache) is None


@posix_only
@not_root
def test_read_only_directory_works_without_caching(cache: TokenCache) -> None:
    put(cache, "k", access_entry())
    cache.entries_dir.chmod(0o500)
    try:
        assert load_access(cache) is not None
        assert not cache.write_entry("k", {"x": 1})
        with cache.lock("other", timeout=0.1) as held:
            assert held is False
        cache.delete("k")
    finally:
        cache.entries_dir.chmod(0o700)


@posix_only
@not_root
def test_read_only_home_works_without_caching(tmp_path: Path) -> None:
    home = tmp_path / "ro"
    home.mkdir()
    home.chmod(0o500)
    try:
        cache = TokenCache(home / ".menda" / "tokens" / "cache")
        assert not cache.write_entry("k", {"x": 1})
        assert cache.read_entry("k") is None
        with cache.lock("k", timeout=0.1) as held:
            assert held is False
    finally:
        home.chmod(0o700)


def test_directory_below_a_regular_file_works_without_caching(tmp_path: Path) -> None:
    # Unwritable even for root: a path component is a regular file.
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cache = TokenCache(blocker / "cache")
    assert cache.read_entry("k") is None
    assert not cache.write_entry("k", {"x": 1})
    assert not cache.store_access_token("k", AccessToken("at", NOW + timedelta(hours=1), HOST, "c"))
    with cache.lock("k", timeout=0.1) as held:
        assert held is False
    cache.delete("k")
    assert cache.logins.load("default") is None


def test_entries_directory_that_is_a_file_works_without_caching(cache: TokenCache) -> None:
    cache.directory.mkdir(parents=True)
    cache.entries_dir.write_text("not a directory")
    assert cache.read_entry("k") is None
    assert not cache.write_entry("k", {"x": 1})
    with cache.lock("k", timeout=0.1) as held:
        assert held is False


def test_unknown_home_works_without_caching(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    cache = TokenCache(environ={})
    assert cache.read_entry("k") is None
    assert not cache.write_entry("k", {"x": 1})
    with cache.lock("k") as held:
        assert held is False
    cache.delete("k")


def test_directory_with_nul_byte_works_without_caching() -> None:
    cache = TokenCache(environ={"MENDA_TOKEN_CACHE_DIR": "/tmp/a\0b"})
    assert cache.read_entry("k") is None
    assert not cache.write_entry("k", {"x": 1})
    with cache.lock("k", timeout=0) as held:
        assert held is False
    cache.delete("k")
    assert cache.logins.load("default") is None
    assert cache.logins.store("default", LOGIN) is False


def test_debug_logs_never_contain_token_values(
    cache: TokenCache, caplog: pytest.LogCaptureFixture
) -> None:
    put(cache, "k", access_entry(host="https://other.example"))
    put(cache, "r", registry_entry(identity="someone-else"))
    with caplog.at_level(logging.DEBUG):
        assert load_access(cache) is None
        assert load_registry(cache, "r") is None
        cache.write_entry("bad", {"x": object(), "access_token": "at-secret"})
    assert "at-secret" not in caplog.text
    assert "reg-secret" not in caplog.text
    assert "it was issued by another host" in caplog.text


def test_token_reprs_mask_secrets() -> None:
    access = AccessToken("at-secret", NOW, HOST, "ci-bot")
    registry = RegistryToken("reg-secret", NOW, HOST, "i", "d", "o", "r")
    assert "at-secret" not in repr(access)
    assert "reg-secret" not in repr(registry)
    assert "***" in repr(access)
    assert "***" in repr(registry)
    assert "ci-bot" in repr(access)
    assert repr(TokenCache(Path("/x/cache"))) == f"TokenCache({str(Path('/x/cache'))!r})"
