"""diagnose says when the token cache is not used, and why, as the cache itself says it."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from menda.testing import MendaCloudEmulator, MendaHome

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX directory modes")


@posix_only
def test_a_cache_directory_others_can_write_is_reported_as_a_problem(
    menda_home: MendaHome, menda_cloud: MendaCloudEmulator
) -> None:
    menda_cloud.add_m2m_client("ci-bot", "pw")
    cache_dir = menda_home.cache_dir
    cache_dir.mkdir(parents=True, exist_ok=True)
    cache_dir.chmod(0o777)  # the hostile setting under test
    env = menda_home.env(
        MENDA_CLIENT_ID="ci-bot", MENDA_CLIENT_SECRET="pw", MENDA_HOST=menda_cloud.url
    )
    result = subprocess.run(
        [sys.executable, "-m", "menda.keyring", "diagnose", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(result.stdout)
    problem = report["cache"]["problem"]
    assert str(cache_dir) in problem
    assert "chmod" in problem
    assert any("token cache is not used" in p for p in report["problems"])
