"""benchmarks/ is a folder of scripts, not an installed package: make it importable."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks._envs import Venv  # noqa: E402
from benchmarks._homes import Identities  # noqa: E402


@pytest.fixture
def ids() -> Identities:
    """Identities as the emulator would hand them out, for a host nobody listens on."""
    return Identities(
        host="http://127.0.0.1:9",
        env_client=("bench-env", "env-s3cret"),
        profile_client=("bench-profile", "profile-s3cret"),
        login={
            "id_token": "mit_id",
            "access_token": "mat_access",
            "refresh_token": "mrt_refresh",
            "expires_in": 3600,
            "cached_at": 1764540000.5,
        },
    )


@pytest.fixture
def venvs(tmp_path: Path) -> dict[str, Venv]:
    """Environments that are never built: cases only need their paths."""
    return {name: Venv(name, tmp_path / "envs" / name) for name in ("menda", "baseline", "ref")}
