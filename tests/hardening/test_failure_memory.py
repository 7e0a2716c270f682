"""Failures are remembered briefly (issue 11, acceptance 2).

The same identity, host and registry that just failed (a 4xx, or a transient error
after retries) fails again at once, with the same line, for 30 s: uv's second call
(for the bare host) and a waiting herd (tests/hardening/test_hostile_servers.py)
cost nothing. A changed config, environment or login clears it.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from menda.cloud_client import MendaCloudClient, RegistryRequest
from menda.core_auth import TokenCache, resolve_identity
from menda.error import MendaCloudAPIError, MendaError
from menda.testing import FakeClock, MendaCloudEmulator, MendaHome, Status

DOMAIN, OWNER, REGION = "menda-private", "058264169513", "eu-west-1"
REGISTRY = RegistryRequest(DOMAIN, OWNER, REGION, "menda-plugins", "pypi")


# Back-off waits are recorded, not slept.
pytestmark = pytest.mark.usefixtures("waits")


def _attempt(home: MendaHome, registry: RegistryRequest = REGISTRY) -> MendaError:
    """One call as the backend makes it; the error it ends with."""
    with (
        MendaCloudClient(resolve_identity(), cache=TokenCache(home.cache_dir)) as client,
        pytest.raises(MendaError) as caught,
    ):
        client.registry_token(registry)
    return caught.value


def _denied_m2m(kit: Any, cloud: MendaCloudEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    cloud.add_m2m_client(kit.CLIENT_ID, kit.CLIENT_SECRET, domains=["another-domain"])
    monkeypatch.setenv("MENDA_CLIENT_ID", kit.CLIENT_ID)
    monkeypatch.setenv("MENDA_CLIENT_SECRET", kit.CLIENT_SECRET)
    monkeypatch.setenv("MENDA_HOST", cloud.url)


def test_uvs_second_call_for_the_bare_host_costs_nothing_and_prints_the_same_line(
    kit: Any, menda_cloud: MendaCloudEmulator, menda_home: MendaHome, keyring_cli: Any
) -> None:
    menda_cloud.add_m2m_client(kit.CLIENT_ID, kit.CLIENT_SECRET, domains=["another-domain"])
    env = kit.m2m_env_for(menda_home, menda_cloud.url)

    first = keyring_cli("get", kit.INDEX, "aws", env=env)
    requests = len(menda_cloud.requests)
    second = keyring_cli("get", kit.ENDPOINT, "aws", env=env)

    assert first.returncode == second.returncode == 1
    (line,) = first.stderr.splitlines()
    assert "HTTP 403" in line
    assert second.stderr.splitlines() == [line]
    assert len(menda_cloud.requests) == requests == 2  # token and registry, once


def test_a_transient_failure_after_retries_is_remembered(
    kit: Any,
    menda_cloud: MendaCloudEmulator,
    menda_home: MendaHome,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    menda_cloud.add_m2m_client(kit.CLIENT_ID, kit.CLIENT_SECRET)
    monkeypatch.setenv("MENDA_CLIENT_ID", kit.CLIENT_ID)
    monkeypatch.setenv("MENDA_CLIENT_SECRET", kit.CLIENT_SECRET)
    monkeypatch.setenv("MENDA_HOST", menda_cloud.url)
    menda_cloud.inject("registry", Status(503), times=3)

    first = _attempt(menda_home)
    second = _attempt(menda_home)

    assert isinstance(second, MendaCloudAPIError)
    assert str(second) == str(first)
    assert "gave up after 3 attempts" in str(first)
    assert second.status_code == 503
    assert menda_cloud.count("registry") == 3


def test_it_is_forgotten_after_30_seconds(
    kit: Any,
    menda_cloud: MendaCloudEmulator,
    menda_home: MendaHome,
    monkeypatch: pytest.MonkeyPatch,
    clock: FakeClock,
) -> None:
    _denied_m2m(kit, menda_cloud, monkeypatch)
    first = _attempt(menda_home)
    assert menda_cloud.count("registry") == 1

    clock.advance(29)
    assert str(_attempt(menda_home)) == str(first)
    assert menda_cloud.count("registry") == 1

    clock.advance(2)
    _attempt(menda_home)
    assert menda_cloud.count("registry") == 2


def test_it_counts_for_one_registry_only(
    kit: Any,
    menda_cloud: MendaCloudEmulator,
    menda_home: MendaHome,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _denied_m2m(kit, menda_cloud, monkeypatch)
    _attempt(menda_home)
    _attempt(menda_home, RegistryRequest("another-domain", OWNER, REGION, "repo", "pypi"))
    assert menda_cloud.count("registry") == 2


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MENDA_TIMEOUT", "29"),
        ("HTTPS_PROXY", "http://proxy.invalid:3128"),
        ("REQUESTS_CA_BUNDLE", "/etc/another-ca-bundle.pem"),
    ],
)
def test_a_changed_environment_clears_it(
    *,
    kit: Any,
    menda_cloud: MendaCloudEmulator,
    menda_home: MendaHome,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    value: str,
) -> None:
    _denied_m2m(kit, menda_cloud, monkeypatch)
    _attempt(menda_home)
    _attempt(menda_home)
    assert menda_cloud.count("registry") == 1

    monkeypatch.setenv(name, value)
    _attempt(menda_home)
    assert menda_cloud.count("registry") == 2


def test_a_changed_client_secret_clears_it(
    kit: Any,
    menda_cloud: MendaCloudEmulator,
    menda_home: MendaHome,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    menda_cloud.add_m2m_client(kit.CLIENT_ID, "the-right-secret")
    monkeypatch.setenv("MENDA_CLIENT_ID", kit.CLIENT_ID)
    monkeypatch.setenv("MENDA_CLIENT_SECRET", "a-wrong-secret")
    monkeypatch.setenv("MENDA_HOST", menda_cloud.url)
    assert "HTTP 401" in str(_attempt(menda_home))
    _attempt(menda_home)
    assert menda_cloud.count("token") == 1

    monkeypatch.setenv("MENDA_CLIENT_SECRET", "the-right-secret")
    with MendaCloudClient(resolve_identity(), cache=TokenCache(menda_home.cache_dir)) as client:
        assert client.registry_token(REGISTRY).token
    assert menda_cloud.count("token") == 2


def test_a_changed_config_file_clears_it(
    kit: Any, menda_cloud: MendaCloudEmulator, menda_home: MendaHome
) -> None:
    menda_cloud.add_m2m_client(kit.CLIENT_ID, kit.CLIENT_SECRET, domains=["another-domain"])
    menda_home.add_m2m_profile(menda_cloud, kit.CLIENT_ID, kit.CLIENT_SECRET)
    _attempt(menda_home)
    _attempt(menda_home)
    assert menda_cloud.count("registry") == 1

    # The administrator fixed something (here: nothing but a comment) and saved the file.
    with menda_home.config_path.open("a") as config:
        config.write("# fixed\n")
    _attempt(menda_home)
    assert menda_cloud.count("registry") == 2


def test_a_new_login_clears_it(menda_cloud: MendaCloudEmulator, menda_home: MendaHome) -> None:
    menda_home.add_u2m_profile(menda_cloud, domains=["another-domain"])
    _attempt(menda_home)
    _attempt(menda_home)
    assert menda_cloud.count("registry") == 1

    menda_home.write_cached_login("default", menda_cloud.login("alice"))  # `menda auth login`
    _attempt(menda_home)
    assert menda_cloud.count("registry") == 2


def test_a_failure_without_a_request_is_not_remembered(
    menda_cloud: MendaCloudEmulator, menda_home: MendaHome
) -> None:
    # No login at all: nothing was asked of menda cloud, nothing to remember; the
    # user's `menda auth login` is then seen at once, whatever the file's timestamps.
    menda_home.add_u2m_profile(menda_cloud)
    menda_home.token_file.unlink()
    _attempt(menda_home)
    assert not list(menda_home.own_cache_dir.glob("failed-*.json"))


def test_a_call_that_waited_out_most_of_its_deadline_does_not_speak_for_menda_cloud(
    kit: Any, hostile: Any, menda_home: MendaHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another process held the lock for most of the deadline, then died; this call had
    # too little time left to judge menda cloud, so its failure is not remembered.
    server = hostile(kit.cloud(token=lambda conn, request: conn.hang()))
    for name, value in kit.m2m_env_for(menda_home, server.url).items():
        monkeypatch.setenv(name, value)
    identity = resolve_identity()
    cache = TokenCache(menda_home.cache_dir)
    lock = cache.lock(identity.registry_key(DOMAIN, OWNER, REGION), timeout=0)
    assert lock.__enter__()
    threading.Timer(1.2, lock.__exit__, (None, None, None)).start()

    with (
        MendaCloudClient(identity, cache=cache, deadline=2.0) as client,
        pytest.raises(MendaCloudAPIError, match="within the 2 s deadline"),
    ):
        client.registry_token(REGISTRY)

    assert server.count("token") == 1
    assert not list(menda_home.own_cache_dir.glob("failed-*.json"))
