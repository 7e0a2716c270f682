from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from menda.core_auth import Identity, TokenCache, registry_cache_key, resolve_identity
from menda.error.exceptions import (
    ConfigFileNotFoundError,
    InvalidConfigError,
    MissingHostError,
    MissingM2MCredentialsError,
    ProfileNotFoundError,
)

WriteConfig = Callable[..., Path]

TRIO = {
    "MENDA_CLIENT_ID": "ci-bot",
    "MENDA_CLIENT_SECRET": "env-secret-value",
    "MENDA_HOST": "API.example.menda.cloud/",
}

M2M_PROFILE = (
    "[default]\nhost = profile.example\nauth_type = m2m\n"
    "client_id = profile-id\nclient_secret = profile-secret-value\n"
)


def test_complete_env_trio_gives_m2m_from_env() -> None:
    identity = resolve_identity(dict(TRIO))
    assert identity == Identity(
        host="https://api.example.menda.cloud",
        auth_type="m2m",
        cache_key="m2m-env:ci-bot",
        source="env",
        profile=None,
        client_id="ci-bot",
        client_secret="env-secret-value",
        config_path=None,
    )


def test_complete_env_trio_does_not_read_the_config_file(
    isolated_home: Path, write_config: WriteConfig
) -> None:
    # A broken config file would raise if it were read.
    write_config("this is not INI\n[[[\n")
    assert resolve_identity(dict(TRIO)).source == "env"


def test_env_trio_is_read_from_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in TRIO.items():
        monkeypatch.setenv(name, value)
    assert resolve_identity().cache_key == "m2m-env:ci-bot"


def test_env_trio_with_bad_host_raises_invalid_config_naming_menda_host() -> None:
    env = dict(TRIO, MENDA_HOST="http://api.example.menda.cloud")
    with pytest.raises(InvalidConfigError) as info:
        resolve_identity(env)
    assert info.value.message.startswith(
        "MENDA_HOST 'http://api.example.menda.cloud' must use https"
    )
    assert "env-secret-value" not in info.value.message


@pytest.mark.parametrize(
    "missing",
    [
        ("MENDA_CLIENT_ID",),
        ("MENDA_CLIENT_SECRET",),
        ("MENDA_HOST",),
        ("MENDA_CLIENT_ID", "MENDA_CLIENT_SECRET"),
        ("MENDA_CLIENT_ID", "MENDA_HOST"),
        ("MENDA_CLIENT_SECRET", "MENDA_HOST"),
    ],
)
def test_partial_env_falls_back_to_profile_and_warns(
    write_config: WriteConfig, caplog: pytest.LogCaptureFixture, missing: tuple[str, ...]
) -> None:
    write_config(M2M_PROFILE)
    env = {k: v for k, v in TRIO.items() if k not in missing}
    with caplog.at_level(logging.WARNING, logger="menda.core_auth"):
        identity = resolve_identity(env)
    assert identity.source == "profile:default"
    assert identity.client_id == "profile-id"
    warnings = [r for r in caplog.records if r.name == "menda.core_auth"]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    text = warnings[0].getMessage()
    for name in missing:
        assert name in text
    assert "env-secret-value" not in text


@pytest.mark.parametrize("empty", ["", "   "])
def test_empty_env_values_count_as_unset(
    write_config: WriteConfig, caplog: pytest.LogCaptureFixture, empty: str
) -> None:
    write_config(M2M_PROFILE)
    env = dict(TRIO, MENDA_CLIENT_SECRET=empty)
    with caplog.at_level(logging.WARNING, logger="menda.core_auth"):
        identity = resolve_identity(env)
    assert identity.source == "profile:default"
    assert "MENDA_CLIENT_SECRET" in caplog.text


def test_all_empty_env_values_fall_back_silently(
    write_config: WriteConfig, caplog: pytest.LogCaptureFixture
) -> None:
    write_config(M2M_PROFILE)
    env = {name: "" for name in TRIO}
    with caplog.at_level(logging.DEBUG, logger="menda.core_auth"):
        identity = resolve_identity(env)
    assert identity.source == "profile:default"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_m2m_profile_resolves_with_profile_as_cache_key(write_config: WriteConfig) -> None:
    path = write_config(M2M_PROFILE)
    identity = resolve_identity({})
    assert identity == Identity(
        host="https://profile.example",
        auth_type="m2m",
        cache_key="m2m-profile:default",
        source="profile:default",
        profile="default",
        client_id="profile-id",
        client_secret="profile-secret-value",
        config_path=path,
    )


def test_u2m_profile_resolves_without_client_credentials(write_config: WriteConfig) -> None:
    path = write_config("[dev]\nhost = dev.example\nclient_id = public-cli\n")
    identity = resolve_identity({"MENDA_PROFILE_ID": "dev"})
    assert identity == Identity(
        host="https://dev.example",
        auth_type="u2m",
        cache_key="u2m-profile:dev",
        source="profile:dev",
        profile="dev",
        client_id=None,
        client_secret=None,
        config_path=path,
    )


def test_identity_kinds_with_the_same_name_get_different_cache_keys(
    tmp_path: Path, write_config: WriteConfig
) -> None:
    # One name ("ci") as an env client id, an m2m profile and a u2m profile.
    path = write_config(
        "[ci]\nhost = h.example\nauth_type = m2m\nclient_id = ci\nclient_secret = s\n"
        "[user]\nhost = h.example\n"
    )
    user_path = write_config("[ci]\nhost = h.example\n", tmp_path / "user.cfg")
    from_env = resolve_identity(dict(TRIO, MENDA_CLIENT_ID="ci"))
    m2m_profile = resolve_identity({"MENDA_PROFILE_ID": "ci", "MENDA_CONFIG_FILE": str(path)})
    u2m_profile = resolve_identity({"MENDA_PROFILE_ID": "ci", "MENDA_CONFIG_FILE": str(user_path)})
    keys = [from_env.cache_key, m2m_profile.cache_key, u2m_profile.cache_key]
    assert keys == ["m2m-env:ci", "m2m-profile:ci", "u2m-profile:ci"]
    cache = TokenCache(tmp_path / "cache")
    assert len({cache.path_for(key) for key in keys}) == 3
    assert len({registry_cache_key(key, "https://h.example", "d", "o", "r") for key in keys}) == 3


def test_u2m_resolution_does_not_look_at_the_token_cache(
    write_config: WriteConfig, isolated_home: Path
) -> None:
    write_config("[default]\nhost = h.example\n")
    cache_dir = isolated_home / ".menda" / "tokens" / "cache"
    cache_dir.mkdir(parents=True)
    (cache_dir / ".token").write_bytes(b"\xff not even INI")
    identity = resolve_identity({})
    assert identity.auth_type == "u2m"
    assert identity.cache_key == "u2m-profile:default"


def test_menda_config_file_is_honoured(tmp_path: Path, write_config: WriteConfig) -> None:
    path = write_config("[default]\nhost = alt.example\n", tmp_path / "alt.cfg")
    identity = resolve_identity({"MENDA_CONFIG_FILE": str(path)})
    assert identity.host == "https://alt.example"
    assert identity.config_path == path


def test_default_inheritance_applies_to_resolution(write_config: WriteConfig) -> None:
    write_config(
        "[DEFAULT]\nhost = shared.example\nauth_type = m2m\nclient_id = shared\n"
        "[ci]\nclient_secret = %secret#;\n"
    )
    identity = resolve_identity({"MENDA_PROFILE_ID": "ci"})
    assert identity.host == "https://shared.example"
    assert identity.client_id == "shared"
    assert identity.client_secret == "%secret#;"


def test_no_config_and_no_env_raises_config_file_not_found() -> None:
    with pytest.raises(ConfigFileNotFoundError, match=r"^Menda config file not found"):
        resolve_identity({})


def test_no_config_with_partial_env_mentions_the_missing_variables() -> None:
    with pytest.raises(ConfigFileNotFoundError) as info:
        resolve_identity({"MENDA_HOST": "h.example"})
    message = info.value.message
    assert message.startswith("Menda config file not found")
    assert "MENDA_CLIENT_ID, MENDA_CLIENT_SECRET are not" in message


def test_missing_profile_raises_profile_not_found(write_config: WriteConfig) -> None:
    write_config("[default]\nhost = h.example\n")
    with pytest.raises(ProfileNotFoundError, match=r"^No profile 'prod'"):
        resolve_identity({"MENDA_PROFILE_ID": "prod"})


def test_missing_host_raises(write_config: WriteConfig) -> None:
    write_config("[default]\nauth_type = m2m\n")
    with pytest.raises(MissingHostError, match=r"^Profile 'default' has no host"):
        resolve_identity({})


def test_missing_m2m_secret_raises(write_config: WriteConfig) -> None:
    write_config("[default]\nhost = h.example\nauth_type = m2m\nclient_id = x\n")
    with pytest.raises(MissingM2MCredentialsError, match="client_secret is missing"):
        resolve_identity({})


def test_bad_auth_type_raises(write_config: WriteConfig) -> None:
    write_config("[default]\nhost = h.example\nauth_type = saml\n")
    with pytest.raises(InvalidConfigError, match="auth_type 'saml' is not u2m or m2m"):
        resolve_identity({})


def test_identity_repr_never_shows_the_secret() -> None:
    identity = resolve_identity(dict(TRIO))
    assert "env-secret-value" not in repr(identity)
    assert "env-secret-value" not in str(identity)
    assert "ci-bot" in repr(identity)


def test_identity_is_frozen() -> None:
    identity = resolve_identity(dict(TRIO))
    with pytest.raises(AttributeError):
        identity.host = "https://evil.example"  # type: ignore[misc]
