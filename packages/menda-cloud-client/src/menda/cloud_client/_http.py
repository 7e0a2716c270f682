"""HTTP transport for menda cloud: requests with timeouts, retries, one deadline and bounds.

`requests` is imported on the first request, never at module import: a keyring
lookup answered from the token cache must not pay for loading it.

Each attempt runs in a worker thread that the caller waits for no longer than
the deadline: name resolution, a server that trickles its headers or body one
byte a second, and a stalled proxy all end there. The body is read in pieces
and cut at 1 MiB (``_body``); failures are worded safely by ``_messages``.
"""

from __future__ import annotations

import logging
import os
import platform
import random
import re
import time
from typing import TYPE_CHECKING, Any

from menda.cloud_client._deadline import Deadline
from menda.cloud_client._messages import (
    RETRY_STATUSES,
    Failure,
    as_sent,
    clean,
    deadline_failure,
    interpret,
    network_failure,
    parse_retry_after,
)
from menda.cloud_client._version import __version__
from menda.cloud_client._wire import (
    ACCEPT_ENCODING,
    BodyReadError,
    DeadlinePassedError,
    Outgoing,
    exchange,
)
from menda.error import MendaCloudAPIError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    import requests

__all__ = ["RETRY_STATUSES", "Transport", "build_user_agent", "parse_retry_after"]

log = logging.getLogger(__name__)

MAX_BACKOFF = 8.0
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
# Query parameters that carry a secret; the others (a client id, a grant type, a host
# name) are not masked, so that messages stay readable.
_SECRET_PARAMS = frozenset({"client_secret", "refresh_token", "device_code", "code_verifier"})
# For a loopback host: every proxy variable ignored (a None value removes it in requests).
_NO_PROXIES: dict[str, str | None] = {"http": None, "https": None, "all": None}


def _sleep(seconds: float) -> None:
    """Wait between attempts; a module-level function so tests can replace it."""
    time.sleep(seconds)


def build_user_agent(extra: str | None = None) -> str:
    """`menda-cloud-client/0.1.0 [extra] CPython/3.12.1 Linux`."""
    parts = [f"menda-cloud-client/{__version__}"]
    if extra:
        cleaned = " ".join(_CONTROL.sub(" ", extra).split())
        if cleaned:
            parts.append(cleaned)
    parts.append(f"{platform.python_implementation()}/{platform.python_version()}")
    parts.append(platform.system() or "unknown")
    return " ".join(parts)


def _request_record(
    method: str, url: str, status: int | None, elapsed_ms: float, error: str | None = None
) -> dict[str, Any]:
    """Each attempt, as data on its debug record, for tools (diagnose) that list requests.

    ``url`` never carries the query string: it holds the client secret.
    """
    request: dict[str, Any] = {"method": method, "url": url, "status": status, "ms": elapsed_ms}
    if error is not None:
        request["error"] = error
    return {"menda_request": request}


def _verify() -> bool | str:
    # requests reads REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE itself (trust_env), but not
    # SSL_CERT_FILE, which uv, pip and corporate setups use: honour it too.
    if os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE"):
        return True
    return os.environ.get("SSL_CERT_FILE") or True


def is_loopback(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ``::1`` (the hosts plain http is allowed for)."""
    import ipaddress
    from urllib.parse import urlsplit

    name = (urlsplit(host).hostname or "").rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class _NoQueryStrings(logging.Filter):
    """Cut query strings from urllib3's request log lines (they hold the client secret)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(
                clean(arg, limit=10_000) if isinstance(arg, str) else arg for arg in record.args
            )
        if isinstance(record.msg, str):
            record.msg = clean(record.msg, limit=10_000)
        return True


_FILTER = _NoQueryStrings()


def _scrub_urllib3_logs() -> None:
    # urllib3 logs "POST /path?query HTTP/1.1" at DEBUG; an application that turns on
    # debug logging (pip -vv, pip --log) must not get our client secret in its file.
    logger = logging.getLogger("urllib3.connectionpool")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)


def _keep_our_authorization(request: requests.PreparedRequest) -> requests.PreparedRequest:
    return request


def _unsendable(headers: Mapping[str, str] | None) -> str | None:
    """The name of a header whose value cannot go on the wire, if any (never the value)."""
    for name, value in (headers or {}).items():
        if not (value.isascii() and value.isprintable()) or len(value) > 20_000:
            return name
    return None


class Transport:
    """Requests to one menda cloud host with timeouts, retries and a deadline."""

    def __init__(
        self,
        host: str,
        *,
        timeout: tuple[float, float],
        max_attempts: int,
        deadline: float,
        backoff: float,
        user_agent: str,
    ) -> None:
        self.host = host
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.deadline = deadline
        self.backoff = backoff
        self.user_agent = user_agent
        #: Attempts sent so far (for the caller's failure memory: was menda cloud asked?).
        self.sent = 0
        # Every secret sent so far: a server may echo one in a later answer (say, the
        # token a renewal replaced), so each message is masked of them all.
        self._secrets: set[str] = set()
        # A proxy between us and a loopback host sees the client secret and tokens in
        # clear text (http://), and is never what the user meant: no proxy for those.
        self._proxies = _NO_PROXIES if is_loopback(host) else None
        self._session: requests.Session | None = None

    def __repr__(self) -> str:
        return f"Transport(host={self.host!r})"

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def _get_session(self) -> requests.Session:
        if self._session is None:
            _scrub_urllib3_logs()
            # Imported here rather than at module level: requests and urllib3 add tens
            # of milliseconds to start-up, and cache hits never need them.
            import requests

            session = requests.Session()
            session.headers["User-Agent"] = self.user_agent
            session.headers["Accept"] = "application/json"
            session.headers["Accept-Encoding"] = ACCEPT_ENCODING
            # Without an auth of its own, requests fills Authorization from ~/.netrc,
            # replacing our Basic or Bearer header and sending the user's netrc
            # password to menda cloud. A no-op auth keeps our header and the netrc out.
            session.auth = _keep_our_authorization
            self._session = session
        return self._session

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        secrets: Iterable[str] = (),
        hints: Mapping[int, str] | None = None,
        deadline: Deadline | None = None,
    ) -> dict[str, Any]:
        """Send `method` to `host + path` (``params`` in the query string) and return the
        JSON object of a 2xx answer.

        Every failure, after retries, is a `MendaCloudAPIError`; ``hints`` maps a status
        to what the user should do about it. ``deadline`` is the caller's, shared with
        its other requests and lock waits; without one, this request gets its own.
        The URL is never logged with its query.
        """
        what = f"{method} {path} at {self.host}"
        bad_header = _unsendable(headers)
        if bad_header is not None:
            raise MendaCloudAPIError(
                f"{what} not sent: the {bad_header} header would hold characters that are "
                "not visible ASCII (a damaged token in the cache or login file?). Run "
                "'menda auth login' again, or check the M2M client."
            )
        if deadline is None:
            deadline = Deadline(self.deadline)
        hidden = [v for k, v in (params or {}).items() if k in _SECRET_PARAMS]
        self._secrets.update(as_sent([*secrets, *hidden], headers))
        secrets = sorted(self._secrets, key=len, reverse=True)
        url = self.host + path
        last: Failure | None = None
        attempts = 0
        for attempt in range(1, self.max_attempts + 1):
            remaining = deadline.remaining()
            if remaining <= 0:
                break
            attempts = attempt
            sent = time.monotonic()
            failure = self._attempt(
                method,
                url,
                attempt=attempt,
                what=what,
                params=params,
                json_body=json_body,
                headers=headers,
                deadline=deadline,
                secrets=secrets,
                hints=hints or {},
            )
            if isinstance(failure, dict):
                return failure
            if not failure.retryable:
                raise failure.to_error(1)
            if failure.status_code is None:
                elapsed_ms = (time.monotonic() - sent) * 1000
                log.debug(
                    "%s %s failed after %.0f ms (attempt %d of %d): %s",
                    method,
                    url,
                    elapsed_ms,
                    attempt,
                    self.max_attempts,
                    failure.message,
                    extra=_request_record(method, url, None, elapsed_ms, failure.message),
                )
            last = failure
            if attempt == self.max_attempts:
                break
            wait = failure.retry_after
            if wait is None:
                base = min(MAX_BACKOFF, self.backoff * 2 ** (attempt - 1))
                wait = base * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not crypto
            if wait >= deadline.remaining():
                log.debug("not retrying %s: waiting %.2f s would pass the deadline", url, wait)
                break
            log.debug("retrying %s in %.2f s", url, wait)
            _sleep(wait)
        if last is None:
            last = deadline_failure(what, deadline.seconds)
        raise last.to_error(attempts)

    def _attempt(
        self,
        method: str,
        url: str,
        *,
        attempt: int,
        what: str,
        params: Mapping[str, str] | None,
        json_body: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        deadline: Deadline,
        secrets: list[str],
        hints: Mapping[int, str],
    ) -> dict[str, Any] | Failure:
        """One attempt: the JSON object of a 2xx answer, or what went wrong."""
        session = self._get_session()
        remaining = deadline.remaining()
        timeout = (min(self.timeout[0], remaining), min(self.timeout[1], remaining))
        out = Outgoing(method, url, params, json_body, headers, timeout, _verify(), self._proxies)
        sent = time.monotonic()
        self.sent += 1
        failed: Exception | None = None
        try:
            reply = exchange(session, out, deadline)
        except DeadlinePassedError:
            return deadline_failure(what, deadline.seconds)
        except Exception as exc:
            failed = exc
        if failed is not None:
            # Outside the handler: an error raised from here must not keep the original
            # as its __context__, since requests quotes the URL, query string included.
            during_body = isinstance(failed, BodyReadError)
            cause = failed.cause if isinstance(failed, BodyReadError) else failed
            log.debug("%s %s raised %s", method, url, type(cause).__name__)
            return network_failure(
                cause,
                during_body=during_body,
                host=self.host,
                what=what,
                timeout=timeout,
                secrets=secrets,
            )
        elapsed_ms = (time.monotonic() - sent) * 1000
        log.debug(
            "%s %s -> HTTP %d in %.0f ms (attempt %d of %d)",
            method,
            url,
            reply.status,
            elapsed_ms,
            attempt,
            self.max_attempts,
            extra=_request_record(method, url, reply.status, elapsed_ms),
        )
        return interpret(reply, what, secrets, hints)
