"""Fixtures for menda.cloud_client, on top of menda.testing's (menda_home, menda_cloud, ...)
and tests/conftest.py's (``waits``)."""

from __future__ import annotations

import time

import pytest

from menda.core_auth import Identity, TokenCache, resolve_identity
from menda.testing import MendaCloudEmulator, MendaHome, UserLogin


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
def alice(u2m: Identity, menda_home: MendaHome, menda_cloud: MendaCloudEmulator) -> UserLogin:
    """User 'alice', logged in for profile 'default' as ``menda auth login`` leaves it."""
    login = menda_cloud.add_user("alice")
    menda_home.write_cached_login("default", login, now=menda_cloud.now())
    return login


@pytest.fixture
def cache(menda_home: MendaHome) -> TokenCache:
    return TokenCache(menda_home.cache_dir)


@pytest.fixture
def expired_alice(alice: UserLogin, menda_home: MendaHome) -> UserLogin:
    """Alice's login for 'default' as the CLI left it two hours ago, valid for one hour."""
    menda_home.write_cached_login("default", alice, expires_in=3600, cached_at=time.time() - 7200)
    return alice
