from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from menda.core_auth import (
    ACCESS_TOKEN_MARGIN,
    REGISTRY_TOKEN_MARGIN,
    AccessToken,
    RegistryToken,
    TokenCache,
    default_cache_dir,
    registry_cache_key,
    utcnow,
)
from menda.core_auth._cache import format_time, parse_time

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX file modes")
not_root = pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads and writes anyway"
)

HOST = "https://api.example.menda.cloud"
NOW = datetime(2026, 11, 27, 6, 0, 0, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("menda.core_auth._clock._source", lambda: NOW)


@pytest.fixture
def cache(tmp_path: Path) -> TokenCache:
    return TokenCache(tmp_path / "cache")


def access_entry(**overrides: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "access_token": "at-secret",
        "token_type": "Bearer",
        "expires_at": "2026-11-27T07:00:00Z",
        "host": HOST,
        "auth_type": "m2m",
        "client_id": "ci-bot",
    }
    entry.update(overrides)
    return {k: v for k, v in entry.items() if v is not None}


def registry_entry(**overrides: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "token": "reg-secret",
        "expires_at": "2026-11-27T18:00:00Z",
        "host": HOST,
        "identity": "ci-bot",
        "domain": "menda-private",
        "domain_owner": "058264169513",
        "region": "eu-west-1",
    }
    entry.update(overrides)
    return {k: v for k, v in entry.items() if v is not None}


def put(cache: TokenCache, key: str, content: bytes | str | dict[str, Any]) -> Path:
    """Write an entry file as another program (the CLI) would, bypassing our writer."""
    cache.directory.mkdir(parents=True, exist_ok=True)
    path = cache.path_for(key)
    if isinstance(content, dict):
        content = json.dumps(content)
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


# ----------------------------------------------------------------------------- clock


def test_utcnow_is_aware_utc_and_follows_the_patched_source() -> None:
    assert utcnow() == NOW
    assert utcnow().tzinfo is not None


def test_utcnow_real_source_is_aware(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()
    now = utcnow()
    assert now.utcoffset() == timedelta(0)


# ----------------------------------------------------------------------------- paths


def test_default_cache_dir_is_under_home(isolated_home: Path) -> None:
    assert default_cache_dir({}) == isolated_home / ".menda" / "tokens" / "cache"
    assert TokenCache().directory == isolated_home / ".menda" / "tokens" / "cache"


def test_menda_token_cache_dir_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_cache_dir({"MENDA_TOKEN_CACHE_DIR": str(tmp_path / "c")}) == tmp_path / "c"
    monkeypatch.setenv("MENDA_TOKEN_CACHE_DIR", str(tmp_path / "d"))
    assert TokenCache().directory == tmp_path / "d"
    assert TokenCache(environ={"MENDA_TOKEN_CACHE_DIR": ""}).directory.name == "cache"


@pytest.mark.parametrize(
    ("key", "filename"),
    [
        ("ci.prod", "ci%2Eprod.token"),
        ("default", "default.token"),
        ("A-Z_a-z0-9", "A-Z_a-z0-9.token"),
        ("../x", "%2E%2E%2Fx.token"),
        ("a/b\\c", "a%2Fb%5Cc.token"),
        ("100%", "100%25.token"),
        ("é", "%C3%A9.token"),
        ("a b", "a%20b.token"),
        ("..", "%2E%2E.token"),
    ],
)
def test_file_names_escape_every_unsafe_character(
    cache: TokenCache, key: str, filename: str
) -> None:
    path = cache.path_for(key)
    assert path.name == filename
    assert path.parent == cache.directory


def test_path_traversal_key_stays_in_the_directory(cache: TokenCache) -> None:
    assert cache.write_entry("../x", {"a": 1})
    assert sorted(p.name for p in cache.directory.iterdir()) == ["%2E%2E%2Fx.token"]
    assert not (cache.directory.parent / "x.token").exists()
    assert not (cache.directory.parent / "x").exists()
    assert cache.read_entry("../x") == {"a": 1}


def test_registry_cache_key_is_the_documented_hash() -> None:
    material = "\x00".join(["ci-bot", HOST, "menda-private", "058264169513", "eu-west-1"])
    expected = "registry-" + hashlib.sha256(material.encode()).hexdigest()[:32]
    key = registry_cache_key("ci-bot", HOST, "menda-private", "058264169513", "eu-west-1")
    assert key == expected
    assert len(key) == len("registry-") + 32
    assert registry_cache_key("ci-bot", HOST, "menda-private", "058264169513", "us-east-1") != key


# ----------------------------------------------------------------------------- writes


@posix_only
def test_directory_is_created_0700_and_files_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        cache = TokenCache(tmp_path / "a" / "b" / "cache")
        assert cache.write_entry("k", {"x": 1})
        with cache.lock("k") as held:
            assert held
    finally:
        os.umask(old)
    for directory in (tmp_path / "a", tmp_path / "a" / "b", cache.directory):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(cache.path_for("k").stat().st_mode) == 0o600
    lock_file = cache.directory / "k.token.lock"
    assert stat.S_IMODE(lock_file.stat().st_mode) == 0o600


@posix_only
def test_strange_umask_still_gives_usable_0700_directory(tmp_path: Path) -> None:
    old = os.umask(0o277)
    try:
        cache = TokenCache(tmp_path / "cache")
        assert cache.write_entry("k", {"x": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE(cache.directory.stat().st_mode) == 0o700
    assert cache.read_entry("k") == {"x": 1}


def test_write_then_read_round_trips(cache: TokenCache) -> None:
    assert cache.write_entry("k", {"a": "b", "n": [1, 2]})
    assert cache.read_entry("k") == {"a": "b", "n": [1, 2]}


def test_atomic_write_leaves_no_temporary_files(cache: TokenCache) -> None:
    for i in range(5):
        assert cache.write_entry("k", {"i": i})
    assert sorted(p.name for p in cache.directory.iterdir()) == ["k.token"]


def test_rewrite_keeps_unknown_fields(cache: TokenCache) -> None:
    put(cache, "default", access_entry(cli_extra={"keep": True}, scope="all"))
    token = AccessToken(
        access_token="new-token",
        expires_at=NOW + timedelta(hours=1),
        host=HOST,
        auth_type="m2m",
        client_id="ci-bot",
    )
    assert cache.store_access_token("default", token)
    entry = cache.read_entry("default")
    assert entry is not None
    assert entry["cli_extra"] == {"keep": True}
    assert entry["scope"] == "all"
    assert entry["access_token"] == "new-token"
    assert entry["expires_at"] == "2026-11-27T07:00:00Z"


def test_none_field_removes_a_known_field(cache: TokenCache) -> None:
    put(cache, "dev", access_entry(auth_type="u2m", refresh_token="rt-old"))
    token = AccessToken("at", NOW + timedelta(hours=1), HOST, "u2m", "public", None)
    assert cache.store_access_token("dev", token)
    entry = cache.read_entry("dev")
    assert entry is not None
    assert "refresh_token" not in entry


def test_unserialisable_entry_is_not_written(cache: TokenCache) -> None:
    assert not cache.write_entry("k", {"x": object()})
    assert cache.read_entry("k") is None


def test_delete_removes_and_never_raises(cache: TokenCache) -> None:
    cache.delete("absent")
    cache.write_entry("k", {"x": 1})
    cache.delete("k")
    assert cache.read_entry("k") is None


def test_written_format_matches_the_spec(cache: TokenCache) -> None:
    token = RegistryToken(
        token="reg",
        expires_at=datetime(2026, 11, 27, 19, 0, 0, 123456, tzinfo=timezone(timedelta(hours=1))),
        host=HOST,
        identity="ci-bot",
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
        "identity": "ci-bot",
        "domain": "d",
        "domain_owner": "o",
        "region": "r",
    }


# ----------------------------------------------------------------------------- reads


def test_access_token_from_the_cli_format_is_loaded(cache: TokenCache) -> None:
    put(cache, "ci-bot", access_entry())
    token = cache.load_access_token("ci-bot", host=HOST, client_id="ci-bot")
    assert token == AccessToken(
        access_token="at-secret",
        expires_at=datetime(2026, 11, 27, 7, 0, tzinfo=timezone.utc),
        host=HOST,
        auth_type="m2m",
        client_id="ci-bot",
    )
    assert token.is_valid()


def test_u2m_entry_with_refresh_token_is_loaded(cache: TokenCache) -> None:
    put(cache, "dev", access_entry(auth_type="u2m", client_id="public", refresh_token="rt"))
    token = cache.load_access_token("dev", host=HOST)
    assert token is not None
    assert token.refresh_token == "rt"
    assert token.client_id == "public"


def test_store_then_load_access_token(cache: TokenCache) -> None:
    token = AccessToken("at", NOW + timedelta(minutes=30), HOST, "u2m", "public", "rt", "Bearer")
    assert cache.store_access_token("dev", token)
    assert cache.load_access_token("dev", host=HOST) == token


def test_store_then_load_registry_token(cache: TokenCache) -> None:
    token = RegistryToken("reg", NOW + timedelta(hours=12), HOST, "ci-bot", "d", "o", "r")
    assert cache.store_registry_token("registry-1", token)
    assert cache.load_registry_token("registry-1", host=HOST, identity="ci-bot") == token


def test_host_mismatch_is_a_miss(cache: TokenCache) -> None:
    put(cache, "ci-bot", access_entry())
    assert cache.load_access_token("ci-bot", host="https://other.example") is None
    put(cache, "r", registry_entry())
    assert cache.load_registry_token("r", host="https://other.example", identity="ci-bot") is None


def test_equivalent_host_spelling_matches(cache: TokenCache) -> None:
    put(cache, "ci-bot", access_entry(host="https://API.example.menda.cloud:443/"))
    assert cache.load_access_token("ci-bot", host=HOST) is not None


def test_client_id_mismatch_is_a_miss(cache: TokenCache) -> None:
    put(cache, "default", access_entry())
    assert cache.load_access_token("default", host=HOST, client_id="someone-else") is None
    assert cache.load_access_token("default", host=HOST, client_id="ci-bot") is not None


def test_registry_identity_mismatch_is_a_miss(cache: TokenCache) -> None:
    put(cache, "r", registry_entry())
    assert cache.load_registry_token("r", host=HOST, identity="other") is None


def test_expired_and_within_margin_tokens_load_but_are_not_valid(cache: TokenCache) -> None:
    put(cache, "expired", access_entry(expires_at="2026-11-27T05:00:00Z"))
    expired = cache.load_access_token("expired", host=HOST)
    assert expired is not None
    assert not expired.is_valid()
    edge = NOW + ACCESS_TOKEN_MARGIN
    put(cache, "edge", access_entry(expires_at=format_time(edge)))
    token = cache.load_access_token("edge", host=HOST)
    assert token is not None
    assert not token.is_valid()
    assert token.is_valid(NOW - timedelta(seconds=1))


def test_access_token_margin_is_60_seconds() -> None:
    token = AccessToken("at", NOW + timedelta(seconds=61), HOST, "m2m", "c")
    assert token.is_valid(NOW)
    assert not token.is_valid(NOW + timedelta(seconds=1))


def test_registry_token_margin_is_15_minutes() -> None:
    token = RegistryToken(
        "t", NOW + REGISTRY_TOKEN_MARGIN + timedelta(seconds=1), HOST, "i", "d", "o", "r"
    )
    assert token.is_valid(NOW)
    assert not token.is_valid(NOW + timedelta(seconds=1))


def test_implausibly_far_future_expiry_is_not_valid() -> None:
    assert AccessToken("at", NOW + timedelta(hours=24), HOST, "m2m", "c").is_valid(NOW)
    assert not AccessToken("at", NOW + timedelta(hours=24, seconds=1), HOST, "m2m", "c").is_valid(
        NOW
    )
    limit = NOW + timedelta(hours=12, minutes=5)
    assert RegistryToken("t", limit, HOST, "i", "d", "o", "r").is_valid(NOW)
    assert not RegistryToken("t", limit + timedelta(seconds=1), HOST, "i", "d", "o", "r").is_valid(
        NOW
    )


def test_is_valid_reads_the_clock() -> None:
    token = AccessToken("at", NOW + timedelta(minutes=5), HOST, "m2m", "c")
    assert token.is_valid()


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
    ],
)
def test_corrupt_truncated_or_non_object_entry_is_a_miss(cache: TokenCache, content: bytes) -> None:
    put(cache, "k", content)
    assert cache.read_entry("k") is None
    assert cache.load_access_token("k", host=HOST) is None
    assert cache.load_registry_token("k", host=HOST, identity="ci-bot") is None


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
        {"host": None},
        {"host": ["https://api.example.menda.cloud"]},
        {"auth_type": "sso"},
        {"auth_type": None},
        {"client_id": 7},
        {"refresh_token": {"x": 1}},
        {"token_type": False},
    ],
)
def test_wrongly_typed_access_entry_is_a_miss(cache: TokenCache, overrides: dict[str, Any]) -> None:
    put(cache, "k", access_entry(**{k: v for k, v in overrides.items() if v is not None}))
    if any(v is None for v in overrides.values()):
        entry = access_entry()
        for name in overrides:
            entry.pop(name)
        put(cache, "k", entry)
    assert cache.load_access_token("k", host=HOST) is None


@pytest.mark.parametrize(
    "overrides",
    [
        {"expires_at": 1795762800},
        {"token": 5},
        {"token": ""},
        {"identity": None},
        {"domain": 1},
        {"region": None},
    ],
)
def test_wrongly_typed_registry_entry_is_a_miss(
    cache: TokenCache, overrides: dict[str, Any]
) -> None:
    entry = registry_entry(**{k: v for k, v in overrides.items() if v is not None})
    for name, value in overrides.items():
        if value is None:
            entry.pop(name)
    put(cache, "k", entry)
    assert cache.load_registry_token("k", host=HOST, identity="ci-bot") is None


def test_entry_that_is_a_directory_is_a_miss(cache: TokenCache) -> None:
    cache.path_for("k").mkdir(parents=True)
    assert cache.read_entry("k") is None
    assert not cache.write_entry("k", {"x": 1})


@posix_only
def test_entry_that_is_a_fifo_is_a_miss_without_blocking(cache: TokenCache) -> None:
    cache.directory.mkdir()
    os.mkfifo(cache.path_for("k"))
    assert cache.read_entry("k") is None


def test_oversized_entry_is_a_miss(cache: TokenCache) -> None:
    put(cache, "k", json.dumps({"pad": "x" * (2 << 20)}))
    assert cache.read_entry("k") is None


@posix_only
@not_root
def test_unreadable_entry_is_a_miss(cache: TokenCache) -> None:
    path = put(cache, "k", access_entry())
    path.chmod(0)
    assert cache.read_entry("k") is None
    assert cache.load_access_token("k", host=HOST) is None


@posix_only
@not_root
def test_read_only_directory_works_without_caching(cache: TokenCache) -> None:
    put(cache, "k", access_entry())
    cache.directory.chmod(0o500)
    try:
        assert cache.load_access_token("k", host=HOST) is not None
        assert not cache.write_entry("k", {"x": 1})
        with cache.lock("other", timeout=0.1) as held:
            assert held is False
        cache.delete("k")
    finally:
        cache.directory.chmod(0o700)


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
    assert not cache.store_access_token(
        "k", AccessToken("at", NOW + timedelta(hours=1), HOST, "m2m", "c")
    )
    with cache.lock("k", timeout=0.1) as held:
        assert held is False
    cache.delete("k")


def test_unknown_home_works_without_caching(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    cache = TokenCache(environ={})
    assert cache.read_entry("k") is None
    assert not cache.write_entry("k", {"x": 1})
    with cache.lock("k") as held:
        assert held is False


@posix_only
def test_group_or_world_readable_entry_is_tightened_on_read(cache: TokenCache) -> None:
    path = put(cache, "k", access_entry())
    path.chmod(0o644)
    assert cache.read_entry("k") is not None
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_debug_logs_never_contain_token_values(
    cache: TokenCache, caplog: pytest.LogCaptureFixture
) -> None:
    put(cache, "k", access_entry(host="https://other.example", refresh_token="rt-secret"))
    with caplog.at_level(logging.DEBUG):
        assert cache.load_access_token("k", host=HOST) is None
        cache.write_entry("bad", {"x": object()})
    assert "at-secret" not in caplog.text
    assert "rt-secret" not in caplog.text


def test_token_reprs_mask_secrets() -> None:
    access = AccessToken("at-secret", NOW, HOST, "u2m", "public", "rt-secret")
    registry = RegistryToken("reg-secret", NOW, HOST, "i", "d", "o", "r")
    assert "at-secret" not in repr(access)
    assert "rt-secret" not in repr(access)
    assert "reg-secret" not in repr(registry)
    assert "***" in repr(access)
    assert "***" in repr(registry)


def test_naive_expiry_is_taken_as_utc(cache: TokenCache) -> None:
    token = AccessToken("at", datetime(2026, 11, 27, 7, 0), HOST, "m2m", "c")
    assert token.is_valid(datetime(2026, 11, 27, 6, 58, tzinfo=timezone.utc))
    assert not token.is_valid(datetime(2026, 11, 27, 6, 59, 30, tzinfo=timezone.utc))
    cache.store_access_token("k", token)
    entry = cache.read_entry("k")
    assert entry is not None
    assert entry["expires_at"] == "2026-11-27T07:00:00Z"


# ----------------------------------------------------------------------------- time format


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-27T18:00:00Z", datetime(2026, 11, 27, 18, tzinfo=timezone.utc)),
        ("2026-11-27t18:00:00z", datetime(2026, 11, 27, 18, tzinfo=timezone.utc)),
        ("2026-11-27T19:30:00+01:30", datetime(2026, 11, 27, 18, tzinfo=timezone.utc)),
        ("2026-11-27T13:00:00-05:00", datetime(2026, 11, 27, 18, tzinfo=timezone.utc)),
        ("2026-11-27T18:00:00.5Z", datetime(2026, 11, 27, 18, 0, 0, 500000, tzinfo=timezone.utc)),
        (
            "2026-11-27T18:00:00.1234567+00:00",
            datetime(2026, 11, 27, 18, 0, 0, 123456, tzinfo=timezone.utc),
        ),
        ("2026-11-27 18:00:00Z", datetime(2026, 11, 27, 18, tzinfo=timezone.utc)),
    ],
)
def test_parse_time_accepts_rfc3339_with_z_or_offset(text: str, expected: datetime) -> None:
    parsed = parse_time(text)
    assert parsed == expected
    assert parsed is not None
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-27T18:00:00",
        "2026-11-27",
        "2026-11-27T25:00:00Z",
        "2026-02-30T10:00:00Z",
        "2026-11-27T18:00:00+24:00",
        "9999-12-31T23:59:59-01:00",
        "0001-01-01T00:00:00+01:00",
        "",
        "\uff11\uff12\uff13\uff14-11-27T18:00:00Z",
    ],
)
def test_parse_time_rejects_invalid(text: str) -> None:
    assert parse_time(text) is None


def test_format_time_is_utc_with_z() -> None:
    local = datetime(2026, 11, 27, 19, 0, 0, 999999, tzinfo=timezone(timedelta(hours=1)))
    assert format_time(local) == "2026-11-27T18:00:00Z"
    assert parse_time(format_time(local)) == datetime(2026, 11, 27, 18, tzinfo=timezone.utc)


def test_directory_with_nul_byte_works_without_caching() -> None:
    cache = TokenCache(environ={"MENDA_TOKEN_CACHE_DIR": "/tmp/a\0b"})
    assert cache.read_entry("k") is None
    assert not cache.write_entry("k", {"x": 1})
    with cache.lock("k", timeout=0) as held:
        assert held is False
    cache.delete("k")
