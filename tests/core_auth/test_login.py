"""The Menda CLI's token file ``<cache dir>/.token``: ``CliTokenFile`` and ``Login``.

The file is written here by a stand-in for menda-cli 0.5.0 (``cli`` fixture:
default ConfigParser, ``parser.write``), and what we write is read back by the
same stand-in, with the CLI model's rules.
"""

from __future__ import annotations

import logging
import os
import stat
import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from menda.core_auth import CliTokenFile, Login, LoginFileState, TokenCache

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX file modes")

NOW = datetime(2026, 11, 27, 6, 0, 0, tzinfo=timezone.utc)
T0 = NOW.timestamp()
HOST = "https://api.example.menda.cloud"


@pytest.fixture(autouse=True)
def frozen_now(clock: Any) -> None:
    clock.set(NOW)


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def token_file(cache_dir: Path) -> CliTokenFile:
    return CliTokenFile(cache_dir / ".token")


@pytest.fixture
def cli(cli_factory: Callable[[Path], Any], cache_dir: Path) -> Any:
    return cli_factory(cache_dir)


def fresh_login(**overrides: Any) -> Login:
    values: dict[str, Any] = {
        "access_token": "new-access",
        "expires_in": 3600,
        "token_type": "Bearer",
        "id_token": "new-id",
        "refresh_token": "new-refresh",
        "cached_at": T0 + 0.25,
    }
    values.update(overrides)
    return Login(**values)


def write_raw(token_file: CliTokenFile, data: bytes | str) -> bytes:
    token_file.path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    token_file.path.write_bytes(raw)
    return raw


# ----------------------------------------------------------------------------- load


def test_login_written_by_the_cli_is_loaded(cli: Any, token_file: CliTokenFile) -> None:
    cli.write("default", cached_at=T0 - 100.5)
    login = token_file.load("default")
    assert login == Login(
        access_token="cli-access-token",
        expires_in=3600,
        token_type="Bearer",
        id_token="cli-id-token",
        refresh_token="cli-refresh-token",
        cached_at=T0 - 100.5,
    )
    assert login.is_valid()
    assert login.expires_at == NOW + timedelta(seconds=3600 - 100.5)


def test_each_profile_has_its_own_section(cli: Any, token_file: CliTokenFile) -> None:
    cli.write("default", access_token="a-default", cached_at=T0)
    cli.write("dev", access_token="a-dev", cached_at=T0)
    cli.write("ci.prod", access_token="a-ci", cached_at=T0)
    logins = [token_file.load(p) for p in ("default", "dev", "ci.prod")]
    assert [login.access_token if login else None for login in logins] == [
        "a-default",
        "a-dev",
        "a-ci",
    ]
    assert token_file.load("Default") is None  # section names are case-sensitive
    assert token_file.load("other") is None


@pytest.mark.parametrize(
    ("elapsed", "valid"),
    [
        (0.0, True),
        (3539.999, True),
        (3540.0, False),  # now - cached_at == expires_in - 60: the CLI says expired
        (3541.0, False),
        (3600.0, False),
        (86400.0, False),
    ],
)
def test_validity_is_the_cli_rule_with_a_60_second_margin(
    cli: Any, token_file: CliTokenFile, elapsed: float, valid: bool
) -> None:
    cli.write("default", cached_at=T0 - elapsed)
    login = token_file.load("default")
    assert login is not None
    assert login.is_valid() is valid
    assert cli.is_expired(cli.read("default"), T0) is not valid


def test_validity_follows_the_clock(cli: Any, token_file: CliTokenFile, clock: Any) -> None:
    cli.write("default", expires_in=120, cached_at=T0)
    login = token_file.load("default")
    assert login is not None
    assert login.is_valid()
    clock.advance(59)
    assert login.is_valid()
    clock.advance(1)
    assert not login.is_valid()
    assert login.is_valid(NOW)


def test_empty_cached_at_is_an_expired_login(cli: Any, token_file: CliTokenFile) -> None:
    cli.write("default", cached_at=None)
    login = token_file.load("default")
    assert login is not None
    assert login.cached_at is None
    assert login.expires_at is None
    assert not login.is_valid()
    assert login.refresh_token == "cli-refresh-token"  # still refreshable


def test_cached_at_slightly_ahead_is_valid_but_a_day_ahead_is_a_wrong_clock(
    cli: Any, token_file: CliTokenFile
) -> None:
    cli.write("soon", cached_at=T0 + 3600)
    cli.write("far", cached_at=T0 + 86400 + 1)
    soon, far = token_file.load("soon"), token_file.load("far")
    assert soon is not None
    assert far is not None
    assert soon.is_valid()
    assert not soon.is_from_the_future()
    assert not far.is_valid()
    assert far.is_from_the_future()


@pytest.mark.parametrize("expires_in", ["", "abc", "3600.0", "1e3", "٣٦٠٠", "0x10", "3 600"])
def test_bad_expires_in_is_no_login(cli: Any, token_file: CliTokenFile, expires_in: str) -> None:
    cli.write("default", expires_in=expires_in, cached_at=T0)
    cli.write("good", cached_at=T0)
    assert token_file.load("default") is None
    assert token_file.load("good") is not None


def test_huge_expires_in_is_no_login_not_a_crash(cli: Any, token_file: CliTokenFile) -> None:
    # int() of more than 4300 digits raises ValueError on Python >= 3.11.
    cli.write("default", expires_in="9" * 5000, cached_at=T0)
    assert token_file.load("default") is None


@pytest.mark.parametrize("cached_at", ["abc", "nan", "inf", "-inf", "1,5"])
def test_bad_cached_at_is_no_login(cli: Any, token_file: CliTokenFile, cached_at: str) -> None:
    cli.write("default", cached_at=cached_at)
    assert token_file.load("default") is None


@pytest.mark.parametrize("missing", ["access_token", "expires_in", "token_type"])
def test_section_without_a_required_key_is_no_login(token_file: CliTokenFile, missing: str) -> None:
    lines = {
        "access_token": "access_token = a",
        "expires_in": "expires_in = 3600",
        "token_type": "token_type = Bearer",
    }
    body = "\n".join(line for key, line in lines.items() if key != missing)
    write_raw(token_file, f"[default]\n{body}\ncached_at = {T0}\n")
    assert token_file.load("default") is None


def test_optional_keys_may_be_absent_or_empty(token_file: CliTokenFile) -> None:
    write_raw(
        token_file,
        f"[default]\naccess_token = a\nexpires_in = 3600\ntoken_type = Bearer\ncached_at = {T0}\n"
        f"[dev]\nid_token =\naccess_token = b\nrefresh_token =\nexpires_in = 60\n"
        f"token_type = Bearer\ncached_at = {T0}\n",
    )
    assert token_file.load("default") == Login("a", 3600, "Bearer", "", "", T0)
    assert token_file.load("dev") == Login("b", 60, "Bearer", "", "", T0)


def test_windows_line_endings_are_read(token_file: CliTokenFile) -> None:
    write_raw(
        token_file,
        f"[default]\r\nid_token = i\r\naccess_token = a\r\nrefresh_token = r\r\n"
        f"expires_in = 3600\r\ntoken_type = Bearer\r\ncached_at = {T0}\r\n\r\n",
    )
    assert token_file.load("default") == Login("a", 3600, "Bearer", "i", "r", T0)


def test_missing_file_or_section_is_no_login(cli: Any, token_file: CliTokenFile) -> None:
    assert token_file.load("default") is None
    cli.write("dev", cached_at=T0)
    assert token_file.load("default") is None


UNPARSEABLE = [
    pytest.param(b"access_token = a\n", id="no-section-header"),
    pytest.param(b"[default]\naccess_token = a\n[default]\naccess_token = b\n", id="dup-section"),
    pytest.param(b"[default]\naccess_token = a\naccess_token = b\n", id="dup-key"),
    pytest.param(b"[default]\njust some words\n", id="key-without-value"),
    pytest.param(b"[default]\naccess_token = \xff\xfe\n", id="not-utf8"),
    pytest.param(b'{"access_token": "a", "expires_at": "2026-11-27T07:00:00Z"}', id="json"),
    pytest.param(b"[default\naccess_token = a\n", id="bad-header"),
    pytest.param(b"\x00\x01\x02", id="binary"),
]


@pytest.mark.parametrize("data", UNPARSEABLE)
def test_unparseable_file_is_no_login_and_is_never_rewritten(
    token_file: CliTokenFile, data: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    write_raw(token_file, data)
    before = token_file.path.stat()
    with caplog.at_level(logging.DEBUG):
        assert token_file.load("default") is None
        assert token_file.store("default", fresh_login()) is False
        assert token_file.remove("default") is False
    assert token_file.path.read_bytes() == data
    assert token_file.path.stat().st_ino == before.st_ino
    assert sorted(p.name for p in token_file.path.parent.iterdir()) == [".token"]
    state = token_file.state()
    assert state.exists
    assert not state.parses
    assert state.problem == "is not a valid INI file"
    assert "new-access" not in caplog.text


def test_parse_errors_never_echo_the_line(
    token_file: CliTokenFile, caplog: pytest.LogCaptureFixture
) -> None:
    write_raw(token_file, "[default]\naccess_token = a\nsecret-token-line-without-equals\n")
    with caplog.at_level(logging.DEBUG):
        assert token_file.load("default") is None
    assert "secret-token-line" not in caplog.text


def test_oversized_file_is_no_login_and_is_never_rewritten(token_file: CliTokenFile) -> None:
    data = f"[default]\naccess_token = {'a' * (1 << 20)}\nexpires_in = 3600\n".encode()
    write_raw(token_file, data)
    assert token_file.load("default") is None
    assert token_file.store("default", fresh_login()) is False
    assert token_file.path.read_bytes() == data


@posix_only
def test_symlinked_token_file_is_not_followed(
    cli_factory: Callable[[Path], Any], tmp_path: Path, token_file: CliTokenFile
) -> None:
    elsewhere = cli_factory(tmp_path / "elsewhere")
    elsewhere.write("default", cached_at=T0)
    target_bytes = elsewhere.path.read_bytes()
    token_file.path.parent.mkdir()
    token_file.path.symlink_to(elsewhere.path)
    assert token_file.load("default") is None
    assert token_file.store("default", fresh_login()) is False
    assert token_file.remove("default") is False
    assert token_file.path.is_symlink()
    assert elsewhere.path.read_bytes() == target_bytes
    state = token_file.state()
    assert state.exists
    assert not state.parses
    assert state.problem is not None
    assert "symbolic link" in state.problem


@posix_only
def test_token_file_that_is_a_fifo_does_not_hang(
    token_file: CliTokenFile, without_hanging: Callable[..., Any]
) -> None:
    token_file.path.parent.mkdir()
    os.mkfifo(token_file.path)
    assert without_hanging(lambda: token_file.load("default"), token_file.path) is None
    stored = without_hanging(lambda: token_file.store("default", fresh_login()), token_file.path)
    assert stored is False
    assert stat.S_ISFIFO(token_file.path.lstat().st_mode)
    state = without_hanging(token_file.state, token_file.path)
    assert isinstance(state, LoginFileState)
    assert not state.parses
    assert state.problem is not None
    assert "FIFO" in state.problem


def test_token_file_that_is_a_directory_is_no_login(token_file: CliTokenFile) -> None:
    token_file.path.mkdir(parents=True)
    assert token_file.load("default") is None
    assert token_file.store("default", fresh_login()) is False
    assert token_file.path.is_dir()


def test_state_of_a_missing_and_of_a_good_file(cli: Any, token_file: CliTokenFile) -> None:
    assert token_file.state() == LoginFileState(
        path=token_file.path, exists=False, parses=False, mode=None, profiles=(), problem=None
    )
    cli.write("default", cached_at=T0)
    cli.write("dev", cached_at=T0)
    state = token_file.state()
    assert state.exists
    assert state.parses
    assert state.profiles == ("default", "dev")
    assert state.problem is None
    assert state.mode is not None
    assert "cli-access-token" not in repr(state)


# ----------------------------------------------------------------------------- Login


def test_bearer_is_the_id_token_when_there_is_one() -> None:
    assert fresh_login().bearer == "new-id"
    assert fresh_login(id_token="").bearer == "new-access"


def test_login_repr_masks_every_token() -> None:
    text = repr(fresh_login(access_token="SECRET-A", id_token="SECRET-I", refresh_token="SECRET-R"))
    for secret in ("SECRET-A", "SECRET-I", "SECRET-R"):
        assert secret not in text
    assert "***" in text
    assert "3600" in text
    assert str(fresh_login(access_token="SECRET-A")).count("SECRET") == 0


def test_login_section_has_the_cli_keys_order_and_formats() -> None:
    section = fresh_login(cached_at=1764540000.123456).section()
    assert list(section) == [
        "id_token",
        "access_token",
        "refresh_token",
        "expires_in",
        "token_type",
        "cached_at",
    ]
    assert section["expires_in"] == "3600"
    assert section["cached_at"] == "1764540000.123456"
    assert fresh_login(cached_at=None).section()["cached_at"] == ""
    assert fresh_login(cached_at=1764540000).section()["cached_at"] == "1764540000.0"  # str(float)


# ----------------------------------------------------------------------------- store


def test_store_writes_exactly_what_the_cli_writes(
    cli_factory: Callable[[Path], Any], tmp_path: Path, token_file: CliTokenFile, cli: Any
) -> None:
    twin = cli_factory(tmp_path / "twin")
    for writer in (cli, twin):
        writer.write("default", cached_at=T0 - 4000)
        writer.write("dev", access_token="dev-token", cached_at=T0 - 10)
    login = fresh_login(cached_at=1764540000.123456)
    assert token_file.store("default", login)
    twin.write(
        "default",
        access_token="new-access",
        id_token="new-id",
        refresh_token="new-refresh",
        expires_in=3600,
        token_type="Bearer",
        cached_at=1764540000.123456,
    )
    assert token_file.path.read_bytes() == twin.path.read_bytes()


def test_store_into_a_new_file_gives_the_cli_layout(token_file: CliTokenFile) -> None:
    assert token_file.store("default", fresh_login(cached_at=1764540000.123456))
    assert token_file.path.read_text("utf-8") == (
        "[default]\n"
        "id_token = new-id\n"
        "access_token = new-access\n"
        "refresh_token = new-refresh\n"
        "expires_in = 3600\n"
        "token_type = Bearer\n"
        "cached_at = 1764540000.123456\n"
        "\n"
    )


def test_empty_values_are_written_as_the_cli_writes_them(token_file: CliTokenFile) -> None:
    assert token_file.store("default", fresh_login(id_token="", refresh_token="", cached_at=None))
    text = token_file.path.read_text("utf-8")
    assert "id_token = \n" in text
    assert "refresh_token = \n" in text
    assert "cached_at = \n" in text


def test_what_we_store_the_cli_reads_and_finds_valid(cli: Any, token_file: CliTokenFile) -> None:
    cli.write("default", cached_at=T0 - 7200)
    assert cli.is_expired(cli.read("default"), T0)
    assert token_file.store("default", fresh_login())
    login = cli.read("default")
    assert login == {
        "id_token": "new-id",
        "access_token": "new-access",
        "refresh_token": "new-refresh",
        "expires_in": 3600,
        "token_type": "Bearer",
        "cached_at": T0 + 0.25,
    }
    assert not cli.is_expired(login, T0)
    assert token_file.load("default") == fresh_login()


def test_store_keeps_every_other_section(cli: Any, token_file: CliTokenFile) -> None:
    cli.write("default", cached_at=T0 - 4000)
    cli.write("dev", access_token="dev-token", cached_at=T0 - 10)
    cli.write("ci.prod", cached_at=None)
    # Sections the CLI's model would reject are kept as they are, too.
    with token_file.path.open("a", encoding="utf-8") as f:
        f.write("[odd]\nextra = 1\nmulti = first\n  second\npercent = 100%\n\n")
    before = cli.sections()
    assert token_file.store("default", fresh_login())
    after = cli.sections()
    assert list(after) == list(before)
    for name in ("dev", "ci.prod", "odd"):
        assert after[name] == before[name]
    assert after["default"] == fresh_login().section()
    assert cli.read("dev")["access_token"] == "dev-token"


def test_store_adds_a_section_at_the_end(cli: Any, token_file: CliTokenFile) -> None:
    cli.write("default", cached_at=T0)
    assert token_file.store("new", fresh_login())
    assert list(cli.sections()) == ["default", "new"]


@posix_only
def test_store_creates_a_private_file_and_directory(
    tmp_path: Path, token_file: CliTokenFile
) -> None:
    old = os.umask(0o022)
    try:
        assert token_file.store("default", fresh_login())
    finally:
        os.umask(old)
    assert stat.S_IMODE(token_file.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(token_file.path.parent.stat().st_mode) == 0o700


@posix_only
def test_store_replaces_a_cli_file_with_a_0600_one(cli: Any, token_file: CliTokenFile) -> None:
    cli.write("default", cached_at=T0 - 7200)
    token_file.path.chmod(0o644)  # what the CLI leaves with the default umask
    inode = token_file.path.stat().st_ino
    assert token_file.store("default", fresh_login())
    assert stat.S_IMODE(token_file.path.stat().st_mode) == 0o600
    assert token_file.path.stat().st_ino != inode  # replaced, not rewritten in place


def test_store_is_atomic_when_the_replace_fails(
    cli: Any, token_file: CliTokenFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli.write("default", cached_at=T0 - 7200)
    before = token_file.path.read_bytes()

    def fail(*args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    assert token_file.store("default", fresh_login()) is False
    assert token_file.path.read_bytes() == before
    assert sorted(p.name for p in token_file.path.parent.iterdir()) == [".token"]


def test_store_leaves_no_temporary_files(token_file: CliTokenFile) -> None:
    for i in range(5):
        assert token_file.store(f"p{i}", fresh_login())
    assert sorted(p.name for p in token_file.path.parent.iterdir()) == [".token"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"access_token": "abc%def"},
        {"id_token": "a%(x)s"},
        {"refresh_token": "line\nbreak"},
        {"access_token": "carriage\rreturn"},
        {"token_type": "Bearer\n[evil]"},
    ],
)
def test_store_refuses_values_the_cli_could_not_read_back(
    cli: Any, token_file: CliTokenFile, overrides: dict[str, str]
) -> None:
    cli.write("default", cached_at=T0 - 7200)
    before = token_file.path.read_bytes()
    assert token_file.store("default", fresh_login(**overrides)) is False
    assert token_file.path.read_bytes() == before


@pytest.mark.parametrize("profile", ["a%b", "new\nline", "car\rriage"])
def test_store_refuses_profile_names_the_cli_could_not_read_back(
    cli: Any, token_file: CliTokenFile, profile: str
) -> None:
    cli.write("default", cached_at=T0)
    before = token_file.path.read_bytes()
    assert token_file.store(profile, fresh_login()) is False
    assert token_file.path.read_bytes() == before


@pytest.mark.parametrize("profile", ["", "DEFAULT", " ", "\t", "a]b", "]", "tab\there", "bell\x07"])
def test_store_refuses_a_profile_that_is_not_a_section(
    cli: Any, token_file: CliTokenFile, profile: str
) -> None:
    # configparser puts the values of section "" and "DEFAULT" into [DEFAULT]
    # (inherited by every login), and "" also writes a "[]" header that makes the
    # whole file unparseable for the CLI and for us.
    cli.write("default", cached_at=T0)
    before = token_file.path.read_bytes()
    assert token_file.store(profile, fresh_login()) is False
    assert token_file.path.read_bytes() == before
    assert token_file.load("default") is not None


@pytest.mark.parametrize(
    ("profile", "overrides"),
    [("bad\udcff", {}), ("default", {"access_token": "bad\udcff"})],
)
def test_store_of_unencodable_text_returns_false(
    token_file: CliTokenFile, profile: str, overrides: dict[str, str]
) -> None:
    # A lone surrogate (MENDA_PROFILE_ID from a non-UTF-8 environment) cannot be
    # encoded: no write, and no UnicodeEncodeError either.
    assert token_file.store(profile, fresh_login(**overrides)) is False
    assert not token_file.path.exists()


@pytest.mark.parametrize(
    "profile", [" padded ", "[x", "a=b", "#x", ";x", "ci.prod", "é", "a:b", "default "]
)
def test_odd_profile_names_round_trip(cli: Any, token_file: CliTokenFile, profile: str) -> None:
    cli.write("default", cached_at=T0)
    assert token_file.store(profile, fresh_login())
    assert token_file.load(profile) == fresh_login()
    assert cli.read(profile)["access_token"] == "new-access"
    assert token_file.load("default") is not None


def test_store_below_a_regular_file_returns_false(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    token_file = CliTokenFile(blocker / "cache" / ".token")
    assert token_file.load("default") is None
    assert token_file.store("default", fresh_login()) is False
    assert token_file.remove("default") is False
    with token_file.lock(timeout=0.1) as held:
        assert held is False


# ----------------------------------------------------------------------------- remove


def test_remove_drops_only_that_section(cli: Any, token_file: CliTokenFile) -> None:
    cli.write("default", cached_at=T0)
    cli.write("dev", access_token="dev-token", cached_at=T0)
    cli.write("ci", cached_at=T0)
    before = cli.sections()
    assert token_file.remove("dev") is True
    after = cli.sections()
    assert list(after) == ["default", "ci"]
    assert after["default"] == before["default"]
    assert after["ci"] == before["ci"]
    assert token_file.load("dev") is None


def test_remove_of_an_absent_section_or_file_returns_false(
    cli: Any, token_file: CliTokenFile
) -> None:
    assert token_file.remove("default") is False
    cli.write("default", cached_at=T0)
    assert token_file.remove("dev") is False
    assert token_file.load("default") is not None


# ----------------------------------------------------------------------------- lock


@posix_only
def test_lock_file_is_dot_token_lock_beside_the_file(cli: Any, token_file: CliTokenFile) -> None:
    cli.write("default", cached_at=T0)
    with token_file.lock() as held:
        assert held is True
        lock_path = token_file.path.parent / ".token.lock"
        assert lock_path.is_file()
        assert stat.S_IMODE(lock_path.stat().st_mode) == 0o600
        # The lock guards "read again, refresh, write": storing while holding it works.
        assert token_file.store("default", fresh_login())
    assert lock_path.exists()  # kept: unlinking would let two holders in
    assert token_file.path.read_text("utf-8").startswith("[default]\n")


def test_lock_excludes_a_second_holder_and_wait_is_bounded(
    cli: Any, token_file: CliTokenFile
) -> None:
    cli.write("default", cached_at=T0)
    with token_file.lock() as first:
        assert first is True
        with CliTokenFile(token_file.path).lock(timeout=0.1) as second:
            assert second is False
    with token_file.lock(timeout=0.1) as again:
        assert again is True


def test_token_file_lock_and_entry_locks_are_different_files(cache_dir: Path) -> None:
    cache = TokenCache(cache_dir)
    cache_dir.mkdir()  # a login exists only once the CLI made the directory
    with cache.logins.lock() as a, cache.lock(".token", timeout=0) as b:
        assert a is True
        assert b is True
    assert (cache_dir / ".token.lock").exists()
    assert (cache.entries_dir / "%2Etoken.lock").exists()


def test_repr_names_the_path(token_file: CliTokenFile) -> None:
    assert repr(token_file) == f"CliTokenFile({str(token_file.path)!r})"


def test_unknown_home_never_touches_a_relative_tilde_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With no home directory the cache path is the relative "~/.menda/tokens/cache":
    # nothing may be read from or written to a "~" directory below the current one.
    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    monkeypatch.chdir(tmp_path)
    cache = TokenCache(environ={})
    assert cache.logins.load("default") is None
    assert cache.logins.store("default", fresh_login()) is False
    assert not (tmp_path / "~").exists()
