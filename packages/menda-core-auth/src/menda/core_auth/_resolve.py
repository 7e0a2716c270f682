"""Resolution order: M2M from the environment, else the selected profile (docs/files.md)."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Literal, NamedTuple

from menda.core_auth._env import ENV_CLIENT_ID, ENV_CLIENT_SECRET, ENV_HOST, env_value
from menda.core_auth._host import normalize_host

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

__all__ = ["Identity", "resolve_identity"]

log = logging.getLogger("menda.core_auth")

_TRIO = (ENV_CLIENT_ID, ENV_CLIENT_SECRET, ENV_HOST)


class Identity(NamedTuple):
    """Who we are towards menda cloud: the result of resolution. Its repr shows no secret."""

    # A NamedTuple rather than a frozen dataclass: building a dataclass costs
    # about 0.3 ms at import, and keyring imports this on every install.

    host: str
    auth_type: Literal["m2m", "u2m"]
    #: Names this identity's entries in our cache: ``m2m-env:<client id>``,
    #: ``m2m-profile:<profile>`` or ``u2m-profile:<profile>``, so an M2M identity and
    #: a user profile of the same name never share an entry.
    cache_key: str
    source: str
    profile: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    config_path: Path | None = None

    def registry_key(self, domain: str, owner: str, region: str) -> str:
        """The cache key of this identity's CodeArtifact token for one registry.

        The client id is part of it: a profile whose client_id changed must not reuse
        the previous client's tokens.
        """
        from menda.core_auth._entries import registry_cache_key

        owner_key = f"{self.cache_key}\0{self.client_id or ''}"
        return registry_cache_key(owner_key, self.host, domain, owner, region)

    def __repr__(self) -> str:
        secret = None if self.client_secret is None else "***"
        return (
            f"Identity(host={self.host!r}, auth_type={self.auth_type!r}, "
            f"cache_key={self.cache_key!r}, source={self.source!r}, profile={self.profile!r}, "
            f"client_id={self.client_id!r}, client_secret={secret!r}, "
            f"config_path={self.config_path!r})"
        )


def _partial_trio_note(present: list[str], missing: list[str]) -> str:
    return (
        f"{', '.join(present)} {'is' if len(present) == 1 else 'are'} set but "
        f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not "
        "(empty counts as unset)"
    )


def resolve_identity(environ: Mapping[str, str] | None = None) -> Identity:
    """Resolve the identity to use: the complete M2M env trio, else the profile.

    A u2m profile resolves without looking at the token cache: whether a valid
    login exists is the cloud client's question.
    """
    env = os.environ if environ is None else environ
    values = {name: env_value(env, name) for name in _TRIO}
    present = [name for name in _TRIO if values[name] is not None]
    missing = [name for name in _TRIO if values[name] is None]

    client_id = values[ENV_CLIENT_ID]
    client_secret = values[ENV_CLIENT_SECRET]
    raw_host = values[ENV_HOST]
    if client_id is not None and client_secret is not None and raw_host is not None:
        # Complete trio: the config file is not read at all.
        return Identity(
            host=normalize_host(raw_host, setting=ENV_HOST),
            auth_type="m2m",
            cache_key=f"m2m-env:{client_id}",
            source="env",
            profile=None,
            client_id=client_id,
            client_secret=client_secret,
            config_path=None,
        )

    note = ""
    if present:
        note = _partial_trio_note(present, missing)
        # Names only, never values: a half-set environment is almost always a CI mistake.
        log.warning(
            "Ignoring the M2M environment variables: %s. Set all three of %s to use M2M "
            "from the environment; falling back to the config file profile.",
            note,
            ", ".join(_TRIO),
        )
    # The config file's reader is loaded only when there is a file to read.
    from menda.core_auth._config import load_profile
    from menda.error.exceptions import ConfigFileNotFoundError

    try:
        profile = load_profile(environ=env)
    except ConfigFileNotFoundError as exc:
        if not note:
            raise
        raise ConfigFileNotFoundError(f"{exc.message} Note: {note}.") from None

    if profile.auth_type == "m2m":
        return Identity(
            host=profile.host,
            auth_type="m2m",
            cache_key=f"m2m-profile:{profile.name}",
            source=f"profile:{profile.name}",
            profile=profile.name,
            client_id=profile.client_id,
            client_secret=profile.client_secret,
            config_path=profile.path,
        )
    return Identity(
        host=profile.host,
        auth_type="u2m",
        cache_key=f"u2m-profile:{profile.name}",
        source=f"profile:{profile.name}",
        profile=profile.name,
        client_id=None,
        client_secret=None,
        config_path=profile.path,
    )
