"""Faults, each against the emulator or the file system: the login keeps working or says why.

Cases (17): dropped mid-body (3), read timeout (1), TLS verification failure (1),
5xx storms (2), Retry-After in seconds and as an HTTP-date (2), read-only cache
directory (2: by mode when not root, a read-only tmpfs when root), full disk while
writing (3: ENOSPC injected into write and into fsync, a really full tmpfs), a
`keyring` killed while holding the lock (1), a loose entry mode (1).

The backend writes its one line per failure straight to stderr (spec: "Who prints
it"), so in-process tests read it with ``capsys``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from menda.cloud_client import MendaCloudClient, RegistryRequest
from menda.core_auth import Identity, TokenCache, resolve_identity, utcnow
from menda.keyring.backend import MendaCodeArtifactKeyring
from menda.testing import Delay, Drop, MendaCloudEmulator, MendaHome, Status, Truncate

DOMAIN, OWNER, REGION = "menda-private", "058264169513", "eu-west-1"
ENDPOINT = f"{DOMAIN}-{OWNER}.d.codeartifact.{REGION}.amazonaws.com"
INDEX = f"https://{ENDPOINT}/pypi/menda-plugins/simple/"
REGISTRY = RegistryRequest(DOMAIN, OWNER, REGION, "menda-plugins", "pypi")

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX modes and signals")
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux")


def valid(cloud: MendaCloudEmulator, token: str | None) -> bool:
    return token is not None and cloud.validate_registry_token(
        token, domain=DOMAIN, owner=OWNER, region=REGION
    )


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def lines_of(capsys: pytest.CaptureFixture[str]) -> list[str]:
    """What the backend printed on stderr since the last call."""
    return capsys.readouterr().err.splitlines()


def registry_key(identity: Identity) -> str:
    return identity.registry_key(DOMAIN, OWNER, REGION)


# ----------------------------------------------------------------------- broken connections


@pytest.mark.parametrize("endpoint", ["token", "registry"])
def test_connection_dropped_mid_body_is_retried_and_the_token_still_arrives(
    kr: MendaCodeArtifactKeyring,
    m2m_env: dict[str, str],
    menda_cloud: MendaCloudEmulator,
    waits: list[float],
    endpoint: str,
) -> None:
    menda_cloud.inject(endpoint, Truncate())
    menda_cloud.inject(endpoint, Drop())
    assert valid(menda_cloud, kr.get_password(INDEX, "aws"))
    assert [r.fault for r in menda_cloud.requests if r.endpoint == endpoint] == [
        "truncate",
        "drop",
        None,
    ]
    assert len(waits) == 2


def test_connection_dropped_every_time_is_one_line_naming_the_host(
    kr: MendaCodeArtifactKeyring,
    m2m_env: dict[str, str],
    menda_cloud: MendaCloudEmulator,
    waits: list[float],
    capsys: pytest.CaptureFixture[str],
) -> None:
    menda_cloud.inject("registry", Truncate(), times=3)
    assert kr.get_password(INDEX, "aws") is None
    (line,) = lines_of(capsys)
    assert menda_cloud.url in line
    assert "MENDA_HOST" in line
    assert "3 attempts" in line
    assert line.endswith("[MendaCloudAPIError]")


def test_read_timeout_once_then_the_retry_gets_the_token(
    m2m_env: dict[str, str], menda_cloud: MendaCloudEmulator, menda_home: MendaHome
) -> None:
    menda_cloud.inject("token", Delay(2.0))
    identity = resolve_identity()
    with MendaCloudClient(identity, timeout=(2.0, 0.3), backoff=0.01) as client:
        credential = client.registry_token(REGISTRY)
    assert valid(menda_cloud, credential.token)
    assert menda_cloud.pending_faults("token") == []
    # The retry was answered; the delayed attempt is logged only once its delay ends.
    assert menda_cloud.count("token", fault=None) == 1


# ----------------------------------------------------------------------- TLS


def test_tls_verification_failure_in_the_cli_names_the_host_and_the_ca_variables(
    tls_host: str, menda_home: MendaHome, keyring_cli: Any
) -> None:
    env = menda_home.env(
        MENDA_CLIENT_ID="tls-bot",
        MENDA_CLIENT_SECRET="SECRET-client-7f1e",
        MENDA_HOST=tls_host,
        REQUESTS_CA_BUNDLE=None,
        CURL_CA_BUNDLE=None,
        SSL_CERT_FILE=None,
    )
    result = keyring_cli("get", INDEX, "aws", env=env)
    assert result.returncode == 1
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("menda-keyring: TLS certificate verification failed for " + tls_host)
    assert "REQUESTS_CA_BUNDLE" in line
    assert "SSL_CERT_FILE" in line
    assert "SECRET-client-7f1e" not in line


# ----------------------------------------------------------------------- 5xx and Retry-After


def test_5xx_storm_that_ends_within_the_deadline_still_gives_a_token(
    kr: MendaCodeArtifactKeyring,
    m2m_env: dict[str, str],
    menda_cloud: MendaCloudEmulator,
    waits: list[float],
) -> None:
    menda_cloud.inject("token", Status(502))
    menda_cloud.inject("token", Status(500))
    menda_cloud.inject("registry", Status(503))
    menda_cloud.inject("registry", Status(504))
    assert valid(menda_cloud, kr.get_password(INDEX, "aws"))
    assert [r.status for r in menda_cloud.requests] == [502, 500, 200, 503, 504, 200]
    assert len(waits) == 4
    assert sum(waits) < 30.0


def test_5xx_storm_longer_than_the_deadline_stops_at_the_deadline(
    m2m_env: dict[str, str], menda_cloud: MendaCloudEmulator, menda_home: MendaHome
) -> None:
    # Really sleeping: 0.1 s, 0.2 s, 0.4 s ... cannot fit 50 attempts into 1 s.
    menda_cloud.inject("token", Status(503), times=100)
    from menda.error import MendaCloudAPIError

    with (
        MendaCloudClient(resolve_identity(), backoff=0.1, max_attempts=50, deadline=1.0) as client,
        pytest.raises(MendaCloudAPIError) as caught,
    ):
        client.access_token()
    assert caught.value.status_code == 503
    assert 2 <= menda_cloud.count("token") < 10
    assert "gave up after" in str(caught.value)


@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_retry_after_is_honoured_in_seconds_and_as_an_http_date(
    kr: MendaCodeArtifactKeyring,
    m2m_env: dict[str, str],
    menda_cloud: MendaCloudEmulator,
    waits: list[float],
    form: str,
) -> None:
    if form == "seconds":
        menda_cloud.inject("registry", Status(503, retry_after=4))
    else:
        when = format_datetime(utcnow() + timedelta(seconds=6), usegmt=True)
        menda_cloud.inject("token", Status(429, retry_after=when))
    assert valid(menda_cloud, kr.get_password(INDEX, "aws"))
    (wait,) = waits
    if form == "seconds":
        assert wait == 4.0
    else:
        assert 4.0 < wait <= 6.0


# ----------------------------------------------------------------------- the file system


@contextlib.contextmanager
def tmpfs(path: Path, options: str) -> Iterator[None]:
    """Mount a tmpfs at ``path`` (root on Linux only), unmounted afterwards."""
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root on Linux")
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode(errors='replace')}")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def _fetch_twice_without_a_cache(
    kr: MendaCodeArtifactKeyring, cloud: MendaCloudEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="menda"):
        first = kr.get_password(INDEX, "aws")
        second = kr.get_password(INDEX, "aws")
    assert valid(cloud, first)
    assert valid(cloud, second)
    # Nothing cached: each call asked again, and nobody was bothered with a warning
    # (a directory we cannot write is not one others can: nothing to fix).
    assert cloud.count("registry") == 2
    assert warnings_of(caplog) == []


@posix_only
def test_read_only_cache_directory_by_mode_means_working_without_a_cache(
    *,
    kr: MendaCodeArtifactKeyring,
    m2m_env: dict[str, str],
    menda_cloud: MendaCloudEmulator,
    menda_home: MendaHome,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if os.geteuid() == 0:
        pytest.skip("root ignores directory modes (the tmpfs variant covers root)")
    cache_dir = menda_home.home / "ro-cache"
    cache_dir.mkdir(mode=0o500)
    monkeypatch.setenv("MENDA_TOKEN_CACHE_DIR", str(cache_dir))
    try:
        _fetch_twice_without_a_cache(kr, menda_cloud, caplog)
    finally:
        cache_dir.chmod(0o700)


@linux_only
def test_read_only_file_system_under_the_cache_means_working_without_a_cache(
    *,
    kr: MendaCodeArtifactKeyring,
    m2m_env: dict[str, str],
    menda_cloud: MendaCloudEmulator,
    menda_home: MendaHome,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache_dir = menda_home.home / "rofs"
    with tmpfs(cache_dir, "ro,size=1m,mode=0700"):
        monkeypatch.setenv("MENDA_TOKEN_CACHE_DIR", str(cache_dir))
        _fetch_twice_without_a_cache(kr, menda_cloud, caplog)
        assert list(cache_dir.iterdir()) == []


def _old_registry_entry(cache: TokenCache, identity: Identity) -> tuple[Path, bytes]:
    """A registry entry the CLI left behind, too close to expiry to use: it will be refetched."""
    from menda.testing import write_cache_entry

    path = write_cache_entry(
        cache.directory,
        registry_key(identity),
        {
            "token": "caat_old-but-intact",
            "expires_at": (utcnow() + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "host": identity.host,
            "identity": identity.cache_key,
            "domain": DOMAIN,
            "domain_owner": OWNER,
            "region": REGION,
            "x_cli_note": "kept",
        },
    )
    return path, path.read_bytes()


def _assert_old_entry_intact(cache: TokenCache, path: Path, before: bytes) -> None:
    assert path.read_bytes() == before
    assert json.loads(before)["token"] == "caat_old-but-intact"
    leftovers = [p.name for p in cache.entries_dir.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


@pytest.mark.parametrize("where", ["write", "fsync"])
def test_full_disk_while_writing_keeps_the_old_entry_and_still_returns_the_token(
    m2m_env: dict[str, str],
    menda_cloud: MendaCloudEmulator,
    menda_home: MendaHome,
    monkeypatch: pytest.MonkeyPatch,
    where: str,
) -> None:
    identity = resolve_identity()
    cache = TokenCache(menda_home.cache_dir)
    path, before = _old_registry_entry(cache, identity)
    failures: list[int] = []

    def is_temporary(fd: int) -> bool:
        try:
            return Path(f"/proc/self/fd/{fd}").readlink().name.endswith(".tmp")
        except OSError:
            return False

    real_write, real_fsync = os.write, os.fsync

    def full_write(fd: int, data: Any) -> int:
        if not is_temporary(fd):
            return real_write(fd, data)
        # Half of it fits, then the disk is full: a torn temporary file.
        half = max(1, len(data) // 2)
        if not failures:
            failures.append(fd)
            return real_write(fd, bytes(data)[:half])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def full_fsync(fd: int) -> None:
        if is_temporary(fd) or not sys.platform.startswith("linux"):
            failures.append(fd)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    if where == "write":
        if not sys.platform.startswith("linux"):
            pytest.skip("tells temporary files apart through /proc")
        monkeypatch.setattr(os, "write", full_write)
    else:
        monkeypatch.setattr(os, "fsync", full_fsync)
    with MendaCloudClient(identity, cache=cache) as client:
        credential = client.registry_token(REGISTRY)
    monkeypatch.undo()

    assert failures
    assert valid(menda_cloud, credential.token)
    assert credential.token != "caat_old-but-intact"
    _assert_old_entry_intact(cache, path, before)


@linux_only
def test_really_full_tmpfs_keeps_the_old_entry_and_still_returns_the_token(
    m2m_env: dict[str, str],
    menda_cloud: MendaCloudEmulator,
    menda_home: MendaHome,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache_dir = menda_home.home / "tiny"
    with tmpfs(cache_dir, "size=64k,mode=0700"):
        monkeypatch.setenv("MENDA_TOKEN_CACHE_DIR", str(cache_dir))
        identity = resolve_identity()
        cache = TokenCache(cache_dir)
        path, before = _old_registry_entry(cache, identity)
        filler = cache_dir / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * 4096)
        finally:
            os.close(fd)
        with MendaCloudClient(identity, cache=cache) as client:
            credential = client.registry_token(REGISTRY)
        assert valid(menda_cloud, credential.token)
        _assert_old_entry_intact(cache, path, before)
        filler.unlink()


# ----------------------------------------------------------------------- killed lock holder


def _locked(path: Path) -> bool:
    """True when another process holds the flock on ``path``."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


@posix_only
def test_keyring_killed_while_holding_the_lock_does_not_stall_the_next_one(
    m2m_env: dict[str, str],
    menda_cloud: MendaCloudEmulator,
    menda_home: MendaHome,
    keyring_cli: Any,
) -> None:
    identity = resolve_identity()
    cache = TokenCache(menda_home.cache_dir)
    locks = [
        cache.path_for(key).with_suffix(".lock")
        for key in (identity.cache_key, registry_key(identity))
    ]
    # Only the first token request hangs; the next process is answered at once.
    menda_cloud.inject("token", Delay(20.0))
    first = subprocess.Popen(
        [keyring_cli.path, "get", INDEX, "aws"],
        env=m2m_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        # Inside both locks, waiting for menda cloud: the fault has been taken.
        _wait_for(lambda: menda_cloud.pending_faults("token") == [])
        assert all(_locked(lock) for lock in locks)
        first.send_signal(signal.SIGKILL)
        first.wait()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.stdout is not None and first.stderr is not None
    first.stdout.close()
    first.stderr.close()
    assert first.returncode == -signal.SIGKILL
    assert not any(_locked(lock) for lock in locks)

    started = time.monotonic()
    second = keyring_cli("get", INDEX, "aws", env=m2m_env)
    elapsed = time.monotonic() - started
    assert second.returncode == 0, second.stderr
    assert valid(menda_cloud, second.stdout.strip())
    # The second process made its own token request (the first never got one) ...
    assert menda_cloud.count("token", fault=None, status=200) == 1
    assert menda_cloud.count("registry") == 1
    # ... and did not sit out the 30 s lock bound (generous: it takes about a second).
    assert elapsed < 25


# ----------------------------------------------------------------------- file modes


@posix_only
def test_loose_cache_entry_is_never_chmod_ed_and_is_replaced_by_a_0600_file_on_write(
    m2m_env: dict[str, str],
    menda_cloud: MendaCloudEmulator,
    menda_home: MendaHome,
    keyring_cli: Any,
) -> None:
    mode = 0o666
    first = keyring_cli("get", INDEX, "aws", env=m2m_env)
    assert first.returncode == 0, first.stderr
    entries = sorted(menda_home.own_cache_dir.glob("*.json"))
    assert len(entries) == 2
    for path in entries:
        path.chmod(mode)
    registry_entry = next(p for p in entries if p.name.startswith("registry-"))
    second = keyring_cli("get", INDEX, "aws", env=m2m_env)
    assert second.stdout == first.stdout
    assert menda_cloud.count("registry") == 1  # a cache hit
    # Read, never chmod-ed (a chmod through a planted link would change another file);
    # the directory around it is 0700, so nobody else could read it anyway.
    assert stat.S_IMODE(registry_entry.stat().st_mode) == mode
    assert stat.S_IMODE(menda_home.own_cache_dir.stat().st_mode) == 0o700
    # Once the entry is too close to expiry, the refetch replaces it with a new 0600 file.
    entry = json.loads(registry_entry.read_bytes())
    entry["expires_at"] = (utcnow() + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    registry_entry.write_text(json.dumps(entry))
    third = keyring_cli("get", INDEX, "aws", env=m2m_env)
    assert third.returncode == 0, third.stderr
    assert menda_cloud.count("registry") == 2
    assert stat.S_IMODE(registry_entry.stat().st_mode) == 0o600
