"""pytest fixture for the fake CodeArtifact repository and its proxy.

``pytest_plugin`` re-exports :func:`fake_codeartifact`; it needs the
``menda_cloud`` fixture (a running :class:`~menda.testing.emulator.MendaCloudEmulator`),
which validates the registry tokens presented to the repository.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from menda.testing.codeartifact import FakeCodeArtifact, RegistryTokenValidator

__all__ = ["fake_codeartifact"]


@pytest.fixture
def fake_codeartifact(menda_cloud: RegistryTokenValidator) -> Iterator[FakeCodeArtifact]:
    """A running :class:`FakeCodeArtifact` checking tokens against ``menda_cloud``.

    Add repositories and packages with ``add_repository`` / ``add_package``;
    give installer subprocesses ``fake_codeartifact.installer_env()``.
    """
    with FakeCodeArtifact(menda_cloud) as repository:
        yield repository
