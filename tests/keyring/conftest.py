"""The backend keeps per-process state (lines already said, handlers attached): reset it.
Also the environment of a subprocess without any identity."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from menda.keyring import backend as backend_module
from menda.testing import MendaHome


@pytest.fixture(autouse=True)
def fresh_backend_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test sees the backend as a new process would."""
    menda_logger = logging.getLogger("menda")
    monkeypatch.setattr(backend_module, "_said", set())
    monkeypatch.setattr(backend_module, "_configured", False)
    monkeypatch.setattr(menda_logger, "handlers", [])
    monkeypatch.setattr(menda_logger, "level", logging.NOTSET)
    yield


@pytest.fixture
def env(menda_home: MendaHome) -> dict[str, str]:
    """The environment for a subprocess: the isolated home, no identity."""
    return menda_home.env()
