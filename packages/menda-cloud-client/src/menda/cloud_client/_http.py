"""HTTP transport for menda cloud: one POST with timeouts, retries and errors that explain.

`requests` is imported on the first request, never at module import: a keyring
lookup answered from the token cache must not pay for loading it.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import platform
import random
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timezone
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, quote_plus, urlsplit

from menda.cloud_client._version import __version__
from menda.core_auth import ENV_HOST, utcnow
from menda.error import MendaCloudAPIError

if TYPE_CHECKING:
    import requests

__all__ = ["RETRY_STATUSES", "Transport", "build_user_agent"]

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_BACKOFF = 8.0
MAX_RETRY_AFTER = 30.0
_MAX_TEXT = 300
_HOST_HINT = f"is {ENV_HOST} / host pointing at menda cloud?"
_CA_VARIABLES = "REQUESTS_CA_BUNDLE or SSL_CERT_FILE"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_DIGITS = re.compile(r"[0-9]+")
_WWW_AUTH_ERROR = re.compile(r'error="?([A-Za-z0-9_.-]+)"?')


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


def _as_sent(secrets: Iterable[str], headers: Mapping[str, str] | None) -> list[str]:
    """Each secret as it may come back from a server: raw, URL-encoded, or in our header."""
    found: set[str] = set()
    for secret in secrets:
        if secret:
            found.update((secret, quote(secret, safe=""), quote_plus(secret)))
    for name in ("Authorization", "authorizationToken"):
        value = (headers or {}).get(name, "")
        if value:
            # "Bearer <token>" is the token.
            found.update((value, value.partition(" ")[2]))
    # Longest first, so a secret inside a longer variant is masked whole.
    return sorted((s for s in found if s), key=len, reverse=True)


# A query string in any text (requests and urllib3 quote the request URL in their
# errors): the client secret travels there, so it is cut wherever it appears.
_QUERY = re.compile(r"\?[^\s'\")]*=[^\s'\")]*")


def _clean(text: str, secrets: Iterable[str] = (), limit: int = _MAX_TEXT) -> str:
    """Make server-supplied text safe to put in a message: no secrets, no control characters."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = _QUERY.sub("?…", text)
    text = _CONTROL.sub(" ", text).strip()
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


_POOL_PREFIX = re.compile(r"^\w+\(host=[^)]*\): ")


def _reason(exc: BaseException) -> str:
    """The innermost cause of a requests/urllib3 error, without the connection-pool noise."""
    seen: set[int] = set()
    current = exc
    while id(current) not in seen:
        seen.add(id(current))
        reason = getattr(current, "reason", None)
        nested = [a for a in current.args if isinstance(a, BaseException)]
        if isinstance(reason, BaseException):
            current = reason
        elif nested:
            current = nested[-1]
        else:
            break
    text = _POOL_PREFIX.sub("", str(current)) or type(current).__name__
    return text.replace("Failed to establish a new connection: ", "")


def _verify() -> bool | str:
    # requests reads REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE itself (trust_env), but not
    # SSL_CERT_FILE, which uv, pip and corporate setups use: honour it too.
    if os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE"):
        return True
    return os.environ.get("SSL_CERT_FILE") or True


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP-date), capped at 30."""
    if not value:
        return None
    value = value.strip()
    if _DIGITS.fullmatch(value):
        return float(min(int(value), int(MAX_RETRY_AFTER)))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    try:
        seconds = (when - utcnow()).total_seconds()
    except OverflowError:
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


class _NoQueryStrings(logging.Filter):
    """Cut query strings from urllib3's request log lines (they hold the client secret)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(
                _QUERY.sub("?…", arg) if isinstance(arg, str) else arg for arg in record.args
            )
        if isinstance(record.msg, str):
            record.msg = _QUERY.sub("?…", record.msg)
        return True


_FILTER = _NoQueryStrings()


def _scrub_urllib3_logs() -> None:
    # urllib3 logs "POST /path?query HTTP/1.1" at DEBUG; an application that turns on
    # debug logging (pip -vv, pip --log) must not get our client secret in its file.
    logger = logging.getLogger("urllib3.connectionpool")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)


def _content_kind(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower() or "a body with no content type"


def _keep_our_authorization(request: requests.PreparedRequest) -> requests.PreparedRequest:
    return request


_BUSY = "menda cloud is busy or unavailable: try again in a minute"


def _error_text(body: Mapping[str, Any], secrets: Iterable[str]) -> str | None:
    """What the server said went wrong: ``detail`` (FastAPI), ``message`` (API Gateway),
    then OAuth's ``error_description``."""
    for name in ("detail", "message", "error_description"):
        value = body.get(name)
        if isinstance(value, list) and value and isinstance(value[0], Mapping):
            # FastAPI's validation errors: a list of {"loc", "msg", "type"}.
            value = value[0].get("msg")
        if isinstance(value, str) and value.strip():
            return _clean(value, secrets)
    return None


def _json_object(content: bytes, content_type: str) -> tuple[dict[str, Any] | None, str]:
    """The body as a JSON object, or None and why not."""
    if not content.strip():
        return None, "the server sent an empty body"
    try:
        value = json.loads(content)
    except (ValueError, RecursionError):
        kind = _content_kind(content_type)
        if "json" in kind:
            return None, "the body is not valid JSON"
        return None, f"the server answered {kind}, not JSON: {_HOST_HINT}"
    if not isinstance(value, dict):
        return None, f"expected a JSON object, got {type(value).__name__}"
    return value, ""


@dataclass
class _Failure:
    """One failed attempt, kept until we know whether it is the last."""

    message: str
    status_code: int | None = None
    error: str | None = None
    request_id: str | None = None
    retryable: bool = False
    retry_after: float | None = None

    def to_error(self, attempts: int) -> MendaCloudAPIError:
        message = self.message
        if attempts > 1:
            message = f"{message} (gave up after {attempts} attempts)"
        return MendaCloudAPIError(
            message, status_code=self.status_code, error=self.error, request_id=self.request_id
        )


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
    ) -> dict[str, Any]:
        """Send `method` to `host + path` (``params`` in the query string) and return the
        JSON object of a 2xx answer.

        Every failure, after retries, is a `MendaCloudAPIError`; ``hints`` maps a status
        to what the user should do about it. The URL is never logged with its query.
        """
        session = self._get_session()
        import requests  # already loaded by _get_session
        import urllib3

        secrets = _as_sent([*secrets, *(params or {}).values()], headers)
        url = self.host + path
        what = f"{method} {path} at {self.host}"
        start = time.monotonic()
        last: _Failure | None = None
        attempts = 0
        for attempt in range(1, self.max_attempts + 1):
            remaining = self.deadline - (time.monotonic() - start)
            if remaining <= 0:
                break
            attempts = attempt
            timeout = (min(self.timeout[0], remaining), min(self.timeout[1], remaining))
            sent = time.monotonic()
            try:
                response = session.request(
                    method,
                    url,
                    params=params,
                    json=json_body,
                    headers=dict(headers or {}),
                    timeout=timeout,
                    allow_redirects=False,
                    verify=_verify(),
                )
            except requests.exceptions.SSLError as exc:
                log.debug("%s %s: TLS error: %s", method, url, type(exc).__name__)
                raise MendaCloudAPIError(
                    f"TLS certificate verification failed for {self.host} ({what}): "
                    f"{_clean(_reason(exc), secrets)}. If a proxy or gateway re-signs TLS "
                    f"traffic, point {_CA_VARIABLES} at its CA bundle (PEM)."
                ) from None
            except requests.exceptions.ProxyError as exc:
                failure = _Failure(
                    f"{what} failed: could not reach menda cloud through the proxy: "
                    f"{_clean(_reason(exc), secrets)}. Check HTTPS_PROXY / NO_PROXY.",
                    retryable=True,
                )
            except requests.exceptions.Timeout as exc:
                which = "connect" if isinstance(exc, requests.exceptions.ConnectTimeout) else "read"
                seconds = timeout[0] if which == "connect" else timeout[1]
                failure = _Failure(
                    f"{what} failed: no answer within {seconds:g} s ({which} timeout). "
                    f"Check the host setting ({ENV_HOST} or the profile's host), your network "
                    "and proxy (HTTPS_PROXY, NO_PROXY).",
                    retryable=True,
                )
            except (
                requests.exceptions.ConnectionError,
                requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError,
                http.client.HTTPException,
                urllib3.exceptions.HTTPError,  # requests lets a few of these through
            ) as exc:
                failure = _Failure(
                    f"{what} failed: could not connect to or read from {self.host}: "
                    f"{_clean(_reason(exc), secrets)}. Check the host setting "
                    f"({ENV_HOST} or the profile's host), your network and proxy "
                    "(HTTPS_PROXY, NO_PROXY).",
                    retryable=True,
                )
            except requests.exceptions.RequestException as exc:
                raise MendaCloudAPIError(
                    f"{what} failed: {type(exc).__name__}: {_clean(str(exc), secrets)}"
                ) from None
            except OSError as exc:
                # requests raises a bare OSError for a CA bundle path that does not exist.
                raise MendaCloudAPIError(
                    f"{what} failed: {_clean(str(exc), secrets)}. Check "
                    "REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE and SSL_CERT_FILE."
                ) from None
            else:
                elapsed_ms = (time.monotonic() - sent) * 1000
                log.debug(
                    "%s %s -> HTTP %d in %.0f ms (attempt %d of %d)",
                    method,
                    url,
                    response.status_code,
                    elapsed_ms,
                    attempt,
                    self.max_attempts,
                    extra=_request_record(method, url, response.status_code, elapsed_ms),
                )
                outcome = self._interpret(response, what, secrets, hints or {})
                if isinstance(outcome, dict):
                    return outcome
                failure = outcome
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
            remaining = self.deadline - (time.monotonic() - start)
            if wait >= remaining:
                log.debug("not retrying %s: waiting %.2f s would pass the deadline", url, wait)
                break
            log.debug("retrying %s in %.2f s", url, wait)
            _sleep(wait)
        if last is None:
            last = _Failure(f"{what} failed: the {self.deadline:g} s deadline passed")
        raise last.to_error(attempts)

    def _interpret(
        self,
        response: requests.Response,
        what: str,
        secrets: list[str],
        hints: Mapping[int, str],
    ) -> dict[str, Any] | _Failure:
        status = response.status_code
        raw_id = response.headers.get("X-Request-Id") or response.headers.get("x-amzn-RequestId")
        request_id = (_clean(raw_id, secrets, limit=200) or None) if raw_id else None
        content_type = response.headers.get("Content-Type", "")
        content = response.content or b""
        suffix = f" (request id {request_id})" if request_id else ""

        if 200 <= status < 300:
            body, problem = _json_object(content, content_type)
            if body is not None:
                return body
            return _Failure(
                f"{what}: malformed response (HTTP {status}): {problem}{suffix}",
                status_code=status,
                request_id=request_id,
            )

        if 300 <= status < 400:
            location = response.headers.get("Location")
            target = ""
            if location:
                parts = urlsplit(location)
                target = _clean(f" to {parts.scheme}://{parts.netloc}{parts.path}", secrets)
                if not parts.netloc:
                    target = _clean(f" to {parts.path}", secrets)
            return _Failure(
                f"{what} failed: HTTP {status} redirect{target}. menda-cloud-client does not "
                f"follow redirects, so credentials never reach another host: set {ENV_HOST} "
                f"(or the profile's host) to the URL menda cloud really serves.{suffix}",
                status_code=status,
                request_id=request_id,
            )

        error: str | None = None
        body, problem = _json_object(content, content_type)
        description = _error_text(body, secrets) if body is not None else None
        if body is not None:
            raw_error = body.get("error")
            if isinstance(raw_error, str) and raw_error.strip():
                error = _clean(raw_error, secrets, limit=100)
            if description is None and error is None:
                problem = "the JSON body has no detail, message or OAuth error"
        if error is None:
            # RFC 6750 servers may put the code in WWW-Authenticate instead.
            match = _WWW_AUTH_ERROR.search(response.headers.get("WWW-Authenticate", ""))
            if match:
                error = match.group(1)

        message = f"{what} failed: HTTP {status}"
        if error and error != description:
            message += f" {error}"
        if description:
            message += f": {description}"
        elif problem:
            message += f" ({problem})"
        hint = hints.get(status) or (_BUSY if status == 429 or status >= 500 else "")
        if hint:
            message += f". {hint}"
        retryable = status in RETRY_STATUSES
        retry_after = parse_retry_after(response.headers.get("Retry-After")) if retryable else None
        return _Failure(
            message + suffix,
            status_code=status,
            error=error,
            request_id=request_id,
            retryable=retryable,
            retry_after=retry_after,
        )
