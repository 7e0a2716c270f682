"""Fixtures for menda.cloud_client, on top of menda.testing's (menda_home, menda_cloud, ...)."""

from __future__ import annotations

import pytest

from menda.core_auth import Identity, TokenCache, resolve_identity
from menda.testing.emulator import MendaCloudEmulator
from menda.testing.pytest_plugin import MendaHome


@pytest.fixture
def m2m(
    menda_home: MendaHome,
    menda_cloud: MendaCloudEmulator,
    m2m_client: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> Identity:
    """M2M from the environment trio, against the emulator."""
    client_id, client_secret = m2m_client
    monkeypatch.setenv("MENDA_CLIENT_ID", client_id)
    monkeypatch.setenv("MENDA_CLIENT_SECRET", client_secret)
    monkeypatch.setenv("MENDA_HOST", menda_cloud.url)
    return resolve_identity()


@pytest.fixture
def u2m(menda_home: MendaHome, menda_cloud: MendaCloudEmulator) -> Identity:
    """The u2m profile 'default' against the emulator; the test writes (or not) its login."""
    menda_home.write_config({"default": {"host": menda_cloud.url, "auth_type": "u2m"}})
    return resolve_identity()


@pytest.fixture
def cache(menda_home: MendaHome) -> TokenCache:
    return TokenCache(menda_home.cache_dir)
