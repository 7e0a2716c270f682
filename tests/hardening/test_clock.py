"""Clock trouble: a local clock ahead of or behind menda cloud, and entries dated implausibly."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from menda.core_auth import TokenCache, parse_time, resolve_identity, set_clock
from menda.keyring.backend import MendaCodeArtifactKeyring
from menda.testing import MendaCloudEmulator, MendaHome, format_rfc3339, write_cache_entry

DOMAIN, OWNER, REGION = "menda-private", "058264169513", "eu-west-1"
# CodeArtifact grants at most 12 h; entries further ahead (with a little skew) are suspect.
REGISTRY_TOKEN_MAX_AHEAD = timedelta(hours=12, minutes=5)
INDEX = f"https://{DOMAIN}-{OWNER}.d.codeartifact.{REGION}.amazonaws.com/pypi/menda-plugins/simple/"


@pytest.fixture
def local_clock() -> Iterator[Callable[[timedelta], None]]:
    """``local_clock(offset)`` skews this machine's clock (as menda.core_auth sees it) by
    ``offset``; menda cloud keeps real time. The clock is put back at teardown."""
    replaced: list[Callable[[], datetime]] = []

    def skew(offset: timedelta) -> None:
        replaced.append(set_clock(lambda: datetime.now(timezone.utc) + offset))

    yield skew
    if replaced:
        set_clock(replaced[0])


def _registry_path(home: MendaHome) -> Path:
    identity = resolve_identity()
    return TokenCache(home.cache_dir).path_for(identity.registry_key(DOMAIN, OWNER, REGION))


def test_registry_token_already_past_by_the_local_clock_is_returned_but_not_cached(
    *,
    m2m_env: dict[str, str],
    menda_cloud: MendaCloudEmulator,
    menda_home: MendaHome,
    local_clock: Callable[[timedelta], None],
    kr: MendaCodeArtifactKeyring,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The local clock runs 13 h ahead: a fresh 12 h CodeArtifact token is "already past".
    local_clock(timedelta(hours=13))
    with caplog.at_level(logging.DEBUG, logger="menda"):
        first = kr.get_password(INDEX, "aws")
        second = kr.get_password(INDEX, "aws")
    for token in (first, second):
        assert token is not None
        # menda cloud, whose clock is right, still takes it.
        assert menda_cloud.validate_registry_token(token, domain=DOMAIN, owner=OWNER, region=REGION)
    assert not _registry_path(menda_home).exists()
    assert "already expired" in caplog.text
    assert menda_cloud.count("registry") == 2
    # The access token's lifetime is counted from receipt on the local clock: still cached.
    assert menda_cloud.count("token") == 1


def _seed_far_future(home: MendaHome, cloud: MendaCloudEmulator, client_id: str) -> Path:
    now = datetime.now(timezone.utc)
    common = {"host": cloud.url}
    identity = resolve_identity()
    write_cache_entry(
        home.cache_dir,
        identity.cache_key,
        {
            **common,
            "access_token": "mat_from_the_far_future",
            "token_type": "Bearer",
            "expires_at": format_rfc3339(now + timedelta(days=10)),
            "client_id": client_id,
        },
    )
    return write_cache_entry(
        home.cache_dir,
        identity.registry_key(DOMAIN, OWNER, REGION),
        {
            **common,
            "token": "caat_from_the_far_future",
            "expires_at": format_rfc3339(now + timedelta(days=30)),
            "identity": identity.cache_key,
            "domain": DOMAIN,
            "domain_owner": OWNER,
            "region": REGION,
        },
    )


def test_entries_dated_beyond_their_lifetime_are_suspect_and_refetched_by_the_cli(
    m2m_env: dict[str, str],
    menda_cloud: MendaCloudEmulator,
    menda_home: MendaHome,
    keyring_cli: Any,
) -> None:
    path = _seed_far_future(menda_home, menda_cloud, m2m_env["MENDA_CLIENT_ID"])
    result = keyring_cli("get", INDEX, "aws", env=m2m_env)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert token != "caat_from_the_far_future"
    assert menda_cloud.validate_registry_token(token, domain=DOMAIN, owner=OWNER, region=REGION)
    # Neither suspect entry was used: a fresh access token and a fresh registry token.
    assert menda_cloud.count("token") == 1
    assert menda_cloud.count("registry") == 1
    entry = json.loads(path.read_bytes())
    assert entry["token"] == token
    expires_at = parse_time(entry["expires_at"])
    assert expires_at is not None
    assert expires_at <= datetime.now(timezone.utc) + REGISTRY_TOKEN_MAX_AHEAD


def test_local_clock_far_behind_makes_good_entries_look_suspect_and_they_are_refetched(
    m2m_env: dict[str, str],
    menda_cloud: MendaCloudEmulator,
    menda_home: MendaHome,
    local_clock: Callable[[timedelta], None],
    kr: MendaCodeArtifactKeyring,
) -> None:
    first = kr.get_password(INDEX, "aws")
    assert first is not None
    assert kr.get_password(INDEX, "aws") == first  # a cache hit with the right clock
    # Two days behind: the 12 h token now seems to last 2.5 days, which no token does.
    local_clock(-timedelta(days=2))
    second = kr.get_password(INDEX, "aws")
    assert second is not None
    assert second != first
    assert menda_cloud.count("registry") == 2
    assert menda_cloud.count("token") == 2
