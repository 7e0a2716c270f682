"""Adding a user profile to the config file, as ``menda auth configure`` would write it.

The only write we ever make to ``~/.menda/mendacfg``: a new ``[name]`` section
with ``auth_type = u2m`` and ``host = …``, appended to the bytes already there,
so comments, spacing and every other section stay exactly as they were. An
existing profile is never touched, and a file that does not parse is never
rewritten.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from menda.core_auth._config import Profile, _parse, default_config_path, load_profile
from menda.core_auth._host import normalize_host
from menda.error.exceptions import InvalidConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["add_u2m_profile"]

# The same bound as the reader's: a config file is a few hundred bytes.
_MAX_CONFIG_BYTES = 1 << 20


def _check_name(name: str) -> None:
    # configparser gives [DEFAULT] a meaning of its own; ']' would end the header and a
    # line break the line. The CLI reads its files with interpolation on, and the token
    # file refuses a '%' in a profile name, so a login for it could never be stored.
    problem = None
    if not name or name != name.strip():
        problem = "it is empty or starts or ends with a space"
    elif name == "DEFAULT":
        problem = "[DEFAULT] holds the values every profile inherits"
    elif any(ch in name for ch in "[]%") or not name.isprintable():
        problem = "it holds '[', ']', '%' or a control character"
    if problem is not None:
        raise InvalidConfigError(
            f"Cannot create profile {name!r}: {problem}. Choose another profile name."
        )


def _target(path: Path) -> Path:
    # A dotfile manager may link the config file: replace the file the link names, and
    # keep the link (os.replace over the link itself would turn it into a plain file).
    with contextlib.suppress(OSError, RuntimeError):
        if path.is_symlink():
            return path.resolve(strict=True)
    return path


def _read(path: Path) -> bytes:
    from menda.core_auth._files import NotARegularFileError, read_regular_file

    try:
        return read_regular_file(path, _MAX_CONFIG_BYTES, follow_symlinks=True)
    except FileNotFoundError:
        return b""
    except NotARegularFileError as exc:
        raise InvalidConfigError(
            f"Menda config file {path} {exc.strerror}, not a regular file; not adding a profile."
        ) from None
    except ValueError:
        raise InvalidConfigError(
            f"Menda config file {path} is larger than {_MAX_CONFIG_BYTES} bytes; "
            "not adding a profile."
        ) from None
    except OSError as exc:
        raise InvalidConfigError(
            f"Menda config file {path} cannot be read ({exc.strerror or type(exc).__name__}); "
            "not adding a profile."
        ) from None


def add_u2m_profile(
    name: str,
    host: str,
    *,
    path: Path | None = None,
    environ: Mapping[str, str] | None = None,
    dry_run: bool = False,
) -> Profile:
    """Append ``[name]`` / ``auth_type = u2m`` / ``host = <host>`` to the config file.

    ``path`` defaults to :func:`default_config_path` (``MENDA_CONFIG_FILE``, else
    ``~/.menda/mendacfg``). The host is written normalised, with its scheme, as
    the Menda CLI requires. A missing file is created 0600 (and missing
    directories 0700); an existing file keeps every byte and gets the new
    section at its end, written atomically. Raises ``InvalidConfigError`` when
    the profile already exists, the name or host cannot be written, or the file
    cannot be read or parsed (it is then left alone). With ``dry_run``, checks
    all of that and writes nothing. Returns the profile as :func:`load_profile`
    reads it back (with ``dry_run``: as it would).
    """
    from menda.core_auth._files import atomic_write, ensure_private_dir

    _check_name(name)
    normalised = normalize_host(host, setting="the host of the new profile")
    if path is None:
        path = default_config_path(os.environ if environ is None else environ)
    data = _read(path)
    text = ""
    if data:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InvalidConfigError(
                f"Menda config file {path} is not UTF-8; not adding a profile."
            ) from None
    parser = _parse(text, path)  # raises InvalidConfigError, naming the line, never quoting it
    if parser.has_section(name):
        raise InvalidConfigError(
            f"Profile '{name}' already exists in {path}; not changing it. Edit it with "
            "`menda auth configure`, or choose another profile name."
        )

    newline = b"\r\n" if b"\r\n" in data else b"\n"
    lines = [f"[{name}]", "auth_type = u2m", f"host = {normalised}"]
    section = newline.join(line.encode("utf-8") for line in lines) + newline
    separator = b""
    if data.strip(b"\xef\xbb\xbf \t\r\n"):
        # Keep the file's last line whole, then a blank line, as configparser writes.
        separator = (b"" if data.endswith(b"\n") else newline) + newline
    elif data and not data.endswith(b"\n"):
        separator = newline
    updated = data + separator + section

    profile = Profile(name=name, path=path, host=normalised, auth_type="u2m")
    if dry_run:
        return profile
    target = _target(path)
    if not ensure_private_dir(target.parent) or not atomic_write(target, updated):
        raise InvalidConfigError(
            f"Cannot write the Menda config file {path}: check that its directory is "
            "writable. Nothing was changed."
        )
    return load_profile(name, path=path)
