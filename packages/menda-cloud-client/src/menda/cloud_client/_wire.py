"""One attempt on the wire: sent by a worker thread, waited for until the deadline only,
its body read with bounds (at most 1 MiB, decompressed size included).

A hostile or broken server may answer one byte a second, send hundreds of
megabytes, or a small gzip body that inflates to gigabytes; name resolution or a
proxy may stall. The caller waits for the worker no longer than the deadline,
whatever it is blocked on. The body is read in pieces, decompressed here (never
by urllib3, whose limits vary by version) with a cap on the output, and the read
stops at the cap, at the deadline, or when the caller has given up.
"""

from __future__ import annotations

import contextlib
import threading
import zlib
from typing import TYPE_CHECKING, Any, NamedTuple

from menda.cloud_client._messages import Reply

if TYPE_CHECKING:
    from collections.abc import Mapping

    import requests

    from menda.cloud_client._deadline import Deadline

__all__ = [
    "ACCEPT_ENCODING",
    "MAX_BODY",
    "BodyReadError",
    "DeadlinePassedError",
    "Outgoing",
    "exchange",
    "read_body",
]

#: No answer of menda cloud comes near this; anything larger is cut and refused.
MAX_BODY = 1 << 20
#: Only what we decompress ourselves (requests would add br and zstd when installed).
ACCEPT_ENCODING = "gzip, deflate"
_PIECE = 64 * 1024
_TOO_LARGE = f"the body is larger than {MAX_BODY // (1 << 20)} MiB"


class DeadlinePassedError(Exception):
    """Raised when the deadline passes (or the caller gives up) before the answer is whole."""


class BodyReadError(Exception):
    """Raised when the connection broke while the body was read; ``cause`` says how."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(cause)
        self.cause = cause


class _Inflater:
    """gzip (any number of members) or deflate (zlib-wrapped or raw), with a cap on output."""

    def __init__(self, encoding: str) -> None:
        self._gzip = encoding in ("gzip", "x-gzip")
        self._started = False
        self._members = 0  # complete gzip members so far
        self._obj = self._new()

    def _new(self) -> zlib._Decompress:
        # 16 + MAX_WBITS: a gzip header; MAX_WBITS: deflate inside a zlib wrapper.
        return zlib.decompressobj(16 + zlib.MAX_WBITS if self._gzip else zlib.MAX_WBITS)

    def feed(self, data: bytes, room: int) -> bytes:
        """Up to ``room`` + 1 bytes of output for ``data`` (more means: over the cap)."""
        out = bytearray()
        while data and len(out) <= room:
            try:
                out += self._obj.decompress(data, room + 1 - len(out))
            except zlib.error:
                if self._gzip and self._members:
                    break  # bytes after a complete gzip member: ignored, as gzip does
                if self._gzip or self._started:
                    raise
                # Some servers send raw deflate under "deflate": try that instead.
                self._obj = zlib.decompressobj(-zlib.MAX_WBITS)
                self._started = True
                continue
            self._started = True
            if self._obj.unconsumed_tail:
                data = self._obj.unconsumed_tail
            elif self._obj.eof and self._gzip:
                self._members += 1
                data = self._obj.unused_data  # the next gzip member, if any
                self._obj = self._new()
            else:
                data = b""
        return bytes(out)


def read_body(
    response: requests.Response, deadline: Deadline, cancel: threading.Event
) -> tuple[bytes, str | None]:
    """The body, and why it is not whole when it is not (too large, unknown encoding).

    Raises ``DeadlinePassedError`` at the deadline or when ``cancel`` is set, and
    whatever urllib3 raises for a broken connection.
    """
    headers = response.headers
    length = headers.get("Content-Length", "").strip()
    if length.isdigit() and len(length) < 20 and int(length) > MAX_BODY:
        return b"", _TOO_LARGE
    encoding = headers.get("Content-Encoding", "").strip().lower()
    inflater: _Inflater | None = None
    if encoding in ("gzip", "x-gzip", "deflate"):
        inflater = _Inflater(encoding)
    elif encoding not in ("", "identity"):
        return b"", "the body has a content encoding menda-cloud-client does not read"
    raw = response.raw
    # read1 (urllib3 >= 2.3) returns what has arrived, so a server that trickles one
    # byte a second is checked against the deadline after every byte.
    read = getattr(raw, "read1", None) or raw.read
    body = bytearray()
    while True:
        if cancel.is_set() or deadline.expired:
            raise DeadlinePassedError
        piece = read(_PIECE, decode_content=False)
        if not piece:
            break
        if inflater is not None:
            try:
                piece = inflater.feed(piece, MAX_BODY - len(body))
            except zlib.error:
                return bytes(body), f"the body is not valid {encoding} data"
        body += piece
        if len(body) > MAX_BODY:
            return bytes(body[:MAX_BODY]), _TOO_LARGE
    return bytes(body), None


class Outgoing(NamedTuple):
    """One request as ``requests`` takes it."""

    method: str
    url: str
    params: Mapping[str, str] | None
    json_body: Mapping[str, Any] | None
    headers: Mapping[str, str] | None
    timeout: tuple[float, float]
    verify: bool | str
    proxies: Mapping[str, str | None] | None


class _InFlight:
    """What the waiting thread and the worker share."""

    def __init__(self) -> None:
        self.cancel = threading.Event()
        self.response: requests.Response | None = None
        self.outcome: list[Reply | BaseException] = []

    def abandon(self) -> None:
        self.cancel.set()
        response = self.response
        shutdown = getattr(response.raw, "shutdown", None) if response is not None else None
        if shutdown is not None:
            # urllib3 >= 2.3: wakes a read blocked on the socket, from another thread.
            with contextlib.suppress(Exception):
                shutdown()


def _work(
    in_flight: _InFlight, session: requests.Session, out: Outgoing, deadline: Deadline
) -> None:
    outcome: Reply | BaseException
    try:
        response = session.request(
            out.method,
            out.url,
            params=out.params,
            json=out.json_body,
            headers=dict(out.headers or {}),
            timeout=out.timeout,
            allow_redirects=False,
            verify=out.verify,
            proxies=dict(out.proxies) if out.proxies is not None else None,  # type: ignore[arg-type]
            stream=True,
        )
    except BaseException as exc:  # handed to the waiting thread, which sorts it out
        outcome = exc
    else:
        in_flight.response = response
        try:
            body, problem = read_body(response, deadline, in_flight.cancel)
            outcome = Reply(response.status_code, response.headers, body, problem)
        except DeadlinePassedError as exc:
            outcome = exc
        except BaseException as exc:
            outcome = BodyReadError(exc)
        finally:
            with contextlib.suppress(Exception):
                response.close()
    in_flight.outcome.append(outcome)


def exchange(session: requests.Session, out: Outgoing, deadline: Deadline) -> Reply:
    """Send ``out`` and read its answer, within ``deadline``.

    Raises ``DeadlinePassedError`` when the answer is not whole by then,
    ``BodyReadError`` when the connection broke during the body, and whatever
    ``requests`` raised for the request itself.
    """
    in_flight = _InFlight()
    worker = threading.Thread(
        target=_work,
        args=(in_flight, session, out, deadline),
        name="menda-cloud-client request",
        daemon=True,
    )
    worker.start()
    worker.join(deadline.remaining())
    if worker.is_alive() or not in_flight.outcome:
        # The worker is left to end on its own (it stops at its next read); the
        # process does not wait for it, even at exit.
        in_flight.abandon()
        raise DeadlinePassedError
    outcome = in_flight.outcome[0]
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome
