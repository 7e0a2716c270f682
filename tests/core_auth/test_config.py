from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from menda.core_auth import Profile, default_config_path, load_profile
from menda.error.exceptions import (
    ConfigFileNotFoundError,
    InvalidConfigError,
    MendaConfigError,
    MissingHostError,
    MissingM2MCredentialsError,
    ProfileNotFoundError,
)

WriteConfig = Callable[..., Path]
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="needs FIFOs, devices or symlinks")


def test_default_config_path_is_under_home(isolated_home: Path) -> None:
    assert default_config_path({}) == isolated_home / ".menda" / "mendacfg"


def test_menda_config_file_overrides_the_path(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.ini"
    assert default_config_path({"MENDA_CONFIG_FILE": str(target)}) == target


def test_menda_config_file_expands_tilde(isolated_home: Path) -> None:
    assert default_config_path({"MENDA_CONFIG_FILE": "~/cfg"}) == isolated_home / "cfg"


def test_empty_menda_config_file_counts_as_unset(isolated_home: Path) -> None:
    expected = isolated_home / ".menda" / "mendacfg"
    assert default_config_path({"MENDA_CONFIG_FILE": ""}) == expected


def test_default_profile_is_read_and_host_normalised(write_config: WriteConfig) -> None:
    path = write_config("[default]\nhost = https://API.example.menda.cloud/\n")
    profile = load_profile()
    assert profile == Profile(
        name="default",
        path=path,
        host="https://api.example.menda.cloud",
        auth_type="u2m",
        client_id=None,
        client_secret=None,
    )


def test_menda_profile_id_selects_the_section(write_config: WriteConfig) -> None:
    write_config("[default]\nhost = a.example\n\n[ci]\nhost = b.example\n")
    profile = load_profile(environ={"MENDA_PROFILE_ID": "ci"})
    assert profile.name == "ci"
    assert profile.host == "https://b.example"


def test_explicit_name_beats_menda_profile_id(write_config: WriteConfig) -> None:
    write_config("[default]\nhost = a.example\n\n[ci]\nhost = b.example\n")
    assert load_profile("default", environ={"MENDA_PROFILE_ID": "ci"}).name == "default"


def test_empty_menda_profile_id_means_default(write_config: WriteConfig) -> None:
    write_config("[default]\nhost = a.example\n")
    assert load_profile(environ={"MENDA_PROFILE_ID": ""}).name == "default"


def test_menda_config_file_env_is_used(tmp_path: Path, write_config: WriteConfig) -> None:
    path = write_config("[default]\nhost = c.example\n", tmp_path / "other" / "cfg")
    profile = load_profile(environ={"MENDA_CONFIG_FILE": str(path)})
    assert profile.path == path
    assert profile.host == "https://c.example"


def test_explicit_path_argument_is_used(tmp_path: Path, write_config: WriteConfig) -> None:
    path = write_config("[default]\nhost = d.example\n", tmp_path / "x.cfg")
    assert load_profile(path=path).host == "https://d.example"


def test_m2m_profile_keeps_secrets_with_percent_hash_and_semicolon(
    write_config: WriteConfig,
) -> None:
    write_config(
        "[default]\n"
        "HOST = api.example.menda.cloud\n"
        "Auth_Type = M2M\n"
        "client_id = ci-bot\n"
        "client_secret =   p%40ss%(x)s #not-a-comment ;nor-this  \n"
    )
    profile = load_profile()
    assert profile.auth_type == "m2m"
    assert profile.client_id == "ci-bot"
    assert profile.client_secret == "p%40ss%(x)s #not-a-comment ;nor-this"


def test_full_line_comments_and_unknown_keys_are_ignored(write_config: WriteConfig) -> None:
    write_config(
        "# written by menda auth configure\n"
        "; another comment\n"
        "[default]\n"
        "host = api.example.menda.cloud\n"
        "# client_secret = commented out\n"
        "favourite_colour = blue\n"
        "cli_version = 3\n"
    )
    profile = load_profile()
    assert profile.auth_type == "u2m"
    assert profile.client_secret is None


def test_upper_case_default_section_is_inherited(write_config: WriteConfig) -> None:
    write_config(
        "[DEFAULT]\nhost = shared.example\nauth_type = m2m\nclient_id = shared-id\n\n"
        "[ci]\nclient_secret = s\n\n"
        "[other]\nhost = other.example\nauth_type = u2m\n"
    )
    ci = load_profile("ci")
    assert (ci.host, ci.auth_type, ci.client_id) == ("https://shared.example", "m2m", "shared-id")
    other = load_profile("other")
    assert (other.host, other.auth_type) == ("https://other.example", "u2m")


def test_upper_case_default_is_not_itself_a_profile(write_config: WriteConfig) -> None:
    path = write_config("[DEFAULT]\nhost = shared.example\n")
    with pytest.raises(ProfileNotFoundError) as info:
        load_profile()
    assert info.value.message.startswith("No profile 'default'")
    assert str(path) in info.value.message
    with pytest.raises(ProfileNotFoundError):
        load_profile("DEFAULT")


def test_lower_case_default_is_an_ordinary_profile(write_config: WriteConfig) -> None:
    write_config("[default]\nhost = one.example\n[DEFAULT]\nhost = two.example\n")
    assert load_profile().host == "https://one.example"


def test_auth_type_is_case_insensitive_and_defaults_to_u2m(write_config: WriteConfig) -> None:
    write_config("[a]\nhost = h.example\nauth_type = U2M\n[b]\nhost = h.example\nauth_type =\n")
    assert load_profile("a").auth_type == "u2m"
    assert load_profile("b").auth_type == "u2m"


def test_repr_masks_the_client_secret(write_config: WriteConfig) -> None:
    write_config(
        "[default]\nhost = h.example\nauth_type = m2m\nclient_id = id\n"
        "client_secret = topsecretvalue\n"
    )
    profile = load_profile()
    assert "topsecretvalue" not in repr(profile)
    assert "***" in repr(profile)


def test_profile_is_frozen(write_config: WriteConfig) -> None:
    write_config("[default]\nhost = h.example\n")
    profile = load_profile()
    with pytest.raises(AttributeError):
        profile.host = "x"  # type: ignore[misc]


def test_bom_at_start_of_file_is_accepted(isolated_home: Path) -> None:
    path = isolated_home / ".menda" / "mendacfg"
    path.parent.mkdir()
    path.write_bytes(b"\xef\xbb\xbf[default]\nhost = h.example\n")
    assert load_profile().host == "https://h.example"


# ----------------------------------------------------------------------------- errors


def test_missing_file_raises_config_file_not_found(isolated_home: Path) -> None:
    with pytest.raises(ConfigFileNotFoundError) as info:
        load_profile()
    message = info.value.message
    assert message.startswith("Menda config file not found")
    assert str(isolated_home / ".menda" / "mendacfg") in message
    assert "menda auth configure" in message
    for name in ("MENDA_CLIENT_ID", "MENDA_CLIENT_SECRET", "MENDA_HOST"):
        assert name in message


def test_missing_file_named_by_menda_config_file(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "cfg"
    with pytest.raises(ConfigFileNotFoundError, match="Menda config file not found") as info:
        load_profile(environ={"MENDA_CONFIG_FILE": str(path)})
    assert str(path) in info.value.message


def test_config_path_below_a_regular_file_is_not_found(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigFileNotFoundError):
        load_profile(path=blocker / "mendacfg")


def test_missing_profile_lists_the_existing_ones(write_config: WriteConfig) -> None:
    path = write_config("[alpha]\nhost = a.example\n[beta]\nhost = b.example\n")
    with pytest.raises(ProfileNotFoundError) as info:
        load_profile(environ={"MENDA_PROFILE_ID": "gamma"})
    message = info.value.message
    assert message.startswith("No profile 'gamma'")
    assert str(path) in message
    assert "'alpha'" in message
    assert "'beta'" in message
    assert "MENDA_PROFILE_ID" in message


def test_empty_file_has_no_profiles(write_config: WriteConfig) -> None:
    write_config("")
    with pytest.raises(ProfileNotFoundError, match=r"^No profile 'default'.*none"):
        load_profile()


def test_profile_without_host_raises_missing_host(write_config: WriteConfig) -> None:
    path = write_config("[dev]\nauth_type = u2m\n")
    with pytest.raises(MissingHostError) as info:
        load_profile("dev")
    assert info.value.message.startswith("Profile 'dev' has no host")
    assert str(path) in info.value.message


def test_profile_with_empty_host_raises_missing_host(write_config: WriteConfig) -> None:
    write_config("[dev]\nhost =   \n")
    with pytest.raises(MissingHostError, match=r"^Profile 'dev' has no host"):
        load_profile("dev")


@pytest.mark.parametrize(
    ("body", "missing", "present"),
    [
        ("client_id = x\n", "client_secret", None),
        ("client_secret = supersecret\n", "client_id", None),
        ("client_id = \nclient_secret =\n", "client_id and client_secret", None),
        ("", "client_id and client_secret", None),
    ],
)
def test_m2m_profile_missing_credentials_names_the_missing_one(
    write_config: WriteConfig, body: str, missing: str, present: str | None
) -> None:
    path = write_config("[dev]\nhost = h.example\nauth_type = m2m\n" + body)
    with pytest.raises(MissingM2MCredentialsError) as info:
        load_profile("dev")
    message = info.value.message
    assert message.startswith(
        "Profile 'dev' has auth_type=m2m but is missing client_id or client_secret"
    )
    assert f": {missing} " in message
    assert str(path) in message
    assert "supersecret" not in message


def test_bad_auth_type_raises_invalid_config(write_config: WriteConfig) -> None:
    path = write_config("[dev]\nhost = h.example\nauth_type = sso\n")
    with pytest.raises(InvalidConfigError) as info:
        load_profile("dev")
    assert info.value.message.startswith(
        f"Profile 'dev' in {path}: auth_type 'sso' is not u2m or m2m"
    )


def test_bad_host_in_profile_names_profile_and_file(write_config: WriteConfig) -> None:
    path = write_config("[dev]\nhost = http://api.example.menda.cloud\n")
    with pytest.raises(InvalidConfigError) as info:
        load_profile("dev")
    assert info.value.message.startswith(
        f"host of profile 'dev' in {path} 'http://api.example.menda.cloud' must use https"
    )


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("host = h.example\n[default]\n", 1),
        ("[default]\nhost = a\n[default]\nhost = b\n", 3),
        ("[default]\nhost = a\nHost = b\n", 3),
        ("[default]\nhost = a\nthis line has no equals sign secretish\n", 3),
    ],
)
def test_unparseable_file_raises_invalid_config_naming_file_and_line(
    write_config: WriteConfig, text: str, line: int
) -> None:
    path = write_config(text)
    with pytest.raises(InvalidConfigError) as info:
        load_profile()
    message = info.value.message
    assert str(path) in message
    assert f"line {line}" in message
    assert "secretish" not in message


def test_non_utf8_file_raises_invalid_config_naming_the_line(isolated_home: Path) -> None:
    path = isolated_home / ".menda" / "mendacfg"
    path.parent.mkdir()
    path.write_bytes(b"[default]\nhost = h.example\nclient_secret = \xff\xfe\n")
    with pytest.raises(InvalidConfigError) as info:
        load_profile()
    assert str(path) in info.value.message
    assert "line 3" in info.value.message


def test_directory_instead_of_file_raises_invalid_config(isolated_home: Path) -> None:
    path = isolated_home / ".menda" / "mendacfg"
    path.mkdir(parents=True)
    with pytest.raises(InvalidConfigError) as info:
        load_profile()
    assert info.value.message.startswith(f"Menda config file {path} is a directory")
    assert "MENDA_CONFIG_FILE" in info.value.message


@posix_only
def test_fifo_instead_of_file_raises_invalid_config_at_once(
    isolated_home: Path, without_hanging: Callable[..., Any]
) -> None:
    path = isolated_home / ".menda" / "mendacfg"
    path.parent.mkdir()
    os.mkfifo(path)
    started = time.monotonic()
    outcome = without_hanging(load_profile, path)
    assert time.monotonic() - started < 2
    assert isinstance(outcome, InvalidConfigError)
    assert outcome.message.startswith(f"Menda config file {path} is a FIFO")
    assert "not a regular file" in outcome.message


@posix_only
def test_fifo_named_by_menda_config_file_through_a_symlink_is_refused(
    tmp_path: Path, without_hanging: Callable[..., Any]
) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / "cfg"
    link.symlink_to(fifo)
    outcome = without_hanging(lambda: load_profile(environ={"MENDA_CONFIG_FILE": str(link)}), fifo)
    assert isinstance(outcome, InvalidConfigError)
    assert "is a FIFO" in outcome.message


@posix_only
def test_device_instead_of_file_raises_invalid_config() -> None:
    with pytest.raises(InvalidConfigError, match="is a device"):
        load_profile(path=Path("/dev/null"))


@posix_only
def test_symlinked_config_file_is_followed(tmp_path: Path, write_config: WriteConfig) -> None:
    # Dotfile managers keep ~/.menda/mendacfg as a link into a repository.
    target = write_config("[default]\nhost = linked.example\n", tmp_path / "dotfiles" / "cfg")
    link = tmp_path / "home" / ".menda" / "mendacfg"
    link.parent.mkdir(parents=True)
    link.symlink_to(target)
    assert load_profile().host == "https://linked.example"


@posix_only
def test_dangling_symlink_is_config_file_not_found(isolated_home: Path) -> None:
    link = isolated_home / ".menda" / "mendacfg"
    link.parent.mkdir()
    link.symlink_to(isolated_home / "gone")
    with pytest.raises(ConfigFileNotFoundError, match=r"^Menda config file not found"):
        load_profile()


@posix_only
def test_symlink_loop_raises_invalid_config(isolated_home: Path) -> None:
    link = isolated_home / ".menda" / "mendacfg"
    link.parent.mkdir()
    link.symlink_to(link)
    with pytest.raises(InvalidConfigError) as info:
        load_profile()
    assert info.value.message.startswith(f"Menda config file {link} cannot be read")


def test_oversized_file_raises_invalid_config(write_config: WriteConfig) -> None:
    path = write_config("[default]\nhost = h.example\n# " + "x" * (1 << 20) + "\n")
    with pytest.raises(InvalidConfigError) as info:
        load_profile()
    assert info.value.message.startswith(f"Menda config file {path} is larger than")


@pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX file modes")
@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads anyway")
def test_unreadable_file_raises_invalid_config(write_config: WriteConfig) -> None:
    path = write_config("[default]\nhost = h.example\n")
    path.chmod(0)
    try:
        with pytest.raises(InvalidConfigError) as info:
            load_profile()
    finally:
        path.chmod(0o600)
    assert str(path) in info.value.message
    assert "cannot be read" in info.value.message


def test_every_config_error_is_a_menda_config_error() -> None:
    for cls in (
        ConfigFileNotFoundError,
        ProfileNotFoundError,
        MissingHostError,
        MissingM2MCredentialsError,
        InvalidConfigError,
    ):
        assert issubclass(cls, MendaConfigError)


def test_unknown_home_raises_config_file_not_found(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    with pytest.raises(ConfigFileNotFoundError) as info:
        load_profile(environ={})
    assert info.value.message.startswith("Menda config file not found")
    assert "MENDA_CONFIG_FILE" in info.value.message


def test_config_path_with_nul_byte_raises_invalid_config() -> None:
    with pytest.raises(InvalidConfigError, match="not a valid file name"):
        load_profile(environ={"MENDA_CONFIG_FILE": "/tmp/a\0b"})
