"""The CLI-side file writers: mendacfg and cached logins, content and modes."""

from __future__ import annotations

import configparser
import json
import re
import stat
import sys
import time
from pathlib import Path
from urllib.parse import unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from menda.testing import (
    CLI_TOKEN_KEYS,
    cache_file_name,
    cached_secrets,
    read_cli_token_file,
    write_cache_entry,
    write_cached_login,
    write_legacy_cache_entry,
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
        ("default", "default.json"),
        ("ci.prod", "ci%2Eprod.json"),
        ("m2m-env:ci", "m2m-env%3Aci.json"),
        ("a/b", "a%2Fb.json"),
        ("../up", "%2E%2E%2Fup.json"),
        ("é", "%C3%A9.json"),
        ("A-z_09", "A-z_09.json"),
    ],
)
def test_cache_file_names_escape_every_unsafe_character(key: str, name: str) -> None:
    assert cache_file_name(key) == name


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=30))
def test_cache_file_names_are_safe_and_reversible(key: str) -> None:
    name = cache_file_name(key)
    assert re.fullmatch(r"[A-Za-z0-9_%-]+\.json", name)
    assert unquote(name.removesuffix(".json"), errors="strict") == key


def test_cached_login_is_a_section_of_the_clis_token_file(tmp_path: Path) -> None:
    cache = tmp_path / "home" / ".menda" / "tokens" / "cache"
    path = write_cached_login(
        cache,
        "dev.team",
        id_token="mit_abc",
        access_token="mat_abc",
        refresh_token="mrt_def",
        expires_in=3600,
        cached_at=1764540000.123456,
    )
    assert path == cache / ".token"
    assert path.read_bytes() == (
        b"[dev.team]\n"
        b"id_token = mit_abc\n"
        b"access_token = mat_abc\n"
        b"refresh_token = mrt_def\n"
        b"expires_in = 3600\n"
        b"token_type = Bearer\n"
        b"cached_at = 1764540000.123456\n"
        b"\n"
    )
    sections = read_cli_token_file(path)
    assert list(sections) == ["dev.team"]
    assert tuple(sections["dev.team"]) == CLI_TOKEN_KEYS


def test_cached_login_writes_empty_values_and_defaults_cached_at_to_now(tmp_path: Path) -> None:
    before = time.time()
    path = write_cached_login(tmp_path, "default", access_token="mat_x")
    section = read_cli_token_file(path)["default"]
    assert section["id_token"] == ""
    assert section["refresh_token"] == ""
    assert section["expires_in"] == "3600"
    assert before <= float(section["cached_at"]) <= time.time()
    assert "id_token = \n" in path.read_text()  # configparser's own spelling of ""


def test_cached_login_keeps_every_other_section(tmp_path: Path) -> None:
    write_cached_login(tmp_path, "a", access_token="mat_a", cached_at=1.5)
    write_cached_login(tmp_path, "b", access_token="mat_b", cached_at=2.5)
    path = write_cached_login(tmp_path, "a", access_token="mat_a2", cached_at=3.5)
    sections = read_cli_token_file(path)
    assert list(sections) == ["a", "b"]
    assert sections["a"]["access_token"] == "mat_a2"
    assert sections["b"] == {
        "id_token": "",
        "access_token": "mat_b",
        "refresh_token": "",
        "expires_in": "3600",
        "token_type": "Bearer",
        "cached_at": "2.5",
    }


def test_cached_login_writes_odd_values_verbatim_and_extra_keys(tmp_path: Path) -> None:
    path = write_cached_login(
        tmp_path,
        "p",
        access_token="mat_x",
        expires_in="soon",
        cached_at="",
        extra={"host": "https://h", "token_type": "bearer", "refresh_token": None},
    )
    section = read_cli_token_file(path)["p"]
    assert section["expires_in"] == "soon"
    assert section["cached_at"] == ""
    assert section["host"] == "https://h"
    assert section["token_type"] == "bearer"
    assert "refresh_token" not in section


@settings(max_examples=40, deadline=None)
@given(
    profile=st.text(alphabet="abcXYZ019-_.@ ", min_size=1, max_size=12).map(str.strip).filter(bool),
    token=st.text(alphabet="abcdefXYZ0123456789-_.%#;=:", min_size=1, max_size=40),
)
def test_cached_logins_round_trip(
    tmp_path_factory: pytest.TempPathFactory, profile: str, token: str
) -> None:
    directory = tmp_path_factory.mktemp("cache")
    path = write_cached_login(directory, profile, access_token=token, cached_at=12.0)
    assert read_cli_token_file(path)[profile]["access_token"] == token


def test_reading_a_missing_token_file_is_empty_and_default_is_a_section(tmp_path: Path) -> None:
    assert read_cli_token_file(tmp_path / ".token") == {}
    (tmp_path / ".token").write_text("[DEFAULT]\nx = 1\n[p]\ny = 2\n")
    assert read_cli_token_file(tmp_path / ".token") == {"DEFAULT": {"x": "1"}, "p": {"y": "2"}}


@posix_only
def test_own_cache_entries_live_in_their_own_private_directory(tmp_path: Path) -> None:
    cache = tmp_path / "a" / "b" / "cache"
    path = write_cache_entry(cache, "registry-abc", {"token": "eyJ.x"})
    assert path == cache / "menda-keyring" / "registry-abc.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for directory in (path.parent, cache, cache.parent, cache.parent.parent):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def test_rewriting_an_entry_replaces_it(tmp_path: Path) -> None:
    write_cache_entry(tmp_path, "k", {"a": 1, "b": 2})
    path = write_cache_entry(tmp_path, "k", {"a": 3})
    assert json.loads(path.read_text()) == {"a": 3}


def test_legacy_entries_are_0_1_json_files_beside_the_token_file(tmp_path: Path) -> None:
    path = write_legacy_cache_entry(tmp_path, "m2m:ci", {"access_token": "mat_old"})
    assert path == tmp_path / "m2m%3Aci.token"
    assert json.loads(path.read_text()) == {"access_token": "mat_old"}


def test_cached_secrets_finds_every_token_in_every_file(tmp_path: Path) -> None:
    assert cached_secrets(tmp_path / "missing") == []
    write_cached_login(tmp_path, "a", id_token="mit_1", access_token="mat_1", refresh_token="mrt_1")
    write_cached_login(tmp_path, "b", access_token="mat_2")
    write_cache_entry(tmp_path, "m2m-env:ci", {"access_token": "mat_3", "host": "https://h"})
    write_cache_entry(tmp_path, "registry-x", {"token": "eyJ.reg", "expires_at": "x"})
    (tmp_path / "menda-keyring" / "broken.json").write_text("{not json")
    write_legacy_cache_entry(tmp_path, "old", {"access_token": "mat_4", "refresh_token": "mrt_4"})
    assert sorted(cached_secrets(tmp_path)) == sorted(
        ["mit_1", "mat_1", "mrt_1", "mat_2", "mat_3", "eyJ.reg", "mat_4", "mrt_4"]
    )


def test_cached_secrets_reads_a_token_file_configparser_rejects(tmp_path: Path) -> None:
    (tmp_path / ".token").write_text("no section\naccess_token = mat_lost\n[a\n")
    assert cached_secrets(tmp_path) == ["mat_lost"]
