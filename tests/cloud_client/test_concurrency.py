"""Processes that start together with a cold cache make one request per cache entry."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from menda.testing.emulator import MendaCloudEmulator
from menda.testing.pytest_plugin import MendaHome

PROCESSES = 8

# Each process waits for the "go" file, so that all of them hit the cold cache together.
_PRELUDE = """
import os, sys, time
from menda.core_auth import resolve_identity
from menda.cloud_client import MendaCloudClient, RegistryRequest
go = sys.argv[1]
while not os.path.exists(go):
    time.sleep(0.005)
client = MendaCloudClient(resolve_identity())
"""
_ACCESS = _PRELUDE + "print(client.access_token())\n"
_REGISTRY = (
    _PRELUDE
    + "print(client.registry_token(RegistryRequest("
    + "'menda-private', '058264169513', 'eu-west-1', 'menda-plugins', 'pypi')).token)\n"
)


def _run_together(code: str, env: dict[str, str], go: Path) -> list[str]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(go)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    time.sleep(0.3)  # let the interpreters start; correctness does not depend on it
    go.touch()
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outputs.append(out.strip())
    return outputs


@pytest.fixture
def env(
    menda_home: MendaHome, menda_cloud: MendaCloudEmulator, m2m_client: tuple[str, str]
) -> dict[str, str]:
    client_id, client_secret = m2m_client
    return menda_home.env(
        MENDA_CLIENT_ID=client_id,
        MENDA_CLIENT_SECRET=client_secret,
        MENDA_HOST=menda_cloud.url,
        MENDA_TOKEN_CACHE_DIR=str(menda_home.home / "shared-cache"),
    )


def test_eight_processes_with_a_cold_cache_make_one_token_request(
    env: dict[str, str], menda_cloud: MendaCloudEmulator, tmp_path: Path
) -> None:
    tokens = _run_together(_ACCESS, env, tmp_path / "go")

    assert len(set(tokens)) == 1
    assert menda_cloud.count("token") == 1


def test_eight_processes_cold_on_one_registry_make_one_token_and_one_registry_request(
    env: dict[str, str], menda_cloud: MendaCloudEmulator, tmp_path: Path
) -> None:
    tokens = _run_together(_REGISTRY, env, tmp_path / "go")

    assert len(set(tokens)) == 1
    assert menda_cloud.count("token") == 1
    assert menda_cloud.count("registry") == 1
