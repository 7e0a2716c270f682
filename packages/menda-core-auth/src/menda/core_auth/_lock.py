"""A bounded-wait, cross-process lock on a lock file (flock on POSIX, msvcrt on Windows).

Only the slow path takes it (a miss, a refresh, a login written back): a lookup
answered from the cache never imports this module.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING

from menda.core_auth._files import FILE_MODE

if TYPE_CHECKING:
    from pathlib import Path
    from types import TracebackType

__all__ = ["FileLock"]

log = logging.getLogger("menda.core_auth")


class FileLock:
    """Exclusive, bounded-wait lock on a lock file; entering yields whether it is held.

    The lock file is created 0600 and never followed through a symbolic link. It
    stays after use: unlinking it would let a waiter lock a file that a newcomer
    no longer sees.
    """

    _POLL_FIRST = 0.005
    _POLL_MAX = 0.05

    def __init__(self, path: Path | None, timeout: float) -> None:
        self._path = path
        self._timeout = timeout
        self._fd: int | None = None
        self._held = False
        #: True when entering gave up because another process held the lock all along.
        self.timed_out = False

    def __enter__(self) -> bool:
        path = self._path
        if path is None:
            return False
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(path, flags, FILE_MODE)
        except (OSError, ValueError) as exc:
            log.debug("cannot open lock file %s (%s); going on without the lock", path, exc)
            return False
        self._fd = fd
        self._held = self._acquire(fd, path)
        return self._held

    def _acquire(self, fd: int, path: Path) -> bool:
        import random
        import time

        deadline = time.monotonic() + max(self._timeout, 0.0)
        pause = self._POLL_FIRST
        while True:
            try:
                if sys.platform == "win32":  # pragma: no cover - Windows
                    import msvcrt

                    os.lseek(fd, 0, os.SEEK_SET)
                    msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
                else:
                    import fcntl

                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except OSError as exc:
                if sys.platform != "win32" and not isinstance(exc, BlockingIOError):
                    # ENOLCK on some network file systems: locking is not available.
                    log.debug("cannot lock %s (%s); going on without the lock", path, exc)
                    return False
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.timed_out = True
                log.debug(
                    "lock %s still held after %.1f s; going on without the lock",
                    path,
                    self._timeout,
                )
                return False
            time.sleep(min(remaining, pause * (0.5 + random.random())))  # noqa: S311
            pause = min(pause * 2, self._POLL_MAX)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if self._held:
                if sys.platform == "win32":  # pragma: no cover - Windows
                    import msvcrt

                    os.lseek(fd, 0, os.SEEK_SET)
                    msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
                else:
                    import fcntl

                    fcntl.flock(fd, fcntl.LOCK_UN)
        except OSError as err:
            log.debug("cannot unlock %s: %s", self._path, err)
        finally:
            self._held = False
            os.close(fd)
