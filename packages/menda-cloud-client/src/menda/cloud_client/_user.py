"""User logins: the Menda CLI's login for the profile, refreshed when it has expired."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol

from menda.cloud_client._hints import DISCOVERY_PATH, PLAIN_HINTS, TOKEN_PATH
from menda.error import MendaCloudAPIError, NoCachedLoginError

if TYPE_CHECKING:
    from menda.core_auth import Identity, Login, TokenCache

__all__ = ["UserLogins"]

log = logging.getLogger("menda.cloud_client._client")


class _WaitedLock(Protocol):
    timed_out: bool


class UserLogins:
    """The user-login half of ``MendaCloudClient`` (which provides the attributes below)."""

    identity: Identity
    cache: TokenCache

    if TYPE_CHECKING:

        def _one_call(self) -> Any: ...
        def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]: ...
        def _lock_wait(self) -> float: ...
        def _after_lock_wait(self, lock: _WaitedLock, what: str) -> None: ...

    def _no_login(self, reason: str) -> NoCachedLoginError:
        name = self.identity.profile or self.identity.cache_key
        return NoCachedLoginError(
            f"No valid cached token for profile '{name}' (host {self.identity.host}): "
            f"{reason}. Run 'menda auth login', or switch to M2M."
        )

    def _user_login(self, rejected: str | None) -> Login:
        """A valid login whose token is not ``rejected`` (one menda cloud just refused)."""
        logins = self.cache.logins
        profile = self.identity.profile or ""
        login = logins.load(profile)
        if _usable(login, rejected):
            assert login is not None  # noqa: S101 - narrowed by _usable
            log.debug("login for profile %r from %s", profile, logins.path)
            return login
        self._check_refreshable(login, rejected)
        # Read again, refresh and write under the file's lock: a herd of processes with
        # an expired login makes one refresh (a rotated refresh token used twice may
        # revoke the whole login).
        lock = logins.lock(timeout=self._lock_wait())
        with lock as held:
            if not held:
                log.debug("went on without the lock on %s", logins.path)
            login = logins.load(profile)
            if _usable(login, rejected):
                assert login is not None  # noqa: S101 - narrowed by _usable
                log.debug("login for profile %r refreshed by another process", profile)
                return login
            self._check_refreshable(login, rejected)
            self._after_lock_wait(lock, "refreshed login")
            assert login is not None  # noqa: S101 - _check_refreshable raises for None
            fresh = self._refresh(login, rejected=rejected is not None)
            if logins.store(profile, fresh):
                log.debug("refreshed login for profile %r written to %s", profile, logins.path)
            else:
                log.debug("could not write the refreshed login to %s", logins.path)
            return fresh

    def _check_refreshable(self, login: Login | None, rejected: str | None) -> None:
        path = self.cache.logins.path
        if login is None:
            raise self._no_login(f"no login in {path}")
        if login.refresh_token:
            return
        if rejected is not None and login.bearer == rejected and login.is_valid():
            raise self._no_login(
                f"menda cloud rejected the login in {path} (HTTP 401: revoked or signed "
                "out) and it holds no refresh token"
            )
        if login.is_from_the_future():
            raise self._no_login(
                f"the login in {path} was saved more than a day in the future (is the "
                "system clock right?) and holds no refresh token"
            )
        raise self._no_login(f"the login in {path} has expired and holds no refresh token")

    def discover(self) -> str:
        """The tenant's public login client id, from the discovery endpoint."""
        from urllib.parse import urlsplit

        from menda.cloud_client._parse import text_field

        hostname = urlsplit(self.identity.host).hostname or ""
        what = f"GET {DISCOVERY_PATH} at {self.identity.host}"
        with self._one_call():
            body = self._request(
                "GET", DISCOVERY_PATH, params={"hostname": hostname}, hints=PLAIN_HINTS
            )
        return text_field(body, "app_client_id", what)

    def refresh(self, login: Login) -> Login:
        """A new login from ``login``'s refresh token (not written anywhere).

        Raises ``NoCachedLoginError`` when menda cloud refuses the refresh token.
        """
        with self._one_call():
            return self._refresh(login)

    def _refresh(self, login: Login, *, rejected: bool = False) -> Login:
        from menda.cloud_client._parse import login_from_body

        client_id = self.discover()
        try:
            body = self._request(
                "POST",
                TOKEN_PATH,
                params={
                    "grant_type": "refresh_token",
                    "client_id": client_id,
                    "refresh_token": login.refresh_token,
                },
                secrets=(login.access_token, login.id_token),
                hints=PLAIN_HINTS,
            )
        except MendaCloudAPIError as exc:
            if exc.status_code in (400, 401, 403):
                why = "menda cloud rejected the login" if rejected else "the login has expired"
                raise self._no_login(
                    f"{why} and menda cloud refused to refresh it (HTTP {exc.status_code})"
                ) from None
            raise
        what = f"POST {TOKEN_PATH} at {self.identity.host}"
        return login_from_body(body, what, previous_refresh_token=login.refresh_token)


def _usable(login: Login | None, rejected: str | None) -> bool:
    return login is not None and login.bearer != rejected and login.is_valid()
