"""The keyring backend: CodeArtifact tokens from menda cloud, nothing stored.

keyring imports this module on every ``keyring`` run, that is on every uv and
pip install, whatever the URL. So at import it touches only the standard
library and keyring, reads no file and opens no socket; the Menda libraries
(and ``requests`` behind them) are imported once a CodeArtifact service is
actually asked for.
"""

from __future__ import annotations

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
        if username not in (None, "", USERNAME):
            log.warning(
                "AWS CodeArtifact expects the username 'aws', not %r, for %s; "
                "set the username to 'aws' (e.g. https://aws@%s/...) or leave it out.",
                username,
                target.endpoint,
                target.endpoint,
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
    from menda.cloud_client import MendaCloudClient
    from menda.core_auth import resolve_identity

    identity = resolve_identity()
    log.debug("resolved %r for %s", identity, target.endpoint)
    client = MendaCloudClient(identity, user_agent_extra=_user_agent())
    credential = client.registry_token(_registry_request(target))
    log.debug(
        "token for %s-%s (%s) valid until %s%s",
        target.domain,
        target.domain_owner,
        target.region,
        credential.expires_at.isoformat(),
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
        log.warning("%s [%s]", exc, type(exc).__name__)
    else:
        # Not ours to word: the type only, since its text may quote anything.
        log.warning(
            "Unexpected error while getting a CodeArtifact token; run with "
            "MENDA_LOG_LEVEL=debug for details and report it. [%s]",
            type(exc).__name__,
        )
    log.debug("traceback of the failure above", exc_info=exc)


_handler: logging.Handler | None = None


def _configure_logging() -> None:
    """Make sure our one line reaches the user.

    The keyring CLI, uv's subprocess and pip's subprocess mode configure no
    logging, so without a handler our warning would vanish. An application
    that configured logging (pip's import mode, twine) keeps full control.
    """
    global _handler  # noqa: PLW0603 - one handler per process, attached lazily
    level = _requested_level()
    menda_logger = logging.getLogger("menda")
    if _handler is None:
        if logging.getLogger().handlers:
            if level is not None:
                menda_logger.setLevel(level)
            return
        _handler = logging.StreamHandler(sys.stderr)
        _handler.setFormatter(logging.Formatter("menda-keyring: %(message)s"))
        menda_logger.addHandler(_handler)
    effective = logging.WARNING if level is None else level
    _handler.setLevel(effective)
    menda_logger.setLevel(effective)


def _requested_level() -> int | None:
    # Only called for a CodeArtifact service, which imports core-auth anyway.
    from menda.core_auth import ENV_LOG_LEVEL

    value = os.environ.get(ENV_LOG_LEVEL, "").strip().upper()
    if not value:
        return None
    level = logging.getLevelName(value)
    return level if isinstance(level, int) else None
