"""The ``menda`` loggers' records during a diagnosis: warnings to report, requests to list.

The transport puts each HTTP attempt on its debug record as data
(``record.menda_request``: method, URL without its query string, status, time),
so the requests are listed without parsing any log text.
"""

from __future__ import annotations

import logging
import sys
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from menda.core_auth import ENV_LOG_LEVEL

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

__all__ = ["Collector", "capture", "message", "requests_in", "warnings_in"]

# What a request record may carry; anything else is dropped, so a field added to the
# transport's records later cannot leak into the report unreviewed.
_REQUEST_FIELDS = ("method", "url", "status", "ms", "error")


class Collector(logging.Handler):
    """Keeps every record it is given."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def capture(environ: Mapping[str, str]) -> Iterator[Collector]:
    """Collect every record of the ``menda`` loggers (not printed).

    With ``MENDA_LOG_LEVEL`` set, records at that level also go to stderr, as in the backend.
    """
    logger = logging.getLogger("menda")
    collector = Collector()
    saved = (logger.level, logger.propagate)
    stream: logging.Handler | None = None
    requested = environ.get(ENV_LOG_LEVEL, "").strip().upper()
    level = logging.getLevelName(requested) if requested else None
    if isinstance(level, int):
        stream = logging.StreamHandler(sys.stderr)
        stream.setLevel(level)
        stream.setFormatter(logging.Formatter("menda-keyring: %(message)s"))
        logger.addHandler(stream)
    logger.addHandler(collector)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield collector
    finally:
        logger.removeHandler(collector)
        if stream is not None:
            logger.removeHandler(stream)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def message(record: logging.LogRecord) -> str:
    """The record's text; a malformed record must not break the report."""
    try:
        return record.getMessage()
    except Exception:  # any formatting error
        return str(record.msg)


def requests_in(records: Sequence[logging.LogRecord]) -> list[dict[str, Any]]:
    """Each HTTP attempt among ``records``, in order, from their ``menda_request`` data."""
    found: list[dict[str, Any]] = []
    for record in records:
        request = getattr(record, "menda_request", None)
        if not isinstance(request, dict):
            continue
        item = {name: request.get(name) for name in _REQUEST_FIELDS if name in request}
        ms = item.get("ms")
        if isinstance(ms, (int, float)):
            item["ms"] = round(ms)
        found.append(item)
    return found


def warnings_in(records: Sequence[logging.LogRecord]) -> list[str]:
    """The text of every warning or error among ``records``."""
    return [message(r) for r in records if r.levelno >= logging.WARNING]
