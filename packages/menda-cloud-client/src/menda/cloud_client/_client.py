"""`MendaCloudClient`: menda access tokens and CodeArtifact registry tokens, cached.

It speaks menda cloud's contract as the published Menda clients do (docs/cloud-api.md):
client credentials in the query string, the registry exchange with an
``authorizationToken: Bearer`` header and no body, user logins from the Menda
CLI's token file, refreshed through the tenant's public client when expired.
The user-login half is in ``_user.py``, the M2M access-token half in ``_m2m.py``.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from menda.cloud_client._deadline import DEFAULT_DEADLINE, Deadline
from menda.cloud_client._hints import PLAIN_HINTS, REGISTRY_HINTS, REGISTRY_PATH, WHOAMI_PATH
from menda.cloud_client._models import RegistryCredential
from menda.cloud_client._user import UserLogins
from menda.core_auth import ENV_TIMEOUT, RegistryToken, TokenCache, utcnow
from menda.error import MendaCloudAPIError, NoCachedLoginError

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from types import TracebackType

    from menda.cloud_client._http import Transport
    from menda.cloud_client._models import RegistryRequest
    from menda.core_auth import AccessToken, Identity

__all__ = ["MendaCloudClient", "WhoAmI", "deadline_from_env"]

log = logging.getLogger(__name__)

# Without a call deadline (a lock taken outside any call), a lock wait is bounded by this.
_LOCK_WAIT = 30.0


class _WaitedLock(Protocol):
    """What a cache lock tells once entered: whether another process held it all along."""

    timed_out: bool


def deadline_from_env(environ: Mapping[str, str] | None = None) -> float:
    """``MENDA_TIMEOUT`` in seconds when it is a positive number, else 30."""
    import os

    raw = (os.environ if environ is None else environ).get(ENV_TIMEOUT, "").strip()
    try:
        value = float(raw)
    except ValueError:
        return DEFAULT_DEADLINE
    return value if 0 < value <= 3600 else DEFAULT_DEADLINE


class WhoAmI(NamedTuple):
    """Who menda cloud says the identity is."""

    tenant_id: str | None
    username: str | None
    email: str | None
    user_role: str | None
    identity_type: str | None


class MendaCloudClient(UserLogins):
    """Obtains menda tokens and CodeArtifact registry tokens for one identity.

    Tokens come from the token cache when valid; otherwise from menda cloud,
    under a per-entry lock so processes starting together make one request.
    """

    def __init__(
        self,
        identity: Identity,
        *,
        cache: TokenCache | None = None,
        timeout: tuple[float, float] = (5.0, 15.0),
        max_attempts: int = 3,
        deadline: float | None = None,
        backoff: float = 0.5,
        user_agent_extra: str | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if deadline is None:
            deadline = deadline_from_env()
        if deadline <= 0 or timeout[0] <= 0 or timeout[1] <= 0:
            raise ValueError("deadline and timeouts must be positive")
        if backoff < 0:
            raise ValueError("backoff must not be negative")
        self.identity = identity
        self.cache = cache if cache is not None else TokenCache()
        self._timeout = timeout
        self._max_attempts = max_attempts
        self._deadline = deadline
        self._backoff = backoff
        self._user_agent_extra = user_agent_extra
        self._transport_instance: Transport | None = None
        # The deadline of the call under way (one keyring lookup): every request, body
        # read and lock wait of it counts against the same clock.
        self._call: Deadline | None = None

    @property
    def _transport(self) -> Transport:
        # Built on first use: a cached answer never loads the HTTP module (or
        # requests behind it), and keyring pays for this on every install.
        if self._transport_instance is None:
            from menda.cloud_client._http import Transport, build_user_agent

            self._transport_instance = Transport(
                self.identity.host,
                timeout=self._timeout,
                max_attempts=self._max_attempts,
                deadline=self._deadline,
                backoff=self._backoff,
                user_agent=build_user_agent(self._user_agent_extra),
            )
        return self._transport_instance

    def __repr__(self) -> str:
        return (
            f"MendaCloudClient(host={self.identity.host!r}, "
            f"auth_type={self.identity.auth_type!r}, cache_key={self.identity.cache_key!r})"
        )

    @contextlib.contextmanager
    def _one_call(self) -> Iterator[Deadline]:
        """The deadline of the outermost public call; nested calls share it."""
        if self._call is not None:
            yield self._call
            return
        self._call = Deadline(self._deadline)
        try:
            yield self._call
        finally:
            self._call = None

    def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        return self._transport.request(method, path, deadline=self._call, **kwargs)

    def _sent(self) -> int:
        transport = self._transport_instance
        return 0 if transport is None else transport.sent

    def _lock_wait(self) -> float:
        return _LOCK_WAIT if self._call is None else self._call.remaining()

    def _after_lock_wait(self, lock: _WaitedLock, what: str) -> None:
        """Raise when the wait for another process's lock used up the whole deadline."""
        call = self._call
        if not lock.timed_out or call is None or call.remaining() > 0.05:
            return
        host = self.identity.host
        raise MendaCloudAPIError(
            f"Gave up after the {call.seconds:g} s deadline ({ENV_TIMEOUT} sets it): another "
            f"process was asking {host} for the {what} all that time and got no answer. Check "
            f"that menda cloud answers at {host}, or raise {ENV_TIMEOUT}."
        )

    def close(self) -> None:
        """Close the HTTP session, if one was opened."""
        if self._transport_instance is not None:
            self._transport_instance.close()

    def __enter__(self) -> MendaCloudClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the token to present ------------------------------------------------

    def access_token(self) -> str:
        """The token to present for the identity: an M2M access token, or the user's
        id token (else access token), from the cache or menda cloud."""
        with self._one_call():
            return self._bearer()

    def _bearer(self, rejected: str | None = None) -> str:
        """A valid token other than ``rejected`` (one menda cloud just refused)."""
        if self.identity.auth_type == "m2m":
            # Imported past the registry-token hit: a warm lookup needs no access token.
            from menda.cloud_client._m2m import m2m_token

            return m2m_token(self, rejected).access_token
        return self._user_login(rejected).bearer

    # -- M2M (in _m2m.py) --------------------------------------------------------

    def client_credentials(self) -> AccessToken:
        """A new access token for the M2M identity from the token endpoint (not cached)."""
        from menda.cloud_client._m2m import client_credentials

        return client_credentials(self)

    # -- registry tokens -----------------------------------------------------

    def registry_token(self, registry: RegistryRequest) -> RegistryCredential:
        """A CodeArtifact token for ``registry``, from the cache or menda cloud.

        A failure (menda cloud said no, or could not be reached after retries) is
        remembered for 30 s: the same call then fails at once with the same error.
        """
        with self._one_call():
            return self._registry_token(registry)

    def _registry_token(self, registry: RegistryRequest) -> RegistryCredential:
        identity = self.identity
        parts = (registry.domain, registry.domain_owner, registry.region)
        key = identity.registry_key(*parts)
        cached = self._load_registry(key, parts)
        if cached is not None:
            return cached
        log.debug("registry token cache miss for %s", key)
        # Imported past the cache hit: a warm lookup never needs the failure memory.
        from menda.cloud_client._failures import failure_key, fingerprint, remember

        memory = failure_key(key)
        self._raise_remembered(memory)
        lock = self.cache.lock(key, timeout=self._lock_wait())
        with lock as held:
            if not held:
                log.debug("went on without the lock on registry token %s", key)
            cached = self._load_registry(key, parts)
            if cached is not None:
                return cached
            # The process that held the lock may have just failed: fail the same way.
            self._raise_remembered(memory)
            self._after_lock_wait(lock, "CodeArtifact token")
            sent = self._sent()
            # A call that spent most of its deadline waiting for another process had
            # too little time to judge menda cloud by: its failure is not remembered.
            fair = self._call is None or self._call.remaining() >= self._call.seconds / 2
            try:
                credential = self._exchange_with_renewal()
            except (MendaCloudAPIError, NoCachedLoginError) as exc:
                if fair and self._sent() > sent:  # menda cloud was asked, or not reached
                    remember(self.cache, memory, fingerprint(identity, self.cache), exc)
                raise
            if credential.expires_at is None:
                log.debug("not caching registry token %s: its lifetime is unknown", key)
            elif credential.expires_at <= utcnow():
                log.debug("not caching registry token %s: it has already expired", key)
            else:
                token = RegistryToken(
                    credential.token,
                    credential.expires_at,
                    identity.host,
                    identity.cache_key,
                    *parts,
                )
                if not self.cache.store_registry_token(key, token):
                    log.debug("could not cache registry token %s", key)
        return credential

    def _raise_remembered(self, memory: str) -> None:
        from menda.cloud_client._failures import fingerprint, recall

        failure = recall(self.cache, memory, fingerprint(self.identity, self.cache))
        if failure is not None:
            raise failure

    def _load_registry(self, key: str, parts: tuple[str, str, str]) -> RegistryCredential | None:
        token = self.cache.registry_token_for(self.identity, *parts)
        if token is None:
            return None
        log.debug("registry token cache hit for %s", key)
        return RegistryCredential(token=token.token, expires_at=token.expires_at, from_cache=True)

    def _exchange_with_renewal(self) -> RegistryCredential:
        bearer = self._bearer()
        try:
            return self.exchange(bearer)
        except MendaCloudAPIError as exc:
            if exc.status_code != 401:
                raise
            log.debug("menda cloud rejected the token (HTTP 401); renewing it once")
        if self.identity.auth_type == "m2m":
            self.cache.delete(self.identity.cache_key)
        return self.exchange(self._bearer(rejected=bearer))

    def exchange(self, bearer: str) -> RegistryCredential:
        """Exchange ``bearer`` for a CodeArtifact token (no cache)."""
        host = self.identity.host
        what = f"POST {REGISTRY_PATH} at {host}"
        with self._one_call():
            body = self._request(
                "POST",
                REGISTRY_PATH,
                headers={
                    "authorizationToken": f"Bearer {bearer}",
                    "Content-Type": "application/json",
                },
                hints=REGISTRY_HINTS,
            )
        from menda.cloud_client._parse import registry_expiry, token_field

        token = token_field(body, "token", what)
        return RegistryCredential(
            token=token, expires_at=registry_expiry(body, token, what), from_cache=False
        )

    # -- whoami ----------------------------------------------------------------

    def whoami(self) -> WhoAmI:
        """Who menda cloud says the identity is (a live call with a valid token)."""
        what = f"GET {WHOAMI_PATH} at {self.identity.host}"
        with self._one_call():
            bearer = self._bearer()
            body = self._request(
                "GET",
                WHOAMI_PATH,
                headers={"authorizationToken": bearer},
                secrets=(bearer,),
                hints=PLAIN_HINTS,
            )
        return WhoAmI(*(_optional_text(body, name, what) for name in WhoAmI._fields))


def _optional_text(body: Mapping[str, Any], name: str, what: str) -> str | None:
    from menda.cloud_client._parse import malformed

    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise malformed(what, f"'{name}' is not a string")
    return value
