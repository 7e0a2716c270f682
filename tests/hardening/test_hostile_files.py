"""Hostile files in the home directory against the real `keyring get` (issue 11, rows 6, 10, 11).

Row by row:

- 6, an entry, a lock or ``.token`` that is a symbolic link; our entries directory a
  link; a cache directory owned by another user, or writable by group or others:
  the ``test_*link*`` tests, ``test_a_cache_directory_others_can_write_*``,
  ``test_a_cache_directory_owned_by_another_user_is_not_used``,
  ``test_an_entry_owned_by_another_user_is_not_read``;
- 10, the config file (or ``.token``, or an entry) a FIFO; the config a device or a
  directory: ``test_a_fifo_*``, ``test_a_config_file_that_is_not_a_regular_file_*``;
- 11, a ``keyring`` killed by SIGKILL in the middle of a cache write:
  ``test_a_temporary_file_left_by_a_killed_writer_is_removed``, and
  ``test_only_our_stale_temporary_files_are_removed``.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from menda.core_auth import resolve_identity
from menda.error import InvalidConfigError
from menda.testing import MendaCloudEmulator, MendaHome

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX links, modes, FIFOs")
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
root_only = pytest.mark.skipif(
    sys.platform == "win32" or os.geteuid() != 0, reason="giving a file to another user needs root"
)
NOBODY = 65534


def _valid(cloud: MendaCloudEmulator, kit: Any, output: str) -> bool:
    return cloud.validate_registry_token(
        output.strip(), domain=kit.DOMAIN, owner=kit.OWNER, region=kit.REGION
    )


def _entry_paths(home: MendaHome, env: dict[str, str], kit: Any) -> tuple[Path, Path]:
    """Where our access-token entry and registry-token entry of ``env``'s identity live."""
    identity = resolve_identity(env)
    directory = home.own_cache_dir
    names = (identity.cache_key, identity.registry_key(kit.DOMAIN, kit.OWNER, kit.REGION))
    from menda.testing import cache_file_name

    access, registry = (directory / cache_file_name(name) for name in names)
    return access, registry


def _victim(path: Path, data: dict[str, Any]) -> tuple[bytes, int]:
    path.write_text(json.dumps(data))
    path.chmod(0o644)
    return path.read_bytes(), stat.S_IMODE(path.stat().st_mode)


# ----------------------------------------------------------------------- row 6: links


@posix_only
def test_an_entry_that_is_a_link_to_another_file_is_neither_followed_nor_changed(
    kit: Any,
    m2m_env: dict[str, str],
    menda_cloud: MendaCloudEmulator,
    menda_home: MendaHome,
    keyring_cli: Any,
) -> None:
    access, registry = _entry_paths(menda_home, m2m_env, kit)
    registry.parent.mkdir(parents=True, mode=0o700)
    # Another JSON file of the user's, with fields an entry has (before: merged into ours).
    victim = menda_home.home / "victim.json"
    before = _victim(victim, {"token": "victim-data", "host": menda_cloud.url, "note": "mine"})
    registry.symlink_to(victim)
    access.symlink_to(victim)

    result = keyring_cli("get", kit.INDEX, "aws", env=m2m_env)

    assert result.returncode == 0, result.stderr
    assert _valid(menda_cloud, kit, result.stdout)
    # Before: the target was chmod-ed to 0600 and had our fields merged in.
    assert (victim.read_bytes(), stat.S_IMODE(victim.stat().st_mode)) == before
    for entry in (access, registry):
        assert not entry.is_symlink()
        assert stat.S_IMODE(entry.stat().st_mode) == 0o600


@posix_only
def test_a_lock_that_is_a_link_is_not_followed(
    kit: Any,
    m2m_env: dict[str, str],
    menda_cloud: MendaCloudEmulator,
    menda_home: MendaHome,
    keyring_cli: Any,
) -> None:
    access, registry = _entry_paths(menda_home, m2m_env, kit)
    registry.parent.mkdir(parents=True, mode=0o700)
    dangling = menda_home.home / "created-by-the-link"
    victim = menda_home.home / "victim.txt"
    victim.write_text("mine")
    victim.chmod(0o644)
    registry.with_suffix(".lock").symlink_to(dangling)
    access.with_suffix(".lock").symlink_to(victim)

    result = keyring_cli("get", kit.INDEX, "aws", env=m2m_env)

    assert result.returncode == 0, result.stderr
    assert _valid(menda_cloud, kit, result.stdout)
    # Before: the link's target was created, and an existing one chmod-ed.
    assert not dangling.exists()
    assert victim.read_text() == "mine"
    assert stat.S_IMODE(victim.stat().st_mode) == 0o644


@posix_only
def test_a_cli_token_file_that_is_a_link_is_not_read(
    kit: Any, menda_cloud: MendaCloudEmulator, menda_home: MendaHome, keyring_cli: Any
) -> None:
    login = menda_home.add_u2m_profile(menda_cloud)  # writes a valid .token ...
    elsewhere = menda_home.home / "elsewhere"
    elsewhere.mkdir()
    menda_home.token_file.rename(elsewhere / ".token")  # ... which now lives elsewhere
    menda_home.token_file.symlink_to(elsewhere / ".token")
    before = (elsewhere / ".token").read_bytes()

    result = keyring_cli("get", kit.INDEX, "aws", env=menda_home.env())

    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert "No valid cached token for profile 'default'" in line
    assert login.access_token not in result.stderr
    assert (elsewhere / ".token").read_bytes() == before
    assert menda_cloud.requests == []


@posix_only
def test_our_entries_directory_that_is_a_link_is_not_used(
    kit: Any,
    m2m_env: dict[str, str],
    menda_cloud: MendaCloudEmulator,
    menda_home: MendaHome,
    keyring_cli: Any,
) -> None:
    elsewhere = menda_home.home / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    menda_home.cache_dir.mkdir(parents=True, mode=0o700)
    menda_home.own_cache_dir.symlink_to(elsewhere)

    first = keyring_cli("get", kit.INDEX, "aws", env=m2m_env)
    second = keyring_cli("get", kit.INDEX, "aws", env=m2m_env)

    for result in (first, second):
        assert result.returncode == 0, result.stderr
        assert _valid(menda_cloud, kit, result.stdout)
        (warning,) = result.stderr.splitlines()
        assert warning.startswith(
            f"menda-keyring: Not using the token cache: {menda_home.own_cache_dir} is a "
            f"symbolic link. Remove it (rm {menda_home.own_cache_dir});"
        )
    assert list(elsewhere.iterdir()) == []
    assert menda_cloud.count("registry") == 2  # nothing cached: each call asks


# ----------------------------------------------------------------------- row 6: whose directory


@posix_only
@pytest.mark.parametrize("mode", [0o777, 0o775, 0o757], ids=oct)
def test_a_cache_directory_others_can_write_is_not_used_and_named_with_the_fix(
    *,
    kit: Any,
    m2m_env: dict[str, str],
    menda_cloud: MendaCloudEmulator,
    menda_home: MendaHome,
    keyring_cli: Any,
    mode: int,
) -> None:
    cache_dir = menda_home.cache_dir
    cache_dir.mkdir(parents=True)
    cache_dir.chmod(mode)

    result = keyring_cli("get", kit.INDEX, "aws", env=m2m_env)

    assert result.returncode == 0, result.stderr
    assert _valid(menda_cloud, kit, result.stdout)
    (warning,) = result.stderr.splitlines()
    assert warning.startswith(
        f"menda-keyring: Not using the token cache: {cache_dir} is writable by "
    )
    assert f"(mode {mode:04o}). Make it private: chmod 700 {cache_dir}." in warning
    assert list(cache_dir.iterdir()) == []


@posix_only
def test_a_login_in_a_group_writable_cache_directory_still_works(
    kit: Any, menda_cloud: MendaCloudEmulator, menda_home: MendaHome, keyring_cli: Any
) -> None:
    # `menda auth login` creates the directory with the umask: 0775 under umask 002. The
    # CLI's .token is read when the user owns it (nobody else could have planted it);
    # our own entries are not kept there until the directory is made private.
    menda_home.add_u2m_profile(menda_cloud)
    menda_home.cache_dir.chmod(0o775)

    result = keyring_cli("get", kit.INDEX, "aws", env=menda_home.env())

    assert result.returncode == 0, result.stderr
    assert _valid(menda_cloud, kit, result.stdout)
    (warning,) = result.stderr.splitlines()
    assert "is writable by group (mode 0775)" in warning
    assert not menda_home.own_cache_dir.exists()


@root_only
def test_a_cache_directory_owned_by_another_user_is_not_used(
    kit: Any,
    m2m_env: dict[str, str],
    menda_cloud: MendaCloudEmulator,
    menda_home: MendaHome,
    keyring_cli: Any,
) -> None:
    cache_dir = menda_home.cache_dir
    cache_dir.mkdir(parents=True, mode=0o700)
    os.chown(cache_dir, NOBODY, NOBODY)

    result = keyring_cli("get", kit.INDEX, "aws", env=m2m_env)

    assert result.returncode == 0, result.stderr
    assert _valid(menda_cloud, kit, result.stdout)
    (warning,) = result.stderr.splitlines()
    assert warning.startswith(
        f"menda-keyring: Not using the token cache: {cache_dir} is owned by another user "
        f"(uid {NOBODY}). Remove it, or set MENDA_TOKEN_CACHE_DIR"
    )
    assert list(cache_dir.iterdir()) == []


@root_only
def test_an_entry_owned_by_another_user_is_not_read(
    kit: Any,
    m2m_env: dict[str, str],
    menda_cloud: MendaCloudEmulator,
    menda_home: MendaHome,
    keyring_cli: Any,
) -> None:
    identity = resolve_identity(m2m_env)
    planted = menda_home.write_cache_entry(
        identity.registry_key(kit.DOMAIN, kit.OWNER, kit.REGION),
        {
            "token": "PLANTED-registry-token",
            "expires_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 7200)),
            "host": identity.host,
            "identity": identity.cache_key,
            "domain": kit.DOMAIN,
            "domain_owner": kit.OWNER,
            "region": kit.REGION,
        },
    )
    os.chown(planted, NOBODY, NOBODY)

    result = keyring_cli("get", kit.INDEX, "aws", env=m2m_env)

    assert result.returncode == 0, result.stderr
    assert _valid(menda_cloud, kit, result.stdout)
    assert planted.stat().st_uid == os.geteuid()  # replaced by our own entry


# ----------------------------------------------------------------------- row 10: FIFOs


@posix_only
def test_a_fifo_config_file_is_refused_by_keyring_and_diagnose_without_hanging(
    kit: Any, menda_home: MendaHome, keyring_cli: Any
) -> None:
    menda_home.config_path.parent.mkdir(parents=True)
    os.mkfifo(menda_home.config_path)
    env = menda_home.env()

    # Before: both hung forever (the timeout here would fire).
    result = keyring_cli("get", kit.INDEX, "aws", env=env, timeout=20)
    report = keyring_cli.measured(
        "diagnose", kit.INDEX, env=env, timeout=20, program=keyring_cli.diagnose_path
    )

    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert f"Menda config file {menda_home.config_path} is a FIFO (named pipe)" in line
    assert line.endswith("[InvalidConfigError]")
    assert report.returncode == 1
    assert "is a FIFO (named pipe)" in report.stdout


@posix_only
@pytest.mark.parametrize("kind", ["device", "directory", "fifo-through-a-link"])
def test_a_config_file_that_is_not_a_regular_file_is_refused_with_a_clear_error(
    menda_home: MendaHome, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    if kind == "device":
        path = Path("/dev/zero")  # read whole, this would never end
        expected = "is a device"
    elif kind == "directory":
        path = menda_home.home / "a-directory"
        path.mkdir()
        expected = "is a directory"
    else:
        fifo = menda_home.home / "fifo"
        os.mkfifo(fifo)
        path = menda_home.home / "link"
        path.symlink_to(fifo)
        expected = "is a FIFO (named pipe)"
    monkeypatch.setenv("MENDA_CONFIG_FILE", str(path))
    with pytest.raises(InvalidConfigError) as caught:
        resolve_identity()
    assert f"Menda config file {path} {expected}, not a regular file" in str(caught.value)


@posix_only
def test_a_fifo_token_file_or_entry_is_a_miss_without_hanging(
    kit: Any, menda_cloud: MendaCloudEmulator, menda_home: MendaHome, keyring_cli: Any
) -> None:
    menda_home.add_u2m_profile(menda_cloud)
    env = menda_home.env()
    identity = resolve_identity(env)
    registry = menda_home.own_cache_dir / (
        identity.registry_key(kit.DOMAIN, kit.OWNER, kit.REGION) + ".json"
    )
    registry.parent.mkdir(parents=True, mode=0o700)
    os.mkfifo(registry)
    good = keyring_cli("get", kit.INDEX, "aws", env=env, timeout=20)
    assert good.returncode == 0, good.stderr
    assert registry.is_file()  # the FIFO was replaced by our entry

    menda_home.token_file.unlink()
    os.mkfifo(menda_home.token_file)
    registry.unlink()
    result = keyring_cli("get", kit.INDEX, "aws", env=env, timeout=20)
    assert result.returncode == 1
    assert "No valid cached token for profile 'default'" in result.stderr


# ----------------------------------------------------------------------- row 11: killed writers

# Loaded by the child through PYTHONPATH: SIGKILL the process in the middle of writing
# an access-token entry (after the temporary file is written, before its rename).
_KILL_IN_WRITE = """
import os, signal
_fsync = os.fsync
def fsync(fd):
    try:
        name = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        name = ""
    if name.endswith(".tmp") and "m2m-env" in name:
        os.kill(os.getpid(), signal.SIGKILL)
    return _fsync(fd)
os.fsync = fsync
"""


@linux_only
def test_a_temporary_file_left_by_a_killed_writer_is_removed(
    *,
    kit: Any,
    m2m_env: dict[str, str],
    menda_cloud: MendaCloudEmulator,
    menda_home: MendaHome,
    keyring_cli: Any,
    tmp_path: Path,
) -> None:
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(_KILL_IN_WRITE)

    killed = keyring_cli("get", kit.INDEX, "aws", env={**m2m_env, "PYTHONPATH": str(hook)})

    assert killed.returncode == -9
    (left,) = menda_home.own_cache_dir.glob(".m2m-env*.tmp")
    (access_token,) = {r for r in getattr(menda_cloud, "_access", {})}
    assert access_token in left.read_text()  # before: there for good

    result = keyring_cli("get", kit.INDEX, "aws", env=m2m_env)

    assert result.returncode == 0, result.stderr
    assert not left.exists()
    assert list(menda_home.own_cache_dir.glob("*.tmp")) == []


@posix_only
def test_only_our_stale_temporary_files_are_removed(tmp_path: Path) -> None:
    from menda.core_auth._files import remove_stale_temporaries

    dead = subprocess.Popen(["true"])
    dead.wait()
    alive = os.getppid()
    names = {
        "dead": f".registry-0.json.{dead.pid}.0123456789ab.tmp",
        "alive-young": f".registry-1.json.{alive}.0123456789ab.tmp",
        "alive-old": f".registry-2.json.{alive}.0123456789ab.tmp",
        "not-ours": ".registry-3.json.tmp",
        "a-link": f".registry-4.json.{dead.pid}.0123456789ab.tmp",
    }
    for what, name in names.items():
        path = tmp_path / name
        if what == "a-link":
            path.symlink_to(tmp_path / "target")
        else:
            path.write_text("x")
    old = time.time() - 3600
    os.utime(tmp_path / names["alive-old"], (old, old))

    assert remove_stale_temporaries(tmp_path) == 2

    left = {p.name for p in tmp_path.iterdir()}
    assert left == {names["alive-young"], names["not-ours"], names["a-link"]}
