"""The keyring backend: CodeArtifact tokens from menda cloud, nothing stored.

keyring imports this module on every ``keyring`` run, that is on every uv and
pip install, whatever the URL. So at import it touches only the standard
library and keyring, reads no file and opens no socket; the Menda libraries
(and ``requests`` behind them) are imported once a CodeArtifact service is
actually asked for.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import TYPE_CHECKING

from keyring.backend import KeyringBackend
from keyring.credentials import SimpleCredential
from keyring.errors import PasswordDeleteError, PasswordSetError
from menda.keyring._service import parse_service

if TYPE_CHECKING:
    from menda.cloud_client import RegistryRequest
    from menda.keyring._service import CodeArtifactService

__all__ = ["MendaCodeArtifactKeyring"]

log = logging.getLogger("menda.keyring")

USERNAME = "aws"


class _NotStored(PasswordSetError, PasswordDeleteError, NotImplementedError):
    """Raised for services this backend does not own, so keyring's chainer asks the next one."""


class MendaCodeArtifactKeyring(KeyringBackend):
    """Answers AWS CodeArtifact URLs with a short-lived token from menda cloud.

    Every other service gets ``None`` at once, so other backends handle it.
    """

    # A constant, so keyring's viability check costs nothing. Above the OS
    # keychains (5) so a stale CodeArtifact password stored there never wins.
    priority = 9

    def get_password(self, service: str, username: str | None) -> str | None:
        return self._token_for(service, username)

    def get_credential(self, service: str, username: str | None) -> SimpleCredential | None:
        # keyring's default returns None without a username, which breaks
        # `keyring get --mode creds`; CodeArtifact's username is always "aws".
        token = self._token_for(service, username)
        return None if token is None else SimpleCredential(USERNAME, token)

    def set_password(self, service: str, username: str, password: str) -> None:
        if parse_service(service) is None:
            raise _NotStored("menda-keyring stores no passwords; use another keyring backend")
        # A CodeArtifact token is fetched fresh on demand: storing one (pip
        # offers to after a prompt) would only leave a stale secret behind.
        log.debug("not storing a password for %s: tokens come from menda cloud", service)

    def delete_password(self, service: str, username: str) -> None:
        if parse_service(service) is None:
            raise _NotStored("menda-keyring stores no passwords; use another keyring backend")
        log.debug("nothing to delete for %s: menda-keyring stores no passwords", service)

    def _token_for(self, service: str, username: str | None) -> str | None:
        target = parse_service(service)
        if target is None:
            return None
        _configure_logging()
        if service[:7].lower() == "http://":
            # The installer would send the token in clear text to whoever is on the path.
            log.debug("no token for %s: the service URL is plain http, not https", target.endpoint)
            return None
        if username == "__token__":
            # A probe (PDM) or a tool's default (hatch), not the user's choice of username.
            log.debug("no token for username '__token__' at %s: CodeArtifact uses 'aws'", service)
            return None
        if username not in (None, "", USERNAME):
            _say(
                f"AWS CodeArtifact expects the username 'aws', not {username!r}, for "
                f"{target.endpoint}; set the username to 'aws' (e.g. "
                f"https://aws@{target.endpoint}/...) or leave it out."
            )
            return None
        try:
            return _fetch_token(target)
        except Exception as exc:  # an installer must never crash on us
            _report(exc)
            return None


def _fetch_token(target: CodeArtifactService) -> str:
    # Imported here, not at module level: these are only needed for a
    # CodeArtifact service, and keyring loads this module on every run.
    from menda.core_auth import TokenCache, resolve_identity

    identity = resolve_identity()
    log.debug("resolved %r for %s", identity, target.endpoint)
    cache = TokenCache()
    # A warm lookup is answered here, before the HTTP client (and requests behind it)
    # is even imported: this runs on every install.
    cached = cache.registry_token_for(identity, target.domain, target.domain_owner, target.region)
    if cached is not None:
        log.debug(
            "registry token cache hit: token for %s-%s (%s) valid until %s (from cache)",
            target.domain,
            target.domain_owner,
            target.region,
            cached.expires_at.isoformat(),
        )
        return cached.token
    from menda.cloud_client import MendaCloudClient

    client = MendaCloudClient(identity, cache=cache, user_agent_extra=_user_agent())
    credential = client.registry_token(_registry_request(target))
    log.debug(
        "token for %s-%s (%s) valid until %s%s",
        target.domain,
        target.domain_owner,
        target.region,
        "an unknown time" if credential.expires_at is None else credential.expires_at.isoformat(),
        " (from cache)" if credential.from_cache else "",
    )
    return credential.token


def _registry_request(target: CodeArtifactService) -> RegistryRequest:
    """What menda cloud is asked for, from the parts of the service name."""
    from menda.cloud_client import RegistryRequest

    return RegistryRequest(
        domain=target.domain,
        domain_owner=target.domain_owner,
        region=target.region,
        repository=target.repository,
        format=target.format,
    )


def _user_agent() -> str:
    from menda.keyring import __version__

    return f"menda-keyring/{__version__}"


def _report(exc: Exception) -> None:
    from menda.error import MendaError

    if isinstance(exc, MendaError):
        _say(f"{exc} [{type(exc).__name__}]")
    else:
        # Not ours to word: the type only, since its text may quote anything.
        _say(
            "Unexpected error while getting a CodeArtifact token; run with "
            f"MENDA_LOG_LEVEL=debug for details and report it. [{type(exc).__name__}]"
        )
    log.debug("traceback of the failure above", exc_info=exc)


# Each distinct line is printed once per process: uv asks for the URL and then the
# host, PDM and Poetry ask several times, and the user needs to read it once.
_said: set[str] = set()


def _say(line: str) -> None:
    """Tell the user ``line`` on stderr, once per process, whatever logging looks like.

    The keyring CLI and uv's subprocess configure no logging, Poetry drops every
    record not from its own loggers, and pip's import mode shows records its own
    way: so the line is written directly, and the same text goes to the
    ``menda.keyring`` logger at DEBUG for applications that want it.
    """
    log.debug("%s", line)
    if line in _said:
        return
    _said.add(line)
    with contextlib.suppress(OSError, ValueError, AttributeError):
        sys.stderr.write(f"menda-keyring: {line}\n")
        sys.stderr.flush()


class _UserLines(logging.Handler):
    """Warnings of the Menda libraries (a half-set M2M environment) reach the user as
    our own lines do: once, on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            _say(record.getMessage())


_configured = False


def _configure_logging() -> None:
    """Route library warnings to the user; ``MENDA_LOG_LEVEL`` adds a full trace on stderr."""
    global _configured  # noqa: PLW0603 - once per process, on the first CodeArtifact service
    if _configured:
        return
    _configured = True
    menda_logger = logging.getLogger("menda")
    user_lines = _UserLines(logging.WARNING)
    menda_logger.addHandler(user_lines)
    level = _requested_level()
    if level is not None:
        trace = logging.StreamHandler(sys.stderr)
        trace.setFormatter(logging.Formatter("menda-keyring: %(message)s"))
        trace.setLevel(level)
        menda_logger.addHandler(trace)
        menda_logger.setLevel(level)
    elif menda_logger.getEffectiveLevel() > logging.WARNING:
        menda_logger.setLevel(logging.WARNING)


def _requested_level() -> int | None:
    # Only called for a CodeArtifact service, which imports core-auth anyway.
    from menda.core_auth import ENV_LOG_LEVEL

    value = os.environ.get(ENV_LOG_LEVEL, "").strip().upper()
    if not value:
        return None
    level = logging.getLevelName(value)
    return level if isinstance(level, int) else None
