"""menda-keyring: a keyring backend for AWS CodeArtifact tokens issued by menda cloud.

The backend class lives in :mod:`menda.keyring.backend`, which keyring loads
through the ``keyring.backends`` entry point. This package imports nothing
else, so that loading stays cheap.
"""

from __future__ import annotations

__all__ = ["__version__"]

# Kept equal to pyproject.toml's version (a test checks): reading it from the
# installed metadata would cost a file read on every keyring run.
__version__ = "0.2.0"
