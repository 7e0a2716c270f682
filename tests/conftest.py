"""Fixtures tests in more than one folder use, on top of menda.testing's (``menda_home``,
``menda_cloud``, ``clock``, ...).

Test modules cannot import a conftest (``--import-mode=importlib``), so what they share
is a fixture here, or a public name of ``menda.testing``. A folder's own conftest.py
holds what only its tests use.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from menda.keyring.backend import MendaCodeArtifactKeyring
    from menda.testing import MendaCloudEmulator, MendaHome


@pytest.fixture
def m2m_credentials() -> tuple[str, str]:
    """``(client_id, client_secret)`` of the M2M client ``m2m_env`` registers.

    A module or folder whose tests name the client overrides this fixture with its
    own constants. The secret needs form-urlencoding and INI care.
    """
    return "ci-bot", "s3cr3t-client-secret+/:%#;"


@pytest.fixture
def m2m_env(
    menda_home: MendaHome,
    menda_cloud: MendaCloudEmulator,
    m2m_credentials: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, str]:
    """M2M from the environment trio against ``menda_cloud``, set in this process too;
    returns the environment for a subprocess (``keyring``, ``menda-keyring``)."""
    client_id, client_secret = m2m_credentials
    menda_cloud.add_m2m_client(client_id, client_secret)
    trio = {
        "MENDA_CLIENT_ID": client_id,
        "MENDA_CLIENT_SECRET": client_secret,
        "MENDA_HOST": menda_cloud.url,
    }
    for name, value in trio.items():
        monkeypatch.setenv(name, value)
    return menda_home.env(**trio)


@pytest.fixture
def kr() -> MendaCodeArtifactKeyring:
    """The keyring backend, in this process."""
    # Imported here, so that collecting the other distributions' tests does not load keyring.
    from menda.keyring.backend import MendaCodeArtifactKeyring

    return MendaCodeArtifactKeyring()


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record menda.cloud_client's back-off waits instead of sleeping them."""
    recorded: list[float] = []
    # The client's one sleep between attempts (Retry-After, back-off); no public seam records it.
    monkeypatch.setattr("menda.cloud_client._http._sleep", recorded.append)
    return recorded


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    """A directory for a module's property tests (hypothesis cannot use ``tmp_path``)."""
    with tempfile.TemporaryDirectory() as name:
        yield Path(name)
