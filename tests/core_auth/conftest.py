"""Fixtures for menda.core_auth tests: a private HOME and no MENDA_* from the real environment."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


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
