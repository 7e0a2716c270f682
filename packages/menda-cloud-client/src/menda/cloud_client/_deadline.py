"""One deadline per call: every request, every body read and every lock wait count against it."""

from __future__ import annotations

import time

__all__ = ["DEFAULT_DEADLINE", "Deadline"]

#: Seconds one call (say, one ``keyring get``) may take in all; ``MENDA_TIMEOUT`` changes it.
DEFAULT_DEADLINE = 30.0


class Deadline:
    """A point in (monotonic) time by which a call must be over."""

    __slots__ = ("_end", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def remaining(self) -> float:
        """Seconds left; never negative."""
        return max(self._end - time.monotonic(), 0.0)

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self._end

    def __repr__(self) -> str:
        return f"Deadline({self.seconds:g} s, {self.remaining():.2f} s left)"
