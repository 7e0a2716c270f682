"""Fixtures for menda.core_auth tests: a private HOME, no MENDA_* from the real environment,
and the Menda CLI's side of its token file, written and read the way menda-cli 0.5.0 does."""

from __future__ import annotations

import configparser
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

T = TypeVar("T")

#: The keys of a login section, in the order menda-cli's ``CredentialsModel`` dumps them.
CLI_KEYS = ("id_token", "access_token", "refresh_token", "expires_in", "token_type", "cached_at")


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("USERPROFILE", str(home))
    for name in list(os.environ):
        if name.startswith("MENDA_"):
            monkeypatch.delenv(name)
    yield home


@pytest.fixture
def write_config(isolated_home: Path) -> Callable[..., Path]:
    """Write ``~/.menda/mendacfg`` (or ``path``) with the given text and return its path."""

    def write(text: str, path: Path | None = None) -> Path:
        target = path if path is not None else isolated_home / ".menda" / "mendacfg"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        return target

    return write


class CliRejectedError(Exception):
    """The Menda CLI would fail to load this login (missing, bad INI, or its model says no)."""


class MendaCli:
    """The Menda CLI's reads and writes of ``<cache dir>/.token``, done as menda-cli 0.5.0 does.

    Written here independently of ``menda.core_auth`` (and of menda.testing's file
    writers), so that our reader is checked against the CLI's writer and our
    writer against the CLI's reader, never against each other.
    """

    #: What ``write`` puts in a section unless told otherwise (``cached_at`` is required).
    DEFAULTS: dict[str, Any] = {  # noqa: RUF012 - read only
        "id_token": "cli-id-token",
        "access_token": "cli-access-token",
        "refresh_token": "cli-refresh-token",
        "expires_in": 3600,
        "token_type": "Bearer",
    }

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, profile: str, *, cached_at: float | str | None, **fields: Any) -> Path:
        """``cache_token()``: default ConfigParser, read, replace one section, ``parser.write``.

        ``fields`` override :attr:`DEFAULTS`. ``cached_at=None`` writes an empty value
        (the CLI itself would write now); strings are written as given, to make values
        the CLI's model rejects.
        """
        unknown = set(fields) - set(self.DEFAULTS)
        if unknown:
            raise TypeError(f"not a CLI key: {sorted(unknown)}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        parser = configparser.ConfigParser()
        if self.path.exists():
            parser.read(self.path)
        parser[profile] = {}
        data: dict[str, Any] = {**self.DEFAULTS, **fields, "cached_at": cached_at}
        for key, value in data.items():
            parser[profile][key] = "" if value is None else str(value)
        with open(self.path, "w") as f:  # noqa: PTH123 - exactly what the CLI does
            parser.write(f)
        return self.path

    def read(self, profile: str) -> dict[str, Any]:
        """``load_token()`` then ``CredentialsModel.model_validate``; raises CliRejectedError."""
        parser = configparser.ConfigParser()
        try:
            parser.read(self.path)
            if profile not in parser:
                raise CliRejectedError(f"TokenNotFoundError({profile!r})")
            values = dict(parser[profile])  # interpolates: a '%' would raise here
        except configparser.Error as exc:
            raise CliRejectedError(repr(exc)) from None
        extra = set(values) - set(CLI_KEYS)
        missing = {"access_token", "expires_in", "token_type"} - set(values)
        if extra or missing:
            raise CliRejectedError(f"extra {sorted(extra)}, missing {sorted(missing)}")
        try:
            expires_in = int(values["expires_in"])
            cached_at = float(values["cached_at"]) if values.get("cached_at") else None
        except ValueError as exc:
            raise CliRejectedError(repr(exc)) from None
        return {
            "id_token": values.get("id_token", ""),
            "access_token": values["access_token"],
            "refresh_token": values.get("refresh_token", ""),
            "expires_in": expires_in,
            "token_type": values["token_type"],
            "cached_at": cached_at,
        }

    @staticmethod
    def is_expired(login: dict[str, Any], now: float) -> bool:
        """``is_token_expired()``: no ``cached_at``, or ``now - cached_at >= expires_in - 60``."""
        if login["cached_at"] is None:
            return True
        return bool(now - login["cached_at"] >= login["expires_in"] - 60)

    def sections(self) -> dict[str, dict[str, str]]:
        """Every section as raw strings (interpolation off), for before/after comparisons."""
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(self.path)
        return {name: dict(parser.items(name, raw=True)) for name in parser.sections()}


@pytest.fixture
def cli_factory() -> Callable[[Path], MendaCli]:
    """``cli_factory(cache_dir)``: the Menda CLI's view of ``<cache_dir>/.token``."""
    return lambda directory: MendaCli(Path(directory) / ".token")


@pytest.fixture
def without_hanging() -> Callable[..., Any]:
    """``without_hanging(fn, fifo)``: ``fn()``'s result (or exception), failing if it blocks.

    Runs ``fn`` in a thread; when it is still running after a few seconds it is
    blocked on ``fifo``: a writer is opened to release it, and the test fails.
    """

    def run(fn: Callable[[], T], fifo: Path, timeout: float = 5.0) -> T | BaseException:
        outcome: list[Any] = []

        def target() -> None:
            try:
                outcome.append(fn())
            except BaseException as exc:  # handed back to the test
                outcome.append(exc)

        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        thread.join(timeout)
        if thread.is_alive():
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            os.close(fd)
            thread.join(timeout)
            pytest.fail(f"blocked on the FIFO {fifo}")
        result: T | BaseException = outcome[0]
        return result

    return run
