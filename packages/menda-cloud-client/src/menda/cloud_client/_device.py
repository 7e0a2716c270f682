"""A user login with the OAuth device flow and PKCE, as ``menda auth login`` runs it.

The steps (docs/cloud-api.md, endpoints 3 to 5):

1. discovery: the tenant's public client id (``MendaCloudClient.discover()``);
2. a PKCE pair: a random verifier, and its S256 challenge;
3. ``POST /auth/device/authorize`` with the client id, ``scope=openid`` and the
   challenge in the query string: a device code, a user code and the URL where
   the user approves it;
4. ``POST /auth/device/token`` with a JSON body, every ``interval`` seconds,
   until the user has approved or the code expires.

The result is a :class:`~menda.core_auth.Login`; writing it anywhere is the
caller's business (``TokenCache().logins.store`` under ``logins.lock()``).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, NamedTuple

from menda.cloud_client._client import MendaCloudClient
from menda.cloud_client._hints import API
from menda.cloud_client._parse import login_from_body, malformed, text_field, token_field
from menda.core_auth import TokenCache
from menda.error import MendaAuthError, MendaCloudAPIError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from types import TracebackType

    from menda.core_auth import Identity, Login
    from menda.error import MendaError

__all__ = [
    "DEVICE_AUTHORIZE_PATH",
    "DEVICE_GRANT_TYPE",
    "DEVICE_TOKEN_PATH",
    "DeviceAuthorization",
    "DeviceLogin",
    "pkce_pair",
]

log = logging.getLogger(__name__)

DEVICE_AUTHORIZE_PATH = API + "/auth/device/authorize"
DEVICE_TOKEN_PATH = API + "/auth/device/token"
DEVICE_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"
# The Menda CLI joins this to the host, which drops any path prefix of the host; so do we.
_CALLBACK_PATH = "/auth/device/callback"

#: What the token endpoint answers, as the ``error`` of the exception, while the user
#: has not approved yet: menda cloud's ``{"detail": "pending"}`` (or "authorized"), and
#: RFC 8628's codes.
KEEP_POLLING = frozenset({"pending", "authorized", "authorization_pending", "slow_down"})
#: RFC 8628: a ``slow_down`` answer adds this many seconds to the interval, for good.
SLOW_DOWN_STEP = 5
#: RFC 8628's interval when the server announces none.
DEFAULT_INTERVAL = 5
# Each poll is one attempt; a poll that gets no answer, 429 or 5xx is retried by the
# next poll, at most this many times in a row (the transport's own attempt budget).
_TRANSIENT_POLLS = 3
_TRANSIENT_STATUSES = frozenset({None, 429, 500, 502, 503, 504})
# A device code that outlives a day, or an interval of more than 10 min, is not a login.
_MAX_EXPIRES_IN = 24 * 3600
_MAX_INTERVAL = 600
_MAX_USER_CODE = 64
# Sleep in slices of at most this, so the caller's countdown moves every second.
_TICK = 1.0


def pkce_pair(length: int = 64) -> tuple[str, str]:
    """A PKCE verifier of ``length`` (43 to 128) URL-safe characters and its S256 challenge."""
    import base64
    import hashlib
    import secrets

    if not 43 <= length <= 128:
        raise ValueError("a PKCE verifier has 43 to 128 characters (RFC 7636)")
    verifier = secrets.token_urlsafe(96)[:length]
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return verifier, challenge


class DeviceAuthorization(NamedTuple):
    """A started device login: what the user must see, and what the polls send.

    ``verification_uri`` and ``verification_uri_complete`` are absolute (joined to
    the host, as the CLI does); the latter is ``None`` when the server sent none,
    and the user then types ``user_code`` at the former. The repr shows neither
    the device code nor the PKCE verifier.
    """

    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_in: int
    interval: int
    client_id: str
    device_code: str
    code_verifier: str

    @property
    def url(self) -> str:
        """The URL to open: the complete one (carrying the user code) when there is one."""
        return self.verification_uri_complete or self.verification_uri

    def __repr__(self) -> str:
        return (
            f"DeviceAuthorization(user_code={self.user_code!r}, "
            f"verification_uri={self.verification_uri!r}, "
            f"verification_uri_complete={self.verification_uri_complete!r}, "
            f"expires_in={self.expires_in!r}, interval={self.interval!r}, "
            f"client_id={self.client_id!r}, device_code='***', code_verifier='***')"
        )


def _seconds(body: Mapping[str, Any], name: str, what: str, default: int | None) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise malformed(what, f"'{name}' is missing or not a whole number of seconds")
    return value


def _absolute_url(host: str, value: str, name: str, what: str) -> str:
    from urllib.parse import urljoin, urlsplit

    url = urljoin(host, value.strip())
    # The URL goes to a browser and the terminal: only http(s), nothing to mislead.
    if urlsplit(url).scheme not in ("http", "https") or not url.isprintable() or " " in url:
        raise malformed(what, f"'{name}' is not an http(s) URL")
    return url


def _authorization(
    body: Mapping[str, Any], what: str, *, host: str, client_id: str, verifier: str
) -> DeviceAuthorization:
    user_code = text_field(body, "user_code", what).strip()
    if len(user_code) > _MAX_USER_CODE or not user_code.isprintable():
        raise malformed(what, "'user_code' is not a short printable code")
    expires_in = _seconds(body, "expires_in", what, None)
    if not 0 < expires_in <= _MAX_EXPIRES_IN:
        raise malformed(what, "'expires_in' is not between 1 s and a day")
    interval = _seconds(body, "interval", what, DEFAULT_INTERVAL)
    if not 0 <= interval <= _MAX_INTERVAL:
        raise malformed(what, "'interval' is not between 0 and 600 s")
    complete = body.get("verification_uri_complete")
    if complete is not None and not (isinstance(complete, str) and complete.strip()):
        raise malformed(what, "'verification_uri_complete' is not a non-empty string")
    return DeviceAuthorization(
        user_code=user_code,
        verification_uri=_absolute_url(
            host, text_field(body, "verification_uri", what), "verification_uri", what
        ),
        verification_uri_complete=(
            None
            if complete is None
            else _absolute_url(host, complete, "verification_uri_complete", what)
        ),
        expires_in=expires_in,
        interval=interval,
        client_id=client_id,
        device_code=token_field(body, "device_code", what),
        code_verifier=verifier,
    )


class DeviceLogin:
    """Log a user in to ``identity.host`` with the device flow.

    ::

        with DeviceLogin(identity) as flow:
            authorization = flow.start()
            print(authorization.url, authorization.user_code)
            login = flow.wait(authorization)
        with cache.logins.lock():
            cache.logins.store(identity.profile, login)

    ``sleep`` and ``monotonic`` default to the ``time`` functions; tests pass
    their own. Nothing is read from or written to the token cache.
    """

    def __init__(
        self,
        identity: Identity,
        *,
        timeout: tuple[float, float] = (5.0, 15.0),
        user_agent_extra: str | None = None,
        sleep: Callable[[float], None] | None = None,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        self.identity = identity
        # The cache is never used: the client only lends its transport and discover().
        cache = TokenCache()
        self._client = MendaCloudClient(
            identity, cache=cache, timeout=timeout, user_agent_extra=user_agent_extra
        )
        # Each poll is a single attempt: the polling loop is the retry loop.
        self._poller = MendaCloudClient(
            identity,
            cache=cache,
            timeout=timeout,
            max_attempts=1,
            user_agent_extra=user_agent_extra,
        )
        self._sleep = sleep or time.sleep
        self._monotonic = monotonic or time.monotonic

    def __repr__(self) -> str:
        return f"DeviceLogin(host={self.identity.host!r})"

    def close(self) -> None:
        """Close the HTTP sessions."""
        self._client.close()
        self._poller.close()

    def __enter__(self) -> DeviceLogin:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> DeviceAuthorization:
        """Discovery, a PKCE pair and the device authorization request."""
        host = self.identity.host
        client_id = self._client.discover()
        verifier, challenge = pkce_pair()
        what = f"POST {DEVICE_AUTHORIZE_PATH} at {host}"
        body = self._client._transport.request(
            "POST",
            DEVICE_AUTHORIZE_PATH,
            params={
                "client_id": client_id,
                "scope": "openid",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            },
        )
        authorization = _authorization(
            body, what, host=host, client_id=client_id, verifier=verifier
        )
        log.debug(
            "device login started at %s: expires in %d s, polling every %d s",
            host,
            authorization.expires_in,
            authorization.interval,
        )
        return authorization

    def wait(
        self,
        authorization: DeviceAuthorization,
        *,
        on_tick: Callable[[float], None] | None = None,
    ) -> Login:
        """Poll until the user approves; return the login (``cached_at`` = now).

        ``on_tick(seconds_left)`` is called about every second while waiting.
        Raises ``MendaAuthError`` when the code expires unapproved or the user
        denies it, ``MendaCloudAPIError`` when menda cloud answers anything else.
        """
        from urllib.parse import urljoin

        what = f"POST {DEVICE_TOKEN_PATH} at {self.identity.host}"
        body = {
            "client_id": authorization.client_id,
            "redirect_uri": urljoin(self.identity.host, _CALLBACK_PATH),
            "device_code": authorization.device_code,
            "grant_type": DEVICE_GRANT_TYPE,
            "code_verifier": authorization.code_verifier,
        }
        hidden = (authorization.device_code, authorization.code_verifier)
        deadline = self._monotonic() + authorization.expires_in
        interval = float(authorization.interval)
        transient = 0
        polls = 0
        while True:
            if not self._pause(interval, deadline, on_tick):
                raise self._expired(authorization)
            polls += 1
            try:
                answer = self._poller._transport.request(
                    "POST",
                    DEVICE_TOKEN_PATH,
                    json_body=body,
                    headers={"Content-Type": "application/json"},
                    secrets=hidden,
                )
            except MendaCloudAPIError as exc:
                if exc.error in KEEP_POLLING:
                    transient = 0
                    if exc.error == "slow_down":
                        interval += SLOW_DOWN_STEP
                    log.debug("device login poll %d: %s", polls, exc.error)
                    continue
                if exc.status_code in _TRANSIENT_STATUSES and transient < _TRANSIENT_POLLS:
                    transient += 1
                    log.debug("device login poll %d failed, polling again: %s", polls, exc)
                    continue
                raise self._refused(exc) from None
            log.debug("device login approved after %d polls", polls)
            return login_from_body(answer, what)

    def _pause(
        self, seconds: float, deadline: float, on_tick: Callable[[float], None] | None
    ) -> bool:
        """Sleep ``seconds`` in slices, telling ``on_tick``; False when the code expired."""
        end = self._monotonic() + seconds
        while True:
            now = self._monotonic()
            if now >= deadline:
                return False
            if on_tick is not None:
                on_tick(deadline - now)
            if now >= end:
                return True
            self._sleep(min(_TICK, end - now, deadline - now))

    def _expired(self, authorization: DeviceAuthorization) -> MendaAuthError:
        minutes = authorization.expires_in / 60
        span = f"{minutes:g} min" if minutes >= 1 else f"{authorization.expires_in} s"
        return MendaAuthError(
            f"The login was not approved within {span} and its code has expired. "
            "Run the login again, and approve it in the browser."
        )

    def _refused(self, exc: MendaCloudAPIError) -> MendaError:
        if exc.error == "access_denied":
            return MendaAuthError(
                f"The login was denied in the browser ({self.identity.host}). "
                "Run the login again to retry."
            )
        if exc.error in ("expired_token", "expired"):
            return MendaAuthError(
                "The login's code expired before it was approved. Run the login again."
            )
        return exc
