"""The cache locks and atomic writes, exercised by real processes racing for one key.

Our entries (``menda-keyring/<key>.json`` with ``<key>.lock``) and the CLI's
``.token`` (with ``.token.lock``) both get a herd of racers and torn-read checks.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from menda.core_auth import TokenCache

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX signals")

# A child that takes the lock on a key, says so on stdout, then holds it until
# stdin closes (or is killed).
HOLDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from menda.core_auth import TokenCache

    cache = TokenCache(Path(sys.argv[1]))
    with cache.lock(sys.argv[2], timeout=30) as held:
        print("held" if held else "not-held", flush=True)
        sys.stdin.read()
        if len(sys.argv) > 3:
            Path(sys.argv[3]).write_text("released")
    """
)

# A racer: lock -> read again -> write when missing, recording who wrote.
RACER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from menda.core_auth import TokenCache

    cache = TokenCache(Path(sys.argv[1]))
    go = Path(sys.argv[3])
    while not go.exists():
        time.sleep(0.002)
    with cache.lock("ci.prod", timeout=60) as held:
        entry = cache.read_entry("ci.prod")
        if entry is None:
            time.sleep(0.05)  # the "token request": long enough for the others to pile up
            cache.write_entry("ci.prod", {"access_token": "t", "writer": os.getpid()})
            with open(sys.argv[2], "a") as log:
                log.write(f"{os.getpid()}\\n")
    print("held" if held else "not-held")
    """
)

WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from menda.core_auth import TokenCache

    cache = TokenCache(Path(sys.argv[1]))
    tag = sys.argv[2]
    for i in range(int(sys.argv[3])):
        payload = (tag + str(i % 10)) * 20000  # ~40 kB: under the 64 KiB entry limit
        ok = cache.write_entry("big", {"payload": payload, "n": len(payload), "i": i})
        assert ok
    """
)

READER = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from menda.core_auth import TokenCache

    cache = TokenCache(Path(sys.argv[1]))
    path = cache.path_for("big")
    seen = 0
    for _ in range(int(sys.argv[2])):
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue
        entry = json.loads(data)  # raises on a half-written file
        assert len(entry["payload"]) == entry["n"], "torn entry"
        assert len(set(entry["payload"][-2:])) <= 2
        seen += 1
        via_api = cache.read_entry("big")
        assert via_api is not None and len(via_api["payload"]) == via_api["n"]
    print(seen)
    """
)


# A CLI-login racer: lock .token.lock -> load again -> "refresh" when expired -> store.
LOGIN_RACER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from menda.core_auth import Login, TokenCache

    logins = TokenCache(Path(sys.argv[1])).logins
    go = Path(sys.argv[3])
    while not go.exists():
        time.sleep(0.002)
    with logins.lock(timeout=60) as held:
        login = logins.load("default")
        if login is None or not login.is_valid():
            time.sleep(0.05)  # the refresh request
            fresh = Login(
                access_token=f"access-{os.getpid()}",
                expires_in=3600,
                id_token=f"id-{os.getpid()}",
                refresh_token=f"refresh-{os.getpid()}",
                cached_at=time.time(),
            )
            assert logins.store("default", fresh)
            with open(sys.argv[2], "a") as log:
                log.write(f"{os.getpid()}\\n")
    print("held" if held else "not-held")
    """
)

LOGIN_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from menda.core_auth import Login, TokenCache

    logins = TokenCache(Path(sys.argv[1])).logins
    tag = sys.argv[2]
    for i in range(int(sys.argv[3])):
        token = (tag + str(i % 10)) * 5000
        with logins.lock(timeout=60):
            assert logins.store(tag, Login(token, 3600, id_token=token, cached_at=time.time()))
    """
)

LOGIN_READER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from menda.core_auth import TokenCache

    logins = TokenCache(Path(sys.argv[1])).logins
    for _ in range(int(sys.argv[2])):
        login = logins.load("default")
        assert login is not None and login.access_token == "cli-access-token", "torn file"
        for tag in ("a", "b"):
            other = logins.load(tag)
            if other is not None:
                assert len(other.access_token) == 10000, "torn login"
                assert other.id_token == other.access_token
    print("ok")
    """
)


def spawn(code: str, *args: object, stdin: int | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *map(str, args)],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def start_holder(directory: Path, key: str, *extra: object) -> subprocess.Popen[str]:
    child = spawn(HOLDER, directory, key, *extra, stdin=subprocess.PIPE)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "held"
    return child


def test_lock_is_held_and_released_in_one_process(tmp_path: Path) -> None:
    cache = TokenCache(tmp_path / "cache")
    with cache.lock("k") as held:
        assert held is True
    with cache.lock("k", timeout=0) as held_again:
        assert held_again is True


def test_lock_wait_is_bounded_when_another_holder_keeps_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = TokenCache(tmp_path / "cache")
    with cache.lock("k") as outer:
        assert outer is True
        # A second open file description conflicts with the first, even in-process.
        with (
            caplog.at_level(logging.DEBUG, logger="menda.core_auth"),
            cache.lock("k", timeout=0.2) as inner,
        ):
            assert inner is False
        assert "going on without the lock" in caplog.text


def test_different_keys_do_not_block_each_other(tmp_path: Path) -> None:
    cache = TokenCache(tmp_path / "cache")
    with cache.lock("a") as a, cache.lock("b", timeout=0) as b:
        assert a is True
        assert b is True


def test_lock_held_by_another_process_times_out_then_goes_on(tmp_path: Path) -> None:
    directory = tmp_path / "cache"
    holder = start_holder(directory, "ci.prod")
    try:
        with TokenCache(directory).lock("ci.prod", timeout=0.3) as held:
            assert held is False
    finally:
        holder.communicate("")
    assert holder.returncode == 0


def test_lock_held_by_another_process_delays_until_released(tmp_path: Path) -> None:
    directory = tmp_path / "cache"
    marker = tmp_path / "released"
    holder = start_holder(directory, "k", marker)
    try:
        assert holder.stdin is not None
        holder.stdin.close()  # the holder writes the marker, then releases
        with TokenCache(directory).lock("k", timeout=30) as held:
            assert held is True
            assert marker.read_text() == "released"
    finally:
        holder.wait()


@posix_only
def test_holder_killed_with_sigkill_releases_the_lock_at_once(tmp_path: Path) -> None:
    directory = tmp_path / "cache"
    holder = start_holder(directory, "k")
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert holder.returncode == -signal.SIGKILL
    # If the dead holder's lock were not released, this would give up and yield False.
    with TokenCache(directory).lock("k", timeout=30) as held:
        assert held is True


def test_racing_processes_with_a_cold_cache_make_exactly_one_write(tmp_path: Path) -> None:
    directory = tmp_path / "cache"
    writers = tmp_path / "writers.log"
    go = tmp_path / "go"
    racers = [spawn(RACER, directory, writers, go) for _ in range(8)]
    go.write_text("go")
    outputs = [racer.communicate(timeout=120) for racer in racers]
    for racer, (out, err) in zip(racers, outputs, strict=True):
        assert racer.returncode == 0, err
        assert out.strip() == "held"
    lines = writers.read_text().split()
    assert len(lines) == 1
    entry = TokenCache(directory).read_entry("ci.prod")
    assert entry is not None
    assert str(entry["writer"]) == lines[0]
    assert sorted(p.name for p in directory.iterdir()) == ["menda-keyring"]
    assert sorted(p.name for p in (directory / "menda-keyring").iterdir()) == [
        "ci%2Eprod.json",
        "ci%2Eprod.lock",
    ]


def test_readers_never_see_half_a_file_while_others_rewrite(tmp_path: Path) -> None:
    directory = tmp_path / "cache"
    cache = TokenCache(directory)
    assert cache.write_entry("big", {"payload": "", "n": 0, "i": -1})
    writers = [spawn(WRITER, directory, tag, 40) for tag in ("a", "b")]
    readers = [spawn(READER, directory, 150) for _ in range(3)]
    for proc in writers + readers:
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    entry = cache.read_entry("big")
    assert entry is not None
    assert len(entry["payload"]) == entry["n"]
    assert json.loads(cache.path_for("big").read_bytes())["i"] == 39
    assert sorted(p.name for p in cache.entries_dir.iterdir()) == ["big.json"]


def test_racing_processes_with_an_expired_login_make_exactly_one_refresh(
    tmp_path: Path, cli_factory: Callable[[Path], Any]
) -> None:
    directory = tmp_path / "cache"
    cli = cli_factory(directory)
    cli.write("default", cached_at=time.time() - 7200)
    cli.write("dev", access_token="dev-token", cached_at=time.time())
    dev_before = cli.sections()["dev"]
    refreshers = tmp_path / "refreshers.log"
    go = tmp_path / "go"
    racers = [spawn(LOGIN_RACER, directory, refreshers, go) for _ in range(8)]
    go.write_text("go")
    outputs = [racer.communicate(timeout=120) for racer in racers]
    for racer, (out, err) in zip(racers, outputs, strict=True):
        assert racer.returncode == 0, err
        assert out.strip() == "held"
    lines = refreshers.read_text().split()
    assert len(lines) == 1
    login = cli.read("default")
    assert login["access_token"] == f"access-{lines[0]}"
    assert not cli.is_expired(login, time.time())
    assert cli.sections()["dev"] == dev_before
    assert sorted(p.name for p in directory.iterdir()) == [".token", ".token.lock"]


def test_cli_file_readers_never_see_half_a_file_while_others_store(
    tmp_path: Path, cli_factory: Callable[[Path], Any]
) -> None:
    directory = tmp_path / "cache"
    cli_factory(directory).write("default", cached_at=time.time())
    writers = [spawn(LOGIN_WRITER, directory, tag, 30) for tag in ("a", "b")]
    readers = [spawn(LOGIN_READER, directory, 100) for _ in range(3)]
    for proc in writers + readers:
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    sections = cli_factory(directory).sections()
    assert sorted(sections) == ["a", "b", "default"]
    assert sections["a"]["access_token"] == "a9" * 5000
    assert sorted(p.name for p in directory.iterdir()) == [".token", ".token.lock"]
