"""The config file ``~/.menda/mendacfg``: one INI section per profile (docs/files.md)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from menda.core_auth._env import (
    ENV_CLIENT_ID,
    ENV_CLIENT_SECRET,
    ENV_CONFIG_FILE,
    ENV_HOST,
    ENV_PROFILE_ID,
    HomeUnknownError,
    env_value,
    home,
)
from menda.core_auth._host import normalize_host
from menda.error.exceptions import (
    ConfigFileNotFoundError,
    InvalidConfigError,
    MissingHostError,
    MissingM2MCredentialsError,
    ProfileNotFoundError,
)

if TYPE_CHECKING:
    import configparser
    from collections.abc import Mapping

__all__ = ["DEFAULT_PROFILE", "Profile", "default_config_path", "load_profile"]

DEFAULT_PROFILE = "default"
_AUTH_TYPES = ("u2m", "m2m")
# A config file is a few hundred bytes; refuse to slurp something absurd by mistake.
_MAX_CONFIG_BYTES = 1 << 20


class Profile(NamedTuple):
    """One validated profile of the config file; ``host`` is normalised."""

    # A NamedTuple rather than a frozen dataclass: building a dataclass costs
    # about 0.3 ms at import, and keyring imports this on every install.

    name: str
    path: Path
    host: str
    auth_type: str
    client_id: str | None = None
    client_secret: str | None = None

    def __repr__(self) -> str:
        secret = None if self.client_secret is None else "***"
        return (
            f"Profile(name={self.name!r}, path={self.path!r}, host={self.host!r}, "
            f"auth_type={self.auth_type!r}, client_id={self.client_id!r}, "
            f"client_secret={secret!r})"
        )


def default_config_path(environ: Mapping[str, str] | None = None) -> Path:
    """Return ``MENDA_CONFIG_FILE`` (with ``~`` expanded) or ``~/.menda/mendacfg``."""
    env = os.environ if environ is None else environ
    override = env_value(env, ENV_CONFIG_FILE)
    if override is not None:
        path = Path(override)
        if override.startswith("~"):
            with contextlib.suppress(RuntimeError):
                path = path.expanduser()
        return path
    try:
        return home() / ".menda" / "mendacfg"
    except HomeUnknownError:
        raise ConfigFileNotFoundError(
            "Menda config file not found: the home directory is unknown, so "
            f"~/.menda/mendacfg cannot be located. Set {ENV_CONFIG_FILE} to the file's path, "
            f"run `menda auth configure`, or set {ENV_CLIENT_ID}, {ENV_CLIENT_SECRET} "
            f"and {ENV_HOST}."
        ) from None


def _not_found(path: Path) -> ConfigFileNotFoundError:
    return ConfigFileNotFoundError(
        f"Menda config file not found: {path}. Run `menda auth configure` to create it, "
        f"or set {ENV_CLIENT_ID}, {ENV_CLIENT_SECRET} and {ENV_HOST} to use M2M "
        f"credentials from the environment (or point {ENV_CONFIG_FILE} at another file)."
    )


def _read_text(path: Path) -> str:
    from menda.core_auth._files import NotARegularFileError, read_regular_file

    try:
        # Symbolic links are followed (dotfile managers use them); a FIFO or a device
        # is refused instead of read, so a hostile file cannot make us hang.
        data = read_regular_file(path, _MAX_CONFIG_BYTES, follow_symlinks=True)
    except (FileNotFoundError, NotADirectoryError):
        raise _not_found(path) from None
    except NotARegularFileError as exc:
        raise InvalidConfigError(
            f"Menda config file {path} {exc.strerror}, not a regular file. "
            f"Point {ENV_CONFIG_FILE} at the config file, or run `menda auth configure`."
        ) from None
    except PermissionError:
        raise InvalidConfigError(
            f"Menda config file {path} cannot be read: permission denied. "
            "Make it readable by your user (e.g. chmod 600)."
        ) from None
    except ValueError as exc:
        if "larger than" in str(exc):
            raise InvalidConfigError(
                f"Menda config file {path} is larger than {_MAX_CONFIG_BYTES} bytes; "
                "it is not a Menda config file. Run `menda auth configure` to rewrite it."
            ) from None
        # An embedded NUL byte: no such file can exist.
        raise InvalidConfigError(
            f"Menda config file path {str(path)!r} is not a valid file name. "
            f"Point {ENV_CONFIG_FILE} at the config file."
        ) from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise InvalidConfigError(f"Menda config file {path} cannot be read: {reason}.") from None
    # Editors on Windows like to start the file with a byte-order mark. Stripped here
    # rather than by the utf-8-sig codec, which is one more module on every lookup.
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
    # Raised outside the handler: the decode error (kept as __context__ even with
    # "from None") holds the whole file, secrets included.
    raise InvalidConfigError(
        f"Menda config file {path} cannot be parsed: line {line} is not valid UTF-8. "
        "Save the file as UTF-8."
    )


def _describe_parse_error(exc: configparser.Error) -> tuple[int | None, str]:
    """Line and reason of a configparser error, without echoing the line (it may be a secret)."""
    import configparser

    if isinstance(exc, configparser.DuplicateSectionError):
        return exc.lineno, f"profile [{exc.section}] appears more than once"
    if isinstance(exc, configparser.DuplicateOptionError):
        return exc.lineno, f"key '{exc.option}' appears more than once in [{exc.section}]"
    if isinstance(exc, configparser.MissingSectionHeaderError):
        return exc.lineno, "a setting comes before any [profile] section header"
    if isinstance(exc, configparser.ParsingError):
        errors = getattr(exc, "errors", None)
        line: int | None = None
        if errors and isinstance(errors[0], tuple) and isinstance(errors[0][0], int):
            line = errors[0][0]
        return line, "the line is not 'key = value', a [section] header or a comment"
    return getattr(exc, "lineno", None), "the file is not in INI format"


def _parse(text: str, path: Path) -> configparser.ConfigParser:
    # configparser is only needed when there is a file to read (the env trio skips it).
    import configparser

    # No interpolation (secrets may hold '%'), no inline comments (secrets may hold '#'
    # or ';'), strict duplicates. Keys are lower-cased and values stripped by default.
    parser = configparser.ConfigParser(
        interpolation=None,
        inline_comment_prefixes=None,
        strict=True,
        default_section="DEFAULT",
    )
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error as exc:
        line, reason = _describe_parse_error(exc)
    except (ValueError, TypeError, RecursionError):
        # Defensive: configparser is not documented to raise these, but a login must
        # only ever fail with a MendaConfigError.
        line, reason = None, "the file is not in INI format"
    else:
        return parser
    # Raised outside the handler: configparser's error (kept as __context__ even with
    # "from None") quotes the offending line, which may hold a secret.
    where = f" at line {line}" if line is not None else ""
    raise InvalidConfigError(
        f"Menda config file {path} cannot be parsed{where}: {reason}. "
        "Fix the file, or run `menda auth configure` to rewrite it."
    )


def load_profile(
    name: str | None = None,
    *,
    path: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Profile:
    """Read and validate one profile of the config file.

    ``name`` defaults to ``MENDA_PROFILE_ID``, then ``default``; ``path`` to
    :func:`default_config_path`. Raises a :class:`~menda.error.MendaConfigError`
    subclass, with the fixed message of docs/files.md, for every problem.
    """
    env = os.environ if environ is None else environ
    if name is None or not name.strip():
        name = env_value(env, ENV_PROFILE_ID) or DEFAULT_PROFILE
    if path is None:
        path = default_config_path(env)
    parser = _parse(_read_text(path), path)

    if not parser.has_section(name):
        existing = parser.sections()
        listed = ", ".join(f"'{s}'" for s in existing) if existing else "none"
        raise ProfileNotFoundError(
            f"No profile '{name}' in {path}. Profiles in that file: {listed}. "
            f"Set {ENV_PROFILE_ID} to one of them, or run `menda auth configure` to add "
            f"a [{name}] section."
        )
    section = parser[name]
    where = f"in {path}"

    raw_host = (section.get("host") or "").strip()
    if not raw_host:
        raise MissingHostError(
            f"Profile '{name}' has no host {where}. Add 'host = https://…' (your menda "
            f"cloud base URL) to the [{name}] section, or run `menda auth configure`."
        )
    host = normalize_host(raw_host, setting=f"host of profile '{name}' {where}")

    raw_auth = (section.get("auth_type") or "").strip()
    auth_type = raw_auth.lower() or "u2m"
    if auth_type not in _AUTH_TYPES:
        raise InvalidConfigError(
            f"Profile '{name}' {where}: auth_type '{raw_auth}' is not u2m or m2m. "
            "Set auth_type = u2m (user login) or auth_type = m2m (client credentials)."
        )

    client_id = (section.get("client_id") or "").strip() or None
    client_secret = (section.get("client_secret") or "").strip() or None
    if auth_type == "m2m":
        missing = [
            key
            for key, value in (("client_id", client_id), ("client_secret", client_secret))
            if value is None
        ]
        if missing:
            what = " and ".join(missing)
            verb = "is" if len(missing) == 1 else "are"
            raise MissingM2MCredentialsError(
                f"Profile '{name}' has auth_type=m2m but is missing client_id or "
                f"client_secret: {what} {verb} missing or empty {where}. Add "
                f"{' and '.join(f'{k} = …' for k in missing)} to the [{name}] section, "
                "or run `menda auth configure`."
            )
    return Profile(
        name=name,
        path=path,
        host=host,
        auth_type=auth_type,
        client_id=client_id,
        client_secret=client_secret,
    )
