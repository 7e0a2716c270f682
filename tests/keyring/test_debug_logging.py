"""`MENDA_LOG_LEVEL=debug`: the `keyring` CLI traces each step on stderr, without secrets."""

from __future__ import annotations

import re
import subprocess
from typing import TYPE_CHECKING

import pytest

from menda.testing import console_script

if TYPE_CHECKING:
    from menda.testing import MendaCloudEmulator, MendaHome

HOST = "menda-private-058264169513.d.codeartifact.eu-west-1.amazonaws.com"
INDEX = f"https://{HOST}/pypi/menda-plugins/simple/"
KEYRING = console_script("keyring")
CLIENT_ID = "ci-bot"
CLIENT_SECRET = "s3cr3t-client-secret+/:%#;"
REQUEST_LINE = re.compile(
    r"^menda-keyring: POST (?P<url>\S+) -> HTTP (?P<status>\d{3}) in \d+ ms", re.MULTILINE
)


def keyring_get(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KEYRING, "get", INDEX, "aws"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def m2m_credentials() -> tuple[str, str]:
    """The client ``m2m_env`` registers: the one these tests name."""
    return CLIENT_ID, CLIENT_SECRET


def test_debug_traces_resolution_cache_and_requests_without_secrets(
    m2m_env: dict[str, str], menda_cloud: MendaCloudEmulator, menda_home: MendaHome
) -> None:
    env = {**m2m_env, "MENDA_LOG_LEVEL": "debug"}
    first = keyring_get(env)
    second = keyring_get(env)
    assert first.returncode == second.returncode == 0, first.stderr

    # Resolution: where the identity came from, which host.
    assert "source='env'" in first.stderr
    assert menda_cloud.url in first.stderr
    # Cache: a miss, then a hit in the next process.
    assert "registry token cache miss" in first.stderr
    assert "access token cache miss" in first.stderr
    assert "registry token cache hit" in second.stderr
    assert "cache miss" not in second.stderr
    # Requests: method, URL, status and time, in order; none on the warm run.
    requests = [(m["url"], m["status"]) for m in REQUEST_LINE.finditer(first.stderr)]
    assert requests == [
        (menda_cloud.token_url, "200"),
        (menda_cloud.registry_url, "200"),
    ]
    assert REQUEST_LINE.search(second.stderr) is None
    # Every line is ours, and stdout is still just the token.
    assert all(line.startswith("menda-keyring: ") for line in first.stderr.splitlines())
    assert first.stdout == second.stdout
    secrets = [CLIENT_SECRET, first.stdout.strip(), *menda_home.cached_secrets()]
    for secret in secrets:
        assert secret
        assert secret not in first.stderr
        assert secret not in second.stderr


@pytest.mark.parametrize("level", ["", "warning", "WARNING"])
def test_default_level_is_silent_on_success(m2m_env: dict[str, str], level: str) -> None:
    result = keyring_get({**m2m_env, "MENDA_LOG_LEVEL": level})
    assert result.returncode == 0
    assert result.stdout.strip()
    assert result.stderr == ""


def test_default_level_prints_exactly_one_line_on_failure(
    m2m_env: dict[str, str], menda_cloud: MendaCloudEmulator
) -> None:
    menda_cloud.deny(CLIENT_ID, "menda-private")
    result = keyring_get(m2m_env)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("menda-keyring: ")
    assert "403" in lines[0]
    assert lines[0].endswith("[MendaCloudAPIError]")


def test_debug_on_failure_adds_the_trace_but_no_secret(
    m2m_env: dict[str, str], menda_cloud: MendaCloudEmulator, menda_home: MendaHome
) -> None:
    menda_cloud.deny(CLIENT_ID, "menda-private")
    result = keyring_get({**m2m_env, "MENDA_LOG_LEVEL": "debug"})
    assert result.returncode == 1
    statuses = [m["status"] for m in REQUEST_LINE.finditer(result.stderr)]
    assert statuses == ["200", "403"]
    assert "[MendaCloudAPIError]" in result.stderr
    for secret in [CLIENT_SECRET, *menda_home.cached_secrets()]:
        assert secret not in result.stderr
