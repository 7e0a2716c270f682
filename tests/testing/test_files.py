"""The CLI-side file writers: mendacfg and cached logins, content and modes."""

from __future__ import annotations

import configparser
import json
import re
import stat
import sys
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from menda.testing import (
    cache_file_name,
    write_cache_entry,
    write_cached_login,
    write_mendacfg,
)

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")


def test_mendacfg_is_written_as_plain_ini(tmp_path: Path) -> None:
    path = write_mendacfg(
        tmp_path / ".menda" / "mendacfg",
        {
            "default": {"host": "https://api.example.menda.cloud"},
            "ci": {
                "host": "https://h",
                "auth_type": "m2m",
                "client_id": "id",
                "client_secret": "s",
            },
        },
        defaults={"host": "https://fallback"},
    )
    assert path == tmp_path / ".menda" / "mendacfg"
    assert path.read_bytes() == (
        b"[DEFAULT]\n"
        b"host = https://fallback\n"
        b"\n"
        b"[default]\n"
        b"host = https://api.example.menda.cloud\n"
        b"\n"
        b"[ci]\n"
        b"host = https://h\n"
        b"auth_type = m2m\n"
        b"client_id = id\n"
        b"client_secret = s\n"
    )


def test_mendacfg_keeps_special_characters_raw(tmp_path: Path) -> None:
    secret = "p%ss #not-a-comment ;nor-this"
    path = write_mendacfg(tmp_path / "cfg", {"dev": {"client_secret": secret}})
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=None)
    parser.read(path, encoding="utf-8")
    assert parser["dev"]["client_secret"] == secret


def test_mendacfg_refuses_values_with_line_breaks(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="line break"):
        write_mendacfg(tmp_path / "cfg", {"dev": {"host": "a\nb"}})


@posix_only
def test_mendacfg_and_its_directory_are_private(tmp_path: Path) -> None:
    path = write_mendacfg(tmp_path / ".menda" / "mendacfg", {"default": {"host": "h"}})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("default", "default.token"),
        ("ci.prod", "ci%2Eprod.token"),
        ("a/b", "a%2Fb.token"),
        ("../up", "%2E%2E%2Fup.token"),
        ("é", "%C3%A9.token"),
        ("A-z_09", "A-z_09.token"),
    ],
)
def test_cache_file_names_escape_every_unsafe_character(key: str, name: str) -> None:
    assert cache_file_name(key) == name


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=30))
def test_cache_file_names_are_safe_and_reversible(key: str) -> None:
    name = cache_file_name(key)
    assert re.fullmatch(r"[A-Za-z0-9_%-]+\.token", name)
    assert unquote(name.removesuffix(".token"), errors="strict") == key


def test_cached_login_entry_has_the_cli_fields(tmp_path: Path) -> None:
    cache = tmp_path / "home" / ".menda" / "tokens" / "cache"
    expires = datetime(2026, 11, 27, 7, 0, 0, tzinfo=timezone.utc)
    path = write_cached_login(
        cache,
        "dev.team",
        host="https://api.example.menda.cloud",
        access_token="mat_abc",
        expires_at=expires,
        refresh_token="mrt_def",
    )
    assert path == cache / "dev%2Eteam.token"
    assert json.loads(path.read_text()) == {
        "access_token": "mat_abc",
        "token_type": "Bearer",
        "expires_at": "2026-11-27T07:00:00Z",
        "host": "https://api.example.menda.cloud",
        "auth_type": "u2m",
        "client_id": "menda-cli",
        "refresh_token": "mrt_def",
    }


def test_cached_login_without_refresh_token_and_with_extra_fields(tmp_path: Path) -> None:
    path = write_cached_login(
        tmp_path,
        "default",
        host="https://h",
        access_token="mat_x",
        expires_at="not-a-date",
        client_id="other-cli",
        extra={"cli_version": "2.1", "token_type": "bearer"},
    )
    entry = json.loads(path.read_text())
    assert "refresh_token" not in entry
    assert entry["expires_at"] == "not-a-date"
    assert entry["client_id"] == "other-cli"
    assert entry["cli_version"] == "2.1"
    assert entry["token_type"] == "bearer"


def test_cached_login_converts_offsets_to_utc(tmp_path: Path) -> None:
    from datetime import timedelta

    plus_two = timezone(timedelta(hours=2))
    path = write_cached_login(
        tmp_path,
        "p",
        host="https://h",
        access_token="t",
        expires_at=datetime(2026, 1, 1, 2, 0, tzinfo=plus_two),
    )
    assert json.loads(path.read_text())["expires_at"] == "2026-01-01T00:00:00Z"


def test_cached_login_refuses_naive_datetimes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="naive"):
        write_cached_login(
            tmp_path, "p", host="https://h", access_token="t", expires_at=datetime(2026, 1, 1)
        )


@posix_only
def test_cache_directory_is_0700_and_entries_0600(tmp_path: Path) -> None:
    cache = tmp_path / "a" / "b" / "cache"
    path = write_cache_entry(cache, "registry-abc", {"token": "caat_x"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for directory in (cache, cache.parent, cache.parent.parent):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def test_rewriting_an_entry_replaces_it(tmp_path: Path) -> None:
    write_cache_entry(tmp_path, "k", {"a": 1, "b": 2})
    path = write_cache_entry(tmp_path, "k", {"a": 3})
    assert json.loads(path.read_text()) == {"a": 3}
