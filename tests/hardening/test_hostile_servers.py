"""Hostile servers on loopback against the real `keyring get` (issue 11, rows 1-5, 7-9, 12).

Each server is a raw socket server (conftest ``hostile``) that misbehaves as the
row says. The deadline is ``MENDA_TIMEOUT=3`` so the tests stay fast; wall-clock
limits are asserted only where the issue asks for them (deadline + 5 s).

Row by row:

- 1, a server answering one byte a second:
  ``test_an_answer_trickling_one_byte_a_second_ends_at_the_deadline``;
- 2, eight processes against a server that never answers:
  ``test_a_herd_of_8_against_a_server_that_never_answers`` (and, for lock waits,
  ``test_a_lock_held_by_another_process_counts_against_the_deadline``);
- 3, a 400 MB body and a 2 MB gzip body inflating to 2 GiB:
  ``test_huge_or_inflating_bodies_are_cut_at_1_mib_in_little_memory``;
- 4, an access token with a line break, an escape or non-ASCII:
  ``test_an_access_token_a_header_cannot_carry_is_refused_and_never_cached``,
  ``test_a_cached_token_that_fails_on_the_client_side_is_dropped``;
- 5, a 401 (or 302) echoing the secret in its headers:
  ``test_secrets_echoed_in_headers_are_masked_in_keyring_and_diagnose``;
- 7, proxy variables with a loopback host:
  ``test_a_loopback_host_is_never_reached_through_a_proxy``;
- 8, an ``http://`` index URL: ``test_a_plain_http_index_url_gets_no_token``;
- 9, a registry token with a line break, ESC, NUL, or two spaces:
  ``test_a_registry_token_that_is_not_visible_ascii_is_refused``,
  ``test_a_cached_registry_token_that_is_not_visible_ascii_is_dropped``;
- 12, C1 controls and bidi overrides in the server's text:
  ``test_control_and_bidi_characters_from_servers_are_escaped``.
"""

from __future__ import annotations

import gzip
import json
import time
from typing import Any

import pytest

from menda.core_auth import TokenCache, resolve_identity
from menda.testing import MendaCloudEmulator, MendaHome

DEADLINE = 3
# The bound on every process of a herd: the deadline plus 5 s.
HERD_BOUND = DEADLINE + 5
MAX_RSS_KIB = 100 * 1024
UNSAFE = {"\x00", "\x1b", "\x9b", "\u202e", "\u2066", "\u200f"}


def _own_entries(home: MendaHome) -> list[str]:
    directory = home.own_cache_dir
    return sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []


def _tokens_cached(home: MendaHome) -> list[str]:
    return [n for n in _own_entries(home) if n.endswith(".json") and not n.startswith("failed-")]


# ----------------------------------------------------------------------- row 1: one byte a second


def test_an_answer_trickling_one_byte_a_second_ends_at_the_deadline(
    kit: Any, hostile: Any, menda_home: MendaHome, keyring_cli: Any
) -> None:
    """Two servers at once: one trickles from the status line on, one only the body."""
    body = json.dumps({"access_token": kit.HOSTILE_ACCESS, "expires_in": 3600}).encode()

    def trickling(phase: str) -> Any:
        def token(conn: Any, request: Any) -> None:
            head = conn.head(200, {"Content-Type": "application/json", "Content-Length": len(body)})
            if phase == "body-only":
                conn.send(head)
                conn.trickle(body)
            else:
                conn.trickle(head + body)

        return token

    runs = {}
    for phase in ("status-line-onwards", "body-only"):
        server = hostile(kit.cloud(token=trickling(phase)))
        # A cache each: they share an access-token key, and so its lock.
        cache_dir = str(menda_home.home / f"cache-{phase}")
        env = kit.m2m_env_for(
            menda_home, server.url, MENDA_TIMEOUT=str(DEADLINE), MENDA_TOKEN_CACHE_DIR=cache_dir
        )
        runs[phase] = (
            server,
            time.monotonic(),
            keyring_cli.spawn("get", kit.INDEX, "aws", env=env),
        )

    for phase, (server, started, proc) in runs.items():
        out, err = proc.communicate(timeout=60)
        seconds = time.monotonic() - started
        assert proc.returncode == 1, phase
        assert out == ""
        (line,) = err.splitlines()
        assert f"within the {DEADLINE} s deadline (MENDA_TIMEOUT sets it)" in line
        # Before: 100 s (a 15 s timeout per read, the deadline checked between attempts).
        assert seconds < HERD_BOUND, phase
        assert server.count("token") == 1
    assert list(menda_home.home.glob("cache-*/menda-keyring/[mr]*.json")) == []


def test_the_deadline_is_30_s_unless_menda_timeout_says_otherwise() -> None:
    from menda.cloud_client._client import deadline_from_env

    assert deadline_from_env({}) == 30.0
    assert deadline_from_env({"MENDA_TIMEOUT": "3"}) == 3.0
    for nonsense in ("", "0", "-5", "soon", "nan", "inf", "100000"):
        assert deadline_from_env({"MENDA_TIMEOUT": nonsense}) == 30.0


# ----------------------------------------------------------------------- row 2: the herd


@pytest.mark.slow
def test_a_herd_of_8_against_a_server_that_never_answers(
    kit: Any, hostile: Any, menda_home: MendaHome, keyring_cli: Any
) -> None:
    server = hostile(kit.cloud(token=lambda conn, request: conn.hang()))
    env = kit.m2m_env_for(menda_home, server.url, MENDA_TIMEOUT=str(DEADLINE))

    started = time.monotonic()
    herd = [keyring_cli.spawn("get", kit.INDEX, "aws", env=env) for _ in range(8)]
    finished: list[tuple[int, str, str, float]] = []
    for proc in herd:
        out, err = proc.communicate(timeout=60)
        finished.append((proc.returncode, out, err, time.monotonic() - started))

    # Every process is over within deadline + 5 s of its start (all started together):
    # before, lock waits of 30 s each came on top (30, 60 and 91 s).
    assert [seconds < HERD_BOUND for *_, seconds in finished] == [True] * 8
    # One token request in all (before: 16), and none after it timed out.
    assert server.count() == 1
    holder_line = (
        f"menda-keyring: POST /api/v1/auth/oauth2/token at {server.url} failed: no complete "
        f"answer within the {DEADLINE} s deadline (MENDA_TIMEOUT sets it)."
    )
    lines = []
    for code, out, err, _ in finished:
        assert code == 1
        assert out == ""
        (line,) = err.splitlines()
        lines.append(line)
    assert any(line.startswith(holder_line) for line in lines)
    # A waiter whose own deadline passed before the holder gave up says so; the others
    # were told the holder's failure (remembered in the cache directory) at once.
    for line in lines:
        assert line.startswith(holder_line) or "another process was asking" in line, line

    # uv's next call, in the next 30 s, costs nothing and prints the same line.
    again = keyring_cli.measured("get", kit.ENDPOINT, "aws", env=env)
    assert again.returncode == 1
    assert again.lines[0].startswith(holder_line)
    assert server.count() == 1


def test_a_lock_held_by_another_process_counts_against_the_deadline(
    kit: Any, menda_cloud: MendaCloudEmulator, menda_home: MendaHome, keyring_cli: Any
) -> None:
    menda_cloud.add_m2m_client(kit.CLIENT_ID, kit.CLIENT_SECRET)
    env = kit.m2m_env_for(menda_home, menda_cloud.url, MENDA_TIMEOUT="2")
    identity = resolve_identity(env)
    key = identity.registry_key(kit.DOMAIN, kit.OWNER, kit.REGION)
    with TokenCache(menda_home.cache_dir).lock(key, timeout=0) as held:
        assert held
        result = keyring_cli.measured("get", kit.INDEX, "aws", env=env)
    assert result.returncode == 1
    (line,) = result.lines
    assert "Gave up after the 2 s deadline (MENDA_TIMEOUT sets it)" in line
    assert "another process was asking" in line
    assert result.seconds < 2 + 5
    assert menda_cloud.requests == []


# ----------------------------------------------------------------------- row 3: huge bodies

# One gzip member of 64 MiB of spaces (about 64 KiB); 32 of them inflate to 2 GiB.
_MEMBER_SIZE = 64 << 20


@pytest.fixture(scope="module")
def gzip_member() -> bytes:
    return gzip.compress(b" " * _MEMBER_SIZE, compresslevel=9)


def _stream(conn: Any, head: bytes, first: bytes, filler: bytes, total: int) -> None:
    conn.send(head + first)
    sent = len(first)
    while sent < total:
        conn.send(filler)  # raises once the client hangs up: that ends the handler
        sent += len(filler)


@pytest.mark.parametrize("shape", ["400-MB-no-length", "400-MB-declared", "gzip-bomb-2-GiB"])
def test_huge_or_inflating_bodies_are_cut_at_1_mib_in_little_memory(
    *,
    kit: Any,
    hostile: Any,
    menda_home: MendaHome,
    keyring_cli: Any,
    gzip_member: bytes,
    shape: str,
) -> None:
    total = 400 << 20
    # A valid answer at the start: before, it was accepted once all 400 MB were in memory.
    first = json.dumps({"access_token": kit.HOSTILE_ACCESS, "expires_in": 3600})[:-1].encode()
    first += b', "pad": "'

    def token(conn: Any, request: Any) -> None:
        if shape == "gzip-bomb-2-GiB":
            headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
            bomb = gzip_member * 32
            headers["Content-Length"] = str(len(bomb))
            conn.send(conn.head(200, headers) + bomb)
            return
        headers = {"Content-Type": "application/json"}
        if shape == "400-MB-declared":
            headers["Content-Length"] = str(total)
        _stream(conn, conn.head(200, headers), first, b"a" * (1 << 20), total)

    server = hostile(kit.cloud(token=token))
    env = kit.m2m_env_for(menda_home, server.url, MENDA_TIMEOUT="20")
    result = keyring_cli.measured("get", kit.INDEX, "aws", env=env)

    assert result.returncode == 1
    (line,) = result.lines
    assert "malformed response (HTTP 200): the body is larger than 1 MiB" in line
    # Before: 1.2 GB and 6.4 GB.
    assert result.maxrss_kib is not None
    print(f"peak RSS {result.maxrss_kib / 1024:.0f} MiB")
    assert result.maxrss_kib < MAX_RSS_KIB, f"{result.maxrss_kib / 1024:.0f} MiB"
    assert server.count("registry") == 0
    assert _tokens_cached(menda_home) == []


# ----------------------------------------------------------------------- row 4: bad access tokens


@pytest.mark.parametrize(
    "access_token",
    ["HOSTILE-access\nX-Injected: 1", "HOSTILE-accéss-token", "HOSTILE-access\x1b[2J"],
    ids=["line-break", "non-ascii", "escape"],
)
def test_an_access_token_a_header_cannot_carry_is_refused_and_never_cached(
    kit: Any, hostile: Any, menda_home: MendaHome, keyring_cli: Any, access_token: str
) -> None:
    def token(conn: Any, request: Any) -> None:
        conn.answer(200, {"access_token": access_token, "expires_in": 3600})

    server = hostile(kit.cloud(token=token))
    result = keyring_cli("get", kit.INDEX, "aws", env=kit.m2m_env_for(menda_home, server.url))

    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert "malformed response (HTTP 200): 'access_token' holds characters a token cannot have" in (
        line
    )
    assert "Unexpected error" not in line
    assert "HOSTILE-acc" not in result.stderr
    assert server.count("registry") == 0
    assert _tokens_cached(menda_home) == []


def test_a_cached_token_that_fails_on_the_client_side_is_dropped(
    kit: Any, hostile: Any, menda_home: MendaHome, keyring_cli: Any
) -> None:
    server = hostile(kit.cloud())
    env = kit.m2m_env_for(menda_home, server.url)
    identity = resolve_identity(env)
    planted = menda_home.write_cache_entry(
        identity.cache_key,
        {
            "access_token": "PLANTED-access\r\nX-Injected: 1",
            "token_type": "Bearer",
            "expires_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600)),
            "host": server.url,
            "client_id": kit.CLIENT_ID,
        },
    )
    result = keyring_cli("get", kit.INDEX, "aws", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == kit.HOSTILE_REGISTRY
    # The entry was dropped and a good token fetched in its place.
    assert server.count("token") == 1
    assert json.loads(planted.read_text())["access_token"] == kit.HOSTILE_ACCESS
    assert "PLANTED" not in result.stderr


# ----------------------------------------------------------------------- row 5: echoing headers


def _echo_everything(status: int) -> Any:
    """Answer ``status``, echoing every secret the request carried in headers a client
    might quote: WWW-Authenticate (error code and description), X-Request-Id, Location."""

    def handler(conn: Any, request: Any) -> None:
        sent = [v for values in request.query.values() for v in values]
        bearer = request.headers.get("authorizationtoken", "").partition(" ")[2]
        secret = bearer or next(v for v in sent if v.startswith("SECRET"))
        conn.answer(
            status,
            {"detail": "denied"},
            {
                "WWW-Authenticate": f'Bearer error="{secret}", error_description="{secret}"',
                "X-Request-Id": secret,
                "Location": f"https://evil.example/{secret}/?q={secret}",
                "Content-Type": f"application/{secret}",
            },
        )

    return handler


@pytest.mark.parametrize("where", ["token-401", "registry-401", "registry-302"])
def test_secrets_echoed_in_headers_are_masked_in_keyring_and_diagnose(
    kit: Any, hostile: Any, menda_home: MendaHome, keyring_cli: Any, where: str
) -> None:
    endpoint, status = where.split("-")
    handler = _echo_everything(int(status))
    server = hostile(kit.cloud(**{endpoint: handler}))
    env = kit.m2m_env_for(menda_home, server.url, MENDA_LOG_LEVEL="debug")

    procs = {
        "keyring get": keyring_cli.spawn("get", kit.INDEX, "aws", env=env),
        "diagnose --check": keyring_cli.spawn(
            "diagnose", "--check", kit.INDEX, env=env, program=keyring_cli.diagnose_path
        ),
        "diagnose --check --json": keyring_cli.spawn(
            "diagnose", "--check", "--json", kit.INDEX, env=env, program=keyring_cli.diagnose_path
        ),
    }
    secrets = kit.Secrets()
    for what, proc in procs.items():
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 1, (what, out, err)
        assert secrets.leaked_in(out, err) == [], (what, out + err)
        if what == "keyring get":
            assert f"HTTP {status}" in err
            assert "***" in err  # what was echoed is there, masked
    assert server.count(endpoint) >= 1


# ----------------------------------------------------------------------- row 7: proxies


def test_a_loopback_host_is_never_reached_through_a_proxy(
    kit: Any, hostile: Any, menda_cloud: MendaCloudEmulator, menda_home: MendaHome, keyring_cli: Any
) -> None:
    proxy = hostile(lambda conn, request: conn.answer(502, b"", {"Content-Type": "text/plain"}))
    menda_cloud.add_m2m_client(kit.CLIENT_ID, kit.CLIENT_SECRET)
    names = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
    env = kit.m2m_env_for(menda_home, menda_cloud.url, **dict.fromkeys(names, proxy.url))

    result = keyring_cli("get", kit.INDEX, "aws", env=env)

    assert result.returncode == 0, result.stderr
    assert menda_cloud.validate_registry_token(
        result.stdout.strip(), domain=kit.DOMAIN, owner=kit.OWNER, region=kit.REGION
    )
    # Before: the client secret and the bearer token went to the proxy in clear text.
    assert proxy.connections == 0
    assert menda_cloud.count("token") == 1


# ----------------------------------------------------------------------- row 8: http:// index


@pytest.mark.parametrize("mode", [[], ["--mode", "creds"]], ids=["password", "creds"])
def test_a_plain_http_index_url_gets_no_token(
    kit: Any,
    m2m_env: dict[str, str],
    menda_cloud: MendaCloudEmulator,
    keyring_cli: Any,
    mode: list[str],
) -> None:
    env = {**m2m_env, "MENDA_LOG_LEVEL": "debug"}
    url = f"http://{kit.ENDPOINT}/pypi/{kit.REPOSITORY}/simple/"
    result = keyring_cli(*mode, "get", url, *([] if mode else ["aws"]), env=env)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "the service URL is plain http, not https" in result.stderr
    assert menda_cloud.requests == []


# ----------------------------------------------------------------------- row 9: registry tokens


@pytest.mark.parametrize(
    "value",
    ["HOSTILE\nregistry", "HOSTILE\x1b[31mregistry", "HOSTILE\x00registry", "  "],
    ids=["line-break", "escape", "nul", "two-spaces"],
)
def test_a_registry_token_that_is_not_visible_ascii_is_refused(
    kit: Any, hostile: Any, menda_home: MendaHome, keyring_cli: Any, value: str
) -> None:
    def registry(conn: Any, request: Any) -> None:
        conn.answer(200, {"token": value, "expires_in": 43200})

    server = hostile(kit.cloud(registry=registry))
    env = kit.m2m_env_for(menda_home, server.url)
    # --mode creds prints "username\npassword": a line break would have made it three lines.
    result = keyring_cli("--mode", "creds", "get", kit.INDEX, env=env)

    assert result.returncode == 1
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert "malformed response (HTTP 200): 'token'" in line
    assert "HOSTILE" not in result.stderr
    # Before: cached for 12 h. Only the access token is.
    assert [n for n in _tokens_cached(menda_home) if n.startswith("registry-")] == []


def test_a_cached_registry_token_that_is_not_visible_ascii_is_dropped(
    kit: Any, hostile: Any, menda_home: MendaHome, keyring_cli: Any
) -> None:
    server = hostile(kit.cloud())
    env = kit.m2m_env_for(menda_home, server.url)
    identity = resolve_identity(env)
    planted = menda_home.write_cache_entry(
        identity.registry_key(kit.DOMAIN, kit.OWNER, kit.REGION),
        {
            "token": "PLANTED\nregistry",
            "expires_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 7200)),
            "host": server.url,
            "identity": identity.cache_key,
            "domain": kit.DOMAIN,
            "domain_owner": kit.OWNER,
            "region": kit.REGION,
        },
    )
    result = keyring_cli("get", kit.INDEX, "aws", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == kit.HOSTILE_REGISTRY + "\n"
    assert server.count("registry") == 1
    assert json.loads(planted.read_text())["token"] == kit.HOSTILE_REGISTRY


# ----------------------------------------------------------------------- row 12: terminal control


def test_control_and_bidi_characters_from_servers_are_escaped(
    kit: Any, hostile: Any, menda_home: MendaHome, keyring_cli: Any
) -> None:
    detail = "denied \x9b31m\x1b[2J \u202eevil\u202c \u2066x\u2069 \u200fy \x00z"

    def registry(conn: Any, request: Any) -> None:
        # Header bytes are read as Latin-1: 0x9b arrives as U+009B, a C1 control.
        conn.answer(403, {"detail": detail}, {"X-Request-Id": "req\x9b\x85id"})

    server = hostile(kit.cloud(registry=registry))
    env = kit.m2m_env_for(menda_home, server.url)
    result = keyring_cli("get", kit.INDEX, "aws", env=env)
    check = keyring_cli.measured(
        "diagnose", "--check", kit.INDEX, env=env, program=keyring_cli.diagnose_path
    )

    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert not UNSAFE & set(line)
    assert "\\x9b31m\\x1b[2J \\u202eevil\\u202c \\u2066x\\u2069 \\u200fy \\x00z" in line
    assert "(request id req\\x9b\\x85id)" in line
    assert not UNSAFE & set(check.stdout + check.stderr)
    assert "\\u202eevil" in check.stdout
