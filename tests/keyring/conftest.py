"""The backend keeps per-process state (lines already said, handlers attached): reset it."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from menda.keyring import backend as backend_module


@pytest.fixture(autouse=True)
def fresh_backend_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test sees the backend as a new process would."""
    menda_logger = logging.getLogger("menda")
    monkeypatch.setattr(backend_module, "_said", set())
    monkeypatch.setattr(backend_module, "_configured", False)
    monkeypatch.setattr(menda_logger, "handlers", [])
    monkeypatch.setattr(menda_logger, "level", logging.NOTSET)
    yield
