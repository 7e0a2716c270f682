"""`MendaCloudClient`: menda access tokens and CodeArtifact registry tokens, cached.

It speaks menda cloud's contract as the published Menda clients do (docs/cloud-api.md):
client credentials in the query string, the registry exchange with an
``authorizationToken: Bearer`` header and no body, user logins from the Menda
CLI's token file, refreshed through the tenant's public client when expired.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, NamedTuple

from menda.cloud_client._models import RegistryCredential, RegistryRequest
from menda.cloud_client._parse import (
    login_from_body,
    m2m_token_from_body,
    malformed,
    registry_expiry,
    text_field,
    token_field,
)
from menda.core_auth import (
    ENV_CLIENT_ID,
    ENV_CLIENT_SECRET,
    ENV_HOST,
    ENV_TIMEOUT,
    AccessToken,
    Login,
    RegistryToken,
    TokenCache,
    utcnow,
)
from menda.error import MendaCloudAPIError, NoCachedLoginError

if TYPE_CHECKING:
    from collections.abc import Mapping
    from types import TracebackType

    from menda.cloud_client._http import Transport
    from menda.core_auth import Identity

__all__ = [
    "DISCOVERY_PATH",
    "REGISTRY_PATH",
    "TOKEN_PATH",
    "WHOAMI_PATH",
    "MendaCloudClient",
    "WhoAmI",
]

log = logging.getLogger(__name__)

API = "/api/v1"
TOKEN_PATH = API + "/auth/oauth2/token"
REGISTRY_PATH = API + "/auth/registry/token"
DISCOVERY_PATH = API + "/auth/discovery"
WHOAMI_PATH = API + "/auth/whoami"

_NOT_FOUND = (
    f"Check the host setting ({ENV_HOST} or the profile's host): it must be menda cloud's "
    "API base URL"
)
_CLIENT_HINTS = {
    400: f"Check the client id and secret ({ENV_CLIENT_ID} / {ENV_CLIENT_SECRET}, or the "
    "profile's client_id / client_secret)",
    401: f"Check the client id and secret ({ENV_CLIENT_ID} / {ENV_CLIENT_SECRET}, or the "
    "profile's client_id / client_secret)",
    404: _NOT_FOUND,
}
_REGISTRY_HINTS = {
    401: "menda cloud rejected a fresh token too: run 'menda auth login', or check the M2M client",
    403: "Your Menda identity may not use the CodeArtifact registry: ask your Menda "
    "administrator for access",
    404: _NOT_FOUND,
}
_PLAIN_HINTS = {404: _NOT_FOUND}


DEFAULT_DEADLINE = 30.0


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


class MendaCloudClient:
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
        return self._bearer()

    def _bearer(self, rejected: str | None = None) -> str:
        """A valid token other than ``rejected`` (one menda cloud just refused)."""
        if self.identity.auth_type == "m2m":
            return self._m2m_token(rejected).access_token
        return self._user_login(rejected).bearer

    # -- M2M -----------------------------------------------------------------

    def _load_m2m(self) -> AccessToken | None:
        identity = self.identity
        return self.cache.load_access_token(
            identity.cache_key, host=identity.host, client_id=identity.client_id or ""
        )

    def _m2m_token(self, rejected: str | None) -> AccessToken:
        key = self.identity.cache_key
        token = self._load_m2m()
        if token is not None and token.access_token != rejected and token.is_valid():
            log.debug("access token cache hit for %r", key)
            return token
        log.debug("access token cache miss for %r", key)
        with self.cache.lock(key) as held:
            if not held:
                log.debug("went on without the lock on access token %r", key)
            token = self._load_m2m()
            if token is not None and token.access_token != rejected and token.is_valid():
                log.debug("access token for %r written by another process", key)
                return token
            token = self.client_credentials()
            if not self.cache.store_access_token(key, token):
                log.debug("could not cache the access token for %r", key)
            return token

    def client_credentials(self) -> AccessToken:
        """A new access token for the M2M identity from the token endpoint (not cached)."""
        identity = self.identity
        client_id = identity.client_id or ""
        body = self._transport.request(
            "POST",
            TOKEN_PATH,
            params={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": identity.client_secret or "",
            },
            hints=_CLIENT_HINTS,
        )
        what = f"POST {TOKEN_PATH} at {identity.host}"
        return m2m_token_from_body(body, what, host=identity.host, client_id=client_id)

    # -- U2M -----------------------------------------------------------------

    def _no_login(self, reason: str) -> NoCachedLoginError:
        name = self.identity.profile or self.identity.cache_key
        return NoCachedLoginError(
            f"No valid cached token for profile '{name}' (host {self.identity.host}): "
            f"{reason}. Run 'menda auth login', or switch to M2M."
        )

    def _usable_login(self, login: Login | None, rejected: str | None) -> bool:
        return login is not None and login.bearer != rejected and login.is_valid()

    def _user_login(self, rejected: str | None) -> Login:
        logins = self.cache.logins
        profile = self.identity.profile or ""
        login = logins.load(profile)
        if self._usable_login(login, rejected):
            assert login is not None  # noqa: S101 - narrowed by _usable_login
            log.debug("login for profile %r from %s", profile, logins.path)
            return login
        self._check_refreshable(login)
        # Read again, refresh and write under the file's lock: a herd of processes with
        # an expired login makes one refresh (a rotated refresh token used twice may
        # revoke the whole login).
        with logins.lock() as held:
            if not held:
                log.debug("went on without the lock on %s", logins.path)
            login = logins.load(profile)
            if self._usable_login(login, rejected):
                assert login is not None  # noqa: S101 - narrowed by _usable_login
                log.debug("login for profile %r refreshed by another process", profile)
                return login
            self._check_refreshable(login)
            assert login is not None  # noqa: S101 - _check_refreshable raises for None
            fresh = self.refresh(login)
            if logins.store(profile, fresh):
                log.debug("refreshed login for profile %r written to %s", profile, logins.path)
            else:
                log.debug("could not write the refreshed login to %s", logins.path)
            return fresh

    def _check_refreshable(self, login: Login | None) -> None:
        path = self.cache.logins.path
        if login is None:
            raise self._no_login(f"no login in {path}")
        if login.refresh_token:
            return
        if login.is_from_the_future():
            raise self._no_login(
                f"the login in {path} was saved more than a day in the future (is the "
                "system clock right?) and holds no refresh token"
            )
        raise self._no_login(f"the login in {path} has expired and holds no refresh token")

    def discover(self) -> str:
        """The tenant's public login client id, from the discovery endpoint."""
        from urllib.parse import urlsplit

        hostname = urlsplit(self.identity.host).hostname or ""
        what = f"GET {DISCOVERY_PATH} at {self.identity.host}"
        body = self._transport.request(
            "GET", DISCOVERY_PATH, params={"hostname": hostname}, hints=_PLAIN_HINTS
        )
        return text_field(body, "app_client_id", what)

    def refresh(self, login: Login) -> Login:
        """A new login from ``login``'s refresh token (not written anywhere).

        Raises ``NoCachedLoginError`` when menda cloud refuses the refresh token.
        """
        client_id = self.discover()
        try:
            body = self._transport.request(
                "POST",
                TOKEN_PATH,
                params={
                    "grant_type": "refresh_token",
                    "client_id": client_id,
                    "refresh_token": login.refresh_token,
                },
                secrets=(login.access_token, login.id_token),
                hints=_PLAIN_HINTS,
            )
        except MendaCloudAPIError as exc:
            if exc.status_code in (400, 401, 403):
                raise self._no_login(
                    f"the login has expired and menda cloud refused to refresh it "
                    f"(HTTP {exc.status_code})"
                ) from None
            raise
        what = f"POST {TOKEN_PATH} at {self.identity.host}"
        return login_from_body(body, what, previous_refresh_token=login.refresh_token)

    # -- registry tokens -----------------------------------------------------

    def registry_token(self, registry: RegistryRequest) -> RegistryCredential:
        """A CodeArtifact token for ``registry``, from the cache or menda cloud."""
        identity = self.identity
        parts = (registry.domain, registry.domain_owner, registry.region)
        key = identity.registry_key(*parts)
        cached = self._load_registry(key, parts)
        if cached is not None:
            return cached
        log.debug("registry token cache miss for %s", key)
        with self.cache.lock(key) as held:
            if not held:
                log.debug("went on without the lock on registry token %s", key)
            cached = self._load_registry(key, parts)
            if cached is not None:
                return cached
            credential = self._exchange_with_renewal()
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

    def _load_registry(self, key: str, parts: tuple[str, str, str]) -> RegistryCredential | None:
        token = self.cache.load_registry_token(
            key, host=self.identity.host, identity=self.identity.cache_key, registry=parts
        )
        if token is None or not token.is_valid():
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
        body = self._transport.request(
            "POST",
            REGISTRY_PATH,
            headers={"authorizationToken": f"Bearer {bearer}", "Content-Type": "application/json"},
            hints=_REGISTRY_HINTS,
        )
        token = token_field(body, "token", what)
        return RegistryCredential(
            token=token, expires_at=registry_expiry(body, token, what), from_cache=False
        )

    # -- whoami ----------------------------------------------------------------

    def whoami(self) -> WhoAmI:
        """Who menda cloud says the identity is (a live call with a valid token)."""
        bearer = self._bearer()
        what = f"GET {WHOAMI_PATH} at {self.identity.host}"
        body = self._transport.request(
            "GET",
            WHOAMI_PATH,
            headers={"authorizationToken": bearer},
            secrets=(bearer,),
            hints=_PLAIN_HINTS,
        )
        return WhoAmI(*(_optional_text(body, name, what) for name in WhoAmI._fields))


def _optional_text(body: Mapping[str, Any], name: str, what: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise malformed(what, f"'{name}' is not a string")
    return value
