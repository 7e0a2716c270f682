"""`MendaCloudClient`: menda access tokens and CodeArtifact registry tokens, cached."""

from __future__ import annotations

import base64
import logging
import math
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeGuard
from urllib.parse import quote

from menda.cloud_client._models import RegistryCredential, RegistryRequest
from menda.core_auth import (
    ACCESS_TOKEN_MAX_AHEAD,
    AccessToken,
    RegistryToken,
    TokenCache,
    parse_time,
    registry_cache_key,
    utcnow,
)
from menda.error import MendaCloudAPIError, NoCachedLoginError

if TYPE_CHECKING:
    from types import TracebackType

    from menda.cloud_client._http import Transport
    from menda.core_auth import Identity

__all__ = ["REGISTRY_PATH", "TOKEN_PATH", "MendaCloudClient"]

log = logging.getLogger(__name__)

TOKEN_PATH = "/api/v1/auth/oauth2/token"  # noqa: S105 - a path, not a password
REGISTRY_PATH = "/api/v1/auth/registry/token"

# Longer than any sane token lifetime; also keeps timedelta() from overflowing.
_MAX_EXPIRES_IN = 10 * 366 * 24 * 3600


def _malformed(path: str, host: str, why: str) -> MendaCloudAPIError:
    return MendaCloudAPIError(
        f"POST {path} at {host}: malformed response (HTTP 200): {why}", status_code=200
    )


def _usable(token: AccessToken | None, rejected: str | None) -> TypeGuard[AccessToken]:
    return token is not None and token.access_token != rejected and token.is_valid()


def _basic_auth(client_id: str, client_secret: str) -> str:
    # RFC 6749 §2.3.1: form-urlencode each part before joining with ":", so ids and
    # secrets containing ":" or non-ASCII survive; requests' HTTPBasicAuth does not.
    pair = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}"
    return "Basic " + base64.b64encode(pair.encode("ascii")).decode("ascii")


class MendaCloudClient:
    """Obtains menda access tokens and CodeArtifact registry tokens for one identity.

    Tokens come from the shared token cache when valid; otherwise from menda cloud,
    under a per-entry lock so processes starting together make one request.
    """

    def __init__(
        self,
        identity: Identity,
        *,
        cache: TokenCache | None = None,
        timeout: tuple[float, float] = (5.0, 15.0),
        max_attempts: int = 3,
        deadline: float = 30.0,
        backoff: float = 0.5,
        user_agent_extra: str | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
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

    # -- access tokens -------------------------------------------------------

    def access_token(self) -> str:
        """A valid menda access token for the identity, from the cache or menda cloud."""
        return self._access_token().access_token

    def _load_access(self) -> AccessToken | None:
        identity = self.identity
        # client_id is None for u2m identities, so only m2m entries are held to it.
        return self.cache.load_access_token(
            identity.cache_key,
            host=identity.host,
            client_id=identity.client_id,
            auth_type=identity.auth_type,
        )

    def _access_token(self, rejected: str | None = None) -> AccessToken:
        """A valid access token: cached, else obtained under the entry's lock.

        ``rejected`` is a token menda cloud just refused (401 invalid_token): it is
        never returned, and for m2m its entry is dropped before a new one is fetched.
        """
        key = self.identity.cache_key
        if rejected is None:
            token = self._load_access()
            if _usable(token, rejected):
                log.debug("access token cache hit for %r", key)
                return token
            log.debug("access token cache miss for %r", key)
        with self.cache.lock(key) as held:
            if not held:
                log.debug("went on without the lock on access token %r", key)
            token = self._load_access()
            if _usable(token, rejected):
                log.debug("access token for %r written by another process", key)
                return token
            if rejected is not None and self.identity.auth_type == "m2m":
                self.cache.delete(key)
            # u2m: the entry also holds the refresh token, so it is replaced, not deleted.
            return self._obtain(token)

    def _obtain(self, cached: AccessToken | None) -> AccessToken:
        """Fetch and store a new access token; the caller holds the entry's lock."""
        if self.identity.auth_type == "m2m":
            token = self._client_credentials()
        else:
            token = self._refresh(cached)
        if not self.cache.store_access_token(self.identity.cache_key, token):
            log.debug("could not cache the access token for %r", self.identity.cache_key)
        return token

    def _client_credentials(self) -> AccessToken:
        identity = self.identity
        client_id = identity.client_id or ""
        client_secret = identity.client_secret or ""
        body = self._transport.post(
            TOKEN_PATH,
            form={"grant_type": "client_credentials"},
            headers={"Authorization": _basic_auth(client_id, client_secret)},
            secrets=(client_secret,),
        )
        return self._token_from(body, client_id=client_id, refresh_token=None)

    def _no_login(self, reason: str) -> NoCachedLoginError:
        name = self.identity.profile or self.identity.cache_key
        return NoCachedLoginError(
            f"No valid cached token for profile '{name}' on {self.identity.host} ({reason}). "
            "Run 'menda auth login', or switch to M2M."
        )

    def _refresh(self, cached: AccessToken | None) -> AccessToken:
        if cached is None:
            raise self._no_login("no cached login")
        if not cached.refresh_token:
            if cached.expires_at > utcnow() + ACCESS_TOKEN_MAX_AHEAD:
                raise self._no_login(
                    "the cached token expires implausibly far ahead (is the system clock "
                    "right?) and there is no refresh token"
                )
            raise self._no_login("the cached token has expired and has no refresh token")
        if not cached.client_id:
            raise self._no_login("the cached login has no client id to refresh with")
        try:
            body = self._transport.post(
                TOKEN_PATH,
                form={
                    "grant_type": "refresh_token",
                    "refresh_token": cached.refresh_token,
                    "client_id": cached.client_id,
                },
                secrets=(cached.refresh_token, cached.access_token),
            )
        except MendaCloudAPIError as exc:
            if exc.error == "invalid_grant":
                raise self._no_login(
                    "menda cloud rejected the refresh token: invalid_grant"
                ) from None
            raise
        # A refresh may rotate the refresh token; without a new one the old stays valid.
        return self._token_from(
            body, client_id=cached.client_id, refresh_token=cached.refresh_token
        )

    def _token_from(
        self, body: dict[str, Any], *, client_id: str | None, refresh_token: str | None
    ) -> AccessToken:
        host = self.identity.host
        access = body.get("access_token")
        if not isinstance(access, str) or not access:
            raise _malformed(TOKEN_PATH, host, "'access_token' is missing or not a string")
        expires_in = body.get("expires_in")
        if (
            isinstance(expires_in, bool)
            or not isinstance(expires_in, (int, float))
            or not math.isfinite(expires_in)
            or not 0 <= expires_in <= _MAX_EXPIRES_IN
        ):
            raise _malformed(
                TOKEN_PATH, host, "'expires_in' is missing or not a plausible number of seconds"
            )
        token_type = body.get("token_type", "Bearer")
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise _malformed(TOKEN_PATH, host, "'token_type' is not Bearer")
        new_refresh = body.get("refresh_token")
        if new_refresh is not None and not isinstance(new_refresh, str):
            raise _malformed(TOKEN_PATH, host, "'refresh_token' is not a string")
        if self.identity.auth_type == "u2m" and new_refresh:
            refresh_token = new_refresh
        return AccessToken(
            access_token=access,
            expires_at=utcnow() + timedelta(seconds=expires_in),
            host=host,
            auth_type=self.identity.auth_type,
            client_id=client_id,
            refresh_token=refresh_token,
        )

    # -- registry tokens -----------------------------------------------------

    def registry_token(self, registry: RegistryRequest) -> RegistryCredential:
        """A CodeArtifact token for `registry`, from the cache or menda cloud."""
        identity = self.identity
        key = registry_cache_key(
            identity.cache_key,
            identity.host,
            registry.domain,
            registry.domain_owner,
            registry.region,
        )
        cached = self._load_registry(key, registry)
        if cached is not None:
            return cached
        log.debug("registry token cache miss for %s", key)
        with self.cache.lock(key) as held:
            if not held:
                log.debug("went on without the lock on registry token %s", key)
            cached = self._load_registry(key, registry)
            if cached is not None:
                return cached
            token = self._exchange_with_renewal(registry)
            if token.expires_at <= utcnow():
                log.debug("not caching registry token %s: it has already expired", key)
            elif not self.cache.store_registry_token(key, token):
                log.debug("could not cache registry token %s", key)
        return RegistryCredential(token=token.token, expires_at=token.expires_at, from_cache=False)

    def _load_registry(self, key: str, registry: RegistryRequest) -> RegistryCredential | None:
        token = self.cache.load_registry_token(
            key,
            host=self.identity.host,
            identity=self.identity.cache_key,
            registry=(registry.domain, registry.domain_owner, registry.region),
        )
        if token is None or not token.is_valid():
            return None
        log.debug("registry token cache hit for %s", key)
        return RegistryCredential(token=token.token, expires_at=token.expires_at, from_cache=True)

    def _exchange_with_renewal(self, registry: RegistryRequest) -> RegistryToken:
        access = self._access_token()
        try:
            return self._exchange(access.access_token, registry)
        except MendaCloudAPIError as exc:
            if exc.status_code != 401 or exc.error != "invalid_token":
                raise
            log.debug("menda cloud rejected the access token (invalid_token); renewing it once")
        access = self._access_token(rejected=access.access_token)
        return self._exchange(access.access_token, registry)

    def _exchange(self, access_token: str, registry: RegistryRequest) -> RegistryToken:
        host = self.identity.host
        body = self._transport.post(
            REGISTRY_PATH,
            json_body={
                "registry_type": "codeartifact",
                "domain": registry.domain,
                "domain_owner": registry.domain_owner,
                "region": registry.region,
                "repository": registry.repository,
                "format": registry.format,
            },
            headers={"Authorization": f"Bearer {access_token}"},
            secrets=(access_token,),
        )
        token = body.get("token")
        if not isinstance(token, str) or not token:
            raise _malformed(REGISTRY_PATH, host, "'token' is missing or not a string")
        raw_expiry = body.get("expires_at")
        expires_at = parse_time(raw_expiry)
        if expires_at is None:
            raise _malformed(REGISTRY_PATH, host, "'expires_at' is missing or not RFC 3339")
        return RegistryToken(
            token=token,
            expires_at=expires_at,
            host=host,
            identity=self.identity.cache_key,
            domain=registry.domain,
            domain_owner=registry.domain_owner,
            region=registry.region,
        )
