"""What ``menda-keyring login`` shows while it waits: the URL and code, the browser, a countdown.

Only the command line imports this module.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from collections.abc import Mapping

    from menda.cloud_client import DeviceAuthorization

__all__ = ["PLAIN_COUNTDOWN_EVERY", "Countdown", "can_open_browser", "say", "show"]

#: Without a terminal, the countdown prints a line this often (seconds).
PLAIN_COUNTDOWN_EVERY = 30


def say(stream: TextIO, text: str) -> None:
    """One line on ``stream``, flushed (the user is waiting for it)."""
    stream.write(text + "\n")
    stream.flush()


def can_open_browser(env: Mapping[str, str]) -> bool:
    """False where no graphical browser can start: a Linux (or BSD) box without a display.

    There ``webbrowser`` would fall back to a text browser in this terminal.
    """
    if sys.platform in ("darwin", "win32") or env.get("BROWSER"):
        return True
    return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))


def _open_browser(url: str) -> bool:
    import webbrowser

    try:
        return webbrowser.open(url)
    except (webbrowser.Error, OSError):
        return False


def _clock(seconds: float) -> str:
    whole = max(0, int(seconds + 0.999))
    return f"{whole // 60}:{whole % 60:02d}"


class Countdown:
    """The time left to approve: one line rewritten in place on a terminal, else a
    line every ``PLAIN_COUNTDOWN_EVERY`` seconds (CI logs, pipes)."""

    def __init__(self, stream: TextIO, *, tty: bool) -> None:
        self._stream = stream
        self._tty = tty
        self._shown: str | None = None
        self._last: float | None = None

    def __call__(self, left: float) -> None:
        text = f"Waiting for approval: {_clock(left)} left (Ctrl-C to cancel)"
        if self._tty:
            if text != self._shown:
                # Pad over the previous text, which may have been longer.
                width = len(self._shown or "")
                self._stream.write("\r" + text.ljust(width))
                self._stream.flush()
                self._shown = text
        elif self._last is None or self._last - left >= PLAIN_COUNTDOWN_EVERY:
            say(self._stream, text)
            self._last = left

    def close(self) -> None:
        """End the rewritten line, so what follows starts on a clean line."""
        if self._tty and self._shown is not None:
            self._stream.write("\r" + " " * len(self._shown) + "\r")
            self._stream.flush()
            self._shown = None


def show(err: TextIO, authorization: DeviceAuthorization, *, browser: bool) -> None:
    if authorization.verification_uri_complete is not None:
        say(err, f"Open this URL in a browser and approve the code {authorization.user_code}:")
    else:
        say(err, f"Open this URL in a browser and enter the code {authorization.user_code}:")
    say(err, f"\n    {authorization.url}\n")
    if not browser:
        return
    if _open_browser(authorization.url):
        say(err, "(Opened it in your browser.)")
    else:
        say(err, "(Could not open a browser: open the URL yourself.)")
