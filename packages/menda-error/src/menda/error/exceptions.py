"""The exceptions raised by every Menda Python package.

::

    MendaError
    ├── MendaConfigError
    │   ├── ConfigFileNotFoundError
    │   ├── ProfileNotFoundError
    │   ├── MissingHostError
    │   ├── MissingM2MCredentialsError
    │   └── InvalidConfigError
    ├── MendaAuthError
    │   └── NoCachedLoginError
    └── MendaCloudAPIError        (.status_code, .error, .request_id)

Messages are built by the raiser and say what was wrong, where, and how to fix
it. They never contain a secret: callers pass names and paths, not values. And
``str()`` of one is always safe to print on a terminal: a control or bidi
character that came in with a path or a server's text is shown as an escape.
"""

from __future__ import annotations

import re

__all__ = [
    "ConfigFileNotFoundError",
    "InvalidConfigError",
    "MendaAuthError",
    "MendaCloudAPIError",
    "MendaConfigError",
    "MendaError",
    "MissingHostError",
    "MissingM2MCredentialsError",
    "NoCachedLoginError",
    "ProfileNotFoundError",
]


# C0 and C1 controls, DEL, bidi embeddings, overrides and isolates, directional and
# zero-width marks, line and paragraph separators, BOM, lone surrogates.
_UNPRINTABLE = (
    "[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ud800-\udfff]"
)
_unprintable: re.Pattern[str] | None = None


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with every control or bidi character shown as an escape (``\\u202e``)."""
    global _unprintable  # noqa: PLW0603 - compiled on first use, off the start-up path
    if _unprintable is None:
        _unprintable = re.compile(_UNPRINTABLE)
    return _unprintable.sub(_escape, text)


class MendaError(Exception):
    """Base class of every error raised by Menda packages."""

    @property
    def message(self) -> str:
        """The human-readable message, as the raiser built it."""
        return str(self.args[0]) if self.args else ""

    def __str__(self) -> str:
        # Safe to print whatever a path or a server put in it.
        return printable(self.message)


class MendaConfigError(MendaError):
    """Raised when the Menda configuration (file or environment) cannot be used."""


class ConfigFileNotFoundError(MendaConfigError):
    """Raised when there is no config file and no complete M2M environment."""


class ProfileNotFoundError(MendaConfigError):
    """Raised when the selected profile is not a section of the config file."""


class MissingHostError(MendaConfigError):
    """Raised when the selected profile has no host."""


class MissingM2MCredentialsError(MendaConfigError):
    """Raised when an m2m profile lacks client_id or client_secret."""


class InvalidConfigError(MendaConfigError):
    """Raised when a config value or the config file itself is invalid."""


class MendaAuthError(MendaError):
    """Raised when no usable Menda identity can be obtained."""


class NoCachedLoginError(MendaAuthError):
    """Raised when a u2m profile has no valid cached login and cannot refresh one."""


class MendaCloudAPIError(MendaError):
    """Raised when menda cloud answers with an error, a malformed body, or not at all."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        error: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error = error
        self.request_id = request_id

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only attributes do not survive the default Exception pickling.
        return (
            _rebuild_api_error,
            (type(self), self.message, self.status_code, self.error, self.request_id),
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, status_code={self.status_code!r}, "
            f"error={self.error!r}, request_id={self.request_id!r})"
        )


def _rebuild_api_error(
    cls: type[MendaCloudAPIError],
    message: str,
    status_code: int | None,
    error: str | None,
    request_id: str | None,
) -> MendaCloudAPIError:
    return cls(message, status_code=status_code, error=error, request_id=request_id)
