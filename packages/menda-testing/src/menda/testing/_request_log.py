"""The proxy's request log: every request it answered, with status and auth, never a token."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["RequestLog", "RequestRecord"]


@dataclass(frozen=True)
class RequestRecord:
    """One line of the request log. Never holds a credential."""

    method: str
    scheme: str
    host: str
    path: str
    status: int
    via: str
    auth_presented: bool = False
    auth_valid: bool = False


@dataclass
class RequestLog:
    """Thread-safe log of everything the proxy answered, in order."""

    _records: list[RequestRecord] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def append(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)

    def records(self, **criteria: object) -> list[RequestRecord]:
        """Records whose fields equal every given criterion.

        ``path_prefix="/pypi/r/"`` matches the start of the path instead.
        """
        prefix = criteria.pop("path_prefix", None)
        unknown = set(criteria) - set(RequestRecord.__dataclass_fields__)
        if unknown:
            msg = f"unknown request log field(s): {sorted(unknown)}"
            raise TypeError(msg)
        with self._lock:
            snapshot = list(self._records)
        return [
            r
            for r in snapshot
            if all(getattr(r, k) == v for k, v in criteria.items())
            and (prefix is None or r.path.startswith(str(prefix)))
        ]

    def count(self, **criteria: object) -> int:
        """How many records match, e.g. ``count(status=401, host=h)``."""
        return len(self.records(**criteria))

    def statuses(self, **criteria: object) -> list[int]:
        return [r.status for r in self.records(**criteria)]

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def __iter__(self) -> Iterator[RequestRecord]:
        with self._lock:
            return iter(list(self._records))
