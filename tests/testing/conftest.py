"""The emulator as most of menda.testing's own tests start it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from menda.testing import MendaCloudEmulator


@pytest.fixture
def cloud() -> Iterator[MendaCloudEmulator]:
    """A running emulator that knows the M2M client ``ci`` with the secret ``s3cret``.

    Modules that need another start (no client, a user, no device interval) override it.
    """
    with MendaCloudEmulator() as emulator:
        emulator.add_m2m_client("ci", "s3cret")
        yield emulator
