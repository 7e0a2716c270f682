"""Careful file I/O for the token files: bounded reads, atomic private writes.

Everything here treats the file system as untrusted: a read never follows a
symbolic link (when asked not to), never blocks on a FIFO and never slurps more
than a bound; a write goes to a fresh 0600 temporary file that replaces the
target in one step. The lock that serialises writers is in ``_lock.py``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "FILE_MODE",
    "NotARegularFileError",
    "NotOursError",
    "atomic_write",
    "ensure_private_dir",
    "fix_for_dir",
    "private_dir_problem",
    "read_regular_file",
    "remove_stale_temporaries",
]

log = logging.getLogger("menda.core_auth")

FILE_MODE = 0o600
DIR_MODE = 0o700
_TMP_SUFFIX = ".tmp"
# ".<target name>.<pid>.<12 hex>.tmp": what atomic_write creates, and all it ever removes.
_TMP_NAME = r"\.(?P<target>.+)\.(?P<pid>[0-9]{1,10})\.[0-9a-f]{12}\.tmp"
#: A temporary file of ours older than this is left over from a killed process.
STALE_AFTER = 600.0
_POSIX = sys.platform != "win32"


class NotARegularFileError(OSError):
    """Raised when a path names a FIFO, a device, a directory or a symbolic link."""


class NotOursError(OSError):
    """Raised when a token file is owned by another user: it may have been planted."""


def _open_flags(*, follow_symlinks: bool) -> int:
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    return flags


def _kind(mode: int) -> str:
    import stat

    if stat.S_ISDIR(mode):
        return "is a directory"
    if stat.S_ISFIFO(mode):
        return "is a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "is a device"
    if stat.S_ISSOCK(mode):
        return "is a socket"
    return "is not a regular file"


def read_regular_file(path: Path, limit: int, *, follow_symlinks: bool = False) -> bytes:
    """The bytes of ``path`` when it is a regular file of at most ``limit`` bytes.

    Raises ``FileNotFoundError``, ``NotARegularFileError`` (FIFO, device, directory,
    or a symbolic link when ``follow_symlinks`` is false), ``ValueError`` when the
    file is larger than ``limit``, or another ``OSError``.
    """
    import errno
    import stat

    try:
        fd = os.open(path, _open_flags(follow_symlinks=follow_symlinks))
    except OSError as exc:
        # O_NOFOLLOW on a link fails with ELOOP (Linux) or EMLINK (some BSDs).
        if exc.errno in (errno.ELOOP, errno.EMLINK) and not follow_symlinks:
            raise NotARegularFileError(errno.ELOOP, "is a symbolic link", str(path)) from None
        if exc.errno == errno.EISDIR:
            raise NotARegularFileError(errno.EISDIR, "is a directory", str(path)) from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotARegularFileError(errno.EINVAL, _kind(info.st_mode), str(path))
        if not follow_symlinks and _POSIX and info.st_uid != os.geteuid():
            # Tokens are only ever read from files the user owns: another user who
            # can write to the directory must not be able to plant a login or a token.
            raise NotOursError(
                errno.EPERM, f"is owned by another user (uid {info.st_uid})", str(path)
            )
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise ValueError(f"{path} is larger than {limit} bytes")
        return b"".join(chunks)
    finally:
        os.close(fd)


def private_dir_problem(directory: Path, *, follow_symlinks: bool) -> str | None:
    """Why ``directory`` must not hold our tokens, or None when it may (or does not exist).

    It must be a directory (not a symbolic link, unless ``follow_symlinks``), owned
    by the user, and writable by nobody else: otherwise another local user could
    read, plant or replace entries.
    """
    import stat

    try:
        info = directory.stat() if follow_symlinks else directory.lstat()
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.debug("cannot inspect directory %s (%s)", directory, exc)
        return None  # creating or using it fails later, quietly: no cache
    if stat.S_ISLNK(info.st_mode):
        return "is a symbolic link"
    if not stat.S_ISDIR(info.st_mode):
        return None  # not usable at all: a debug line later, as for any unwritable cache
    if not _POSIX:  # pragma: no cover - Windows has no owner or mode bits to check here
        return None
    if info.st_uid != os.geteuid():
        return f"is owned by another user (uid {info.st_uid})"
    if info.st_mode & 0o022:
        who = {0o020: "group", 0o002: "others"}.get(info.st_mode & 0o022, "group and others")
        return f"is writable by {who} (mode {stat.S_IMODE(info.st_mode):04o})"
    return None


def ensure_private_dir(directory: Path) -> bool:
    """Create ``directory`` (and missing parents) with mode 0700; False when impossible."""
    try:
        if directory.is_dir():
            return True
        missing: list[Path] = []
        probe = directory
        while not probe.exists():
            missing.append(probe)
            if probe.parent == probe:
                break
            probe = probe.parent
        for path in reversed(missing):
            try:
                path.mkdir(mode=DIR_MODE)
            except FileExistsError:
                continue
            # The umask can only remove bits: the directory was never more open than
            # 0700. Only a strange umask (say 0o277) needs the owner bits back.
            if sys.platform != "win32" and path.stat().st_mode & 0o777 != DIR_MODE:
                path.chmod(DIR_MODE)
        return directory.is_dir()
    except (OSError, ValueError) as exc:
        log.debug("cannot create directory %s (%s)", directory, exc)
        return False


def _alive(pid: int) -> bool:
    if not _POSIX:  # pragma: no cover - os.kill(pid, 0) is not a probe on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError, ValueError):
        return True  # another user's process, or no way to tell: treat it as alive
    return True


def remove_stale_temporaries(directory: Path, *, now: float | None = None) -> int:
    """Remove temporary files of ours left by a killed writer; return how many.

    Only names ``atomic_write`` makes, only regular files the user owns, and only
    when the process that made one is gone (same host) or the file is older than
    ten minutes. Removing a live writer's file only costs that writer its cache write.
    """
    import re
    import stat
    import time

    pattern = re.compile(_TMP_NAME)
    current = time.time() if now is None else now
    removed = 0
    try:
        paths = list(directory.iterdir())
    except (OSError, ValueError):
        return 0
    for path in paths:
        match = pattern.fullmatch(path.name)
        if match is None:
            continue
        try:
            info = path.lstat()
            if not stat.S_ISREG(info.st_mode) or (_POSIX and info.st_uid != os.geteuid()):
                continue
            pid = int(match.group("pid"))
            old = current - info.st_mtime > STALE_AFTER
            if pid == os.getpid() and not old:
                continue  # perhaps another thread of this process, writing right now
            if old or not _alive(pid):
                path.unlink()
                removed += 1
                log.debug("removed %s, left behind by a writer that was killed", path)
        except (OSError, ValueError):
            continue
    return removed


def atomic_write(path: Path, data: bytes) -> bool:
    """Replace ``path`` with ``data`` in one step, through a fresh 0600 file beside it.

    Temporary files that killed writers left in the directory are removed first.
    Returns False (logged at debug level) when it cannot; the old file is then intact.
    """
    remove_stale_temporaries(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(6).hex()}{_TMP_SUFFIX}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(tmp, flags, FILE_MODE)
    except (OSError, ValueError) as exc:
        log.debug("cannot write %s: %s", path, exc)
        return False
    try:
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        # os.replace rather than Path.replace: on Python 3.10 the latter calls an
        # os.replace bound when pathlib was imported, out of the failure tests' reach.
        os.replace(tmp, path)  # noqa: PTH105
    except (OSError, ValueError) as exc:
        log.debug("cannot write %s: %s", path, exc)
        with contextlib.suppress(OSError, ValueError):
            tmp.unlink()
        return False
    return True


def fix_for_dir(path: Path, problem: str) -> str:
    """What to do about a directory :func:`private_dir_problem` refused."""
    from menda.core_auth._env import ENV_TOKEN_CACHE_DIR

    if problem.startswith("is writable"):
        return f"Make it private: chmod 700 {path}"
    if problem.startswith("is owned"):
        return (
            f"Remove it, or set {ENV_TOKEN_CACHE_DIR} to a directory of your own "
            "(menda-keyring creates it with mode 0700)"
        )
    return f"Remove it (rm {path}); menda-keyring recreates it as a directory with mode 0700"
