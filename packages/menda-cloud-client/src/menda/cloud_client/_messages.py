"""Turning menda cloud's answers and network failures into one safe, actionable line.

Everything a server or the network sends back (bodies, headers, error text from
``requests`` and ``urllib3``) is untrusted: before it reaches a message it is
masked of the request's secrets, cut of query strings (the client secret travels
in one), escaped of control and bidi characters, and capped in length.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timezone
from email.utils import parsedate_to_datetime
from typing import Any, NamedTuple
from urllib.parse import quote, quote_plus, urlsplit

from menda.core_auth import ENV_HOST, ENV_TIMEOUT, utcnow
from menda.error import MendaCloudAPIError
from menda.error.exceptions import printable as escape_unprintable

__all__ = [
    "BUSY",
    "CA_VARIABLES",
    "RETRY_STATUSES",
    "Failure",
    "Reply",
    "as_sent",
    "clean",
    "deadline_failure",
    "interpret",
    "network_failure",
    "parse_retry_after",
    "printable",
    "reason_of",
]

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 30.0
MAX_TEXT = 300
HOST_HINT = f"is {ENV_HOST} / host pointing at menda cloud?"
CA_VARIABLES = "REQUESTS_CA_BUNDLE or SSL_CERT_FILE"
BUSY = "menda cloud is busy or unavailable: try again in a minute"
NETWORK_HINT = (
    f"Check the host setting ({ENV_HOST} or the profile's host), your network and proxy "
    "(HTTPS_PROXY, NO_PROXY)"
)

_DIGITS = re.compile(r"[0-9]+")
_WWW_AUTH_ERROR = re.compile(r'error="?([A-Za-z0-9_.-]+)"?')
# A query string in any text (requests and urllib3 quote the request URL in their
# errors): the client secret travels there, so it is cut wherever it appears.
_QUERY = re.compile(r"\?[^\s'\")]*=[^\s'\")]*")
_WHITESPACE = re.compile(r"[\t\n\r\v\f]+")
_POOL_PREFIX = re.compile(r"^\w+\(host=[^)]*\): ")


def printable(text: str) -> str:
    """``text`` on one line, every other control or bidi character shown as an escape
    (``\\u202e``): what must never reach a terminal as is."""
    return escape_unprintable(_WHITESPACE.sub(" ", text))


def clean(text: str, secrets: Iterable[str] = (), limit: int = MAX_TEXT) -> str:
    """Make server-supplied text safe to put in a message: no secrets, no query strings,
    no control or bidi characters, at most ``limit`` characters."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = printable(_QUERY.sub("?…", text)).strip()
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def as_sent(secrets: Iterable[str], headers: Mapping[str, str] | None) -> list[str]:
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


def reason_of(exc: BaseException) -> str:
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


class Reply(NamedTuple):
    """An answer as read off the wire, its body bounded."""

    status: int
    #: Case-insensitive, as requests gives them.
    headers: Mapping[str, str]
    body: bytes
    #: Why the body could not be read whole (too large, an unknown encoding), if so.
    problem: str | None = None


@dataclass
class Failure:
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


def _content_kind(content_type: str, secrets: Iterable[str]) -> str:
    kind = content_type.split(";", 1)[0].strip().lower()
    return clean(kind, secrets, limit=80) or "a body with no content type"


def _error_text(body: Mapping[str, Any], secrets: Iterable[str]) -> str | None:
    """What the server said went wrong: ``detail`` (FastAPI), ``message`` (API Gateway),
    then OAuth's ``error_description``."""
    for name in ("detail", "message", "error_description"):
        value = body.get(name)
        if isinstance(value, list) and value and isinstance(value[0], Mapping):
            # FastAPI's validation errors: a list of {"loc", "msg", "type"}.
            value = value[0].get("msg")
        if isinstance(value, str) and value.strip():
            return clean(value, secrets)
    return None


def _json_object(
    content: bytes, content_type: str, secrets: Iterable[str]
) -> tuple[dict[str, Any] | None, str]:
    """The body as a JSON object, or None and why not."""
    if not content.strip():
        return None, "the server sent an empty body"
    try:
        value = json.loads(content)
    except (ValueError, RecursionError):
        kind = _content_kind(content_type, secrets)
        if "json" in kind:
            return None, "the body is not valid JSON"
        return None, f"the server answered {kind}, not JSON: {HOST_HINT}"
    if not isinstance(value, dict):
        return None, f"expected a JSON object, got {type(value).__name__}"
    return value, ""


def interpret(
    reply: Reply, what: str, secrets: list[str], hints: Mapping[int, str]
) -> dict[str, Any] | Failure:
    """The JSON object of a 2xx answer, or the failure it stands for."""
    status, headers = reply.status, reply.headers
    raw_id = headers.get("X-Request-Id") or headers.get("x-amzn-RequestId")
    request_id = (clean(raw_id, secrets, limit=200) or None) if raw_id else None
    content_type = headers.get("Content-Type", "")
    suffix = f" (request id {request_id})" if request_id else ""

    if 200 <= status < 300:
        if reply.problem is None:
            body, problem = _json_object(reply.body, content_type, secrets)
            if body is not None:
                return body
        else:
            problem = reply.problem
        return Failure(
            f"{what}: malformed response (HTTP {status}): {problem}{suffix}",
            status_code=status,
            request_id=request_id,
        )

    if 300 <= status < 400:
        location = headers.get("Location")
        target = ""
        if location:
            parts = urlsplit(location)
            where = f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.netloc else parts.path
            target = " to " + clean(where, secrets, limit=200)
        return Failure(
            f"{what} failed: HTTP {status} redirect{target}. menda-cloud-client does not "
            f"follow redirects, so credentials never reach another host: set {ENV_HOST} "
            f"(or the profile's host) to the URL menda cloud really serves.{suffix}",
            status_code=status,
            request_id=request_id,
        )

    error: str | None = None
    description: str | None = None
    if reply.problem is None:
        body, problem = _json_object(reply.body, content_type, secrets)
    else:
        body, problem = None, reply.problem
    if body is not None:
        description = _error_text(body, secrets)
        raw_error = body.get("error")
        if not (isinstance(raw_error, str) and raw_error.strip()):
            # menda cloud's one-word details ({"detail": "pending"}) work as error codes.
            detail = body.get("detail")
            raw_error = detail if isinstance(detail, str) and detail.isidentifier() else None
        if raw_error:
            error = clean(raw_error, secrets, limit=100) or None
        if description is None and error is None:
            problem = "the JSON body has no detail, message or OAuth error"
    if error is None:
        # RFC 6750 servers may put the code in WWW-Authenticate instead; a hostile one
        # may echo a secret there, so it is masked like the body.
        match = _WWW_AUTH_ERROR.search(headers.get("WWW-Authenticate", ""))
        if match:
            error = clean(match.group(1), secrets, limit=100) or None

    message = f"{what} failed: HTTP {status}"
    if error and error != description:
        message += f" {error}"
    if description:
        message += f": {description}"
    elif problem:
        message += f" ({problem})"
    hint = hints.get(status) or (BUSY if status == 429 or status >= 500 else "")
    if hint:
        message += f". {hint}"
    retryable = status in RETRY_STATUSES
    retry_after = parse_retry_after(headers.get("Retry-After")) if retryable else None
    return Failure(
        message + suffix,
        status_code=status,
        error=error,
        request_id=request_id,
        retryable=retryable,
        retry_after=retry_after,
    )


def deadline_failure(what: str, seconds: float) -> Failure:
    """The deadline passed before a whole answer came (retrying is pointless: no time)."""
    return Failure(
        f"{what} failed: no complete answer within the {seconds:g} s deadline "
        f"({ENV_TIMEOUT} sets it). {NETWORK_HINT}.",
        retryable=True,
    )


def network_failure(
    exc: BaseException,
    *,
    during_body: bool,
    host: str,
    what: str,
    timeout: tuple[float, float],
    secrets: list[str],
) -> Failure:
    """What a request that raised ``exc`` means for the user; raises for the failures not
    worth retrying (TLS verification, a bad CA bundle path, a request requests refused)."""
    import http.client

    import requests  # loaded already: a request was made
    import urllib3

    reason = clean(reason_of(exc), secrets)
    if isinstance(exc, requests.exceptions.SSLError):
        raise MendaCloudAPIError(
            f"TLS certificate verification failed for {host} ({what}): {reason}. If a proxy "
            f"or gateway re-signs TLS traffic, point {CA_VARIABLES} at its CA bundle (PEM)."
        )
    if isinstance(exc, requests.exceptions.ProxyError | urllib3.exceptions.ProxyError):
        return Failure(
            f"{what} failed: could not reach menda cloud through the proxy: {reason}. "
            "Check HTTPS_PROXY / NO_PROXY.",
            retryable=True,
        )
    if isinstance(
        exc, requests.exceptions.Timeout | urllib3.exceptions.TimeoutError | TimeoutError
    ):
        connecting = isinstance(
            exc, requests.exceptions.ConnectTimeout | urllib3.exceptions.ConnectTimeoutError
        )
        which, seconds = ("connect", timeout[0]) if connecting else ("read", timeout[1])
        return Failure(
            f"{what} failed: no answer within {seconds:g} s ({which} timeout). {NETWORK_HINT}.",
            retryable=True,
        )
    if during_body or isinstance(
        exc,
        requests.exceptions.ConnectionError
        | requests.exceptions.ChunkedEncodingError
        | requests.exceptions.ContentDecodingError
        | http.client.HTTPException
        | urllib3.exceptions.HTTPError,  # requests lets a few of these through
    ):
        return Failure(
            f"{what} failed: could not connect to or read from {host}: {reason}. {NETWORK_HINT}.",
            retryable=True,
        )
    if isinstance(exc, requests.exceptions.RequestException):
        raise MendaCloudAPIError(f"{what} failed: {type(exc).__name__}: {reason}")
    if isinstance(exc, OSError):
        # requests raises a bare OSError for a CA bundle path that does not exist.
        raise MendaCloudAPIError(
            f"{what} failed: {clean(str(exc), secrets)}. Check "
            "REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE and SSL_CERT_FILE."
        )
    raise exc
