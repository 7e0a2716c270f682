"""Secrets never leak: every error path, driven with recognisable secret values.

The values: the client secret ``SECRET-client-7f1e``; access, refresh and registry
tokens seeded into cache files (``sk-access-…``, ``sk-refresh-…``, ``sk-registry-…``);
and every token the emulator minted during the test. Each scenario runs through the
backend in-process (log records at DEBUG with tracebacks, stderr, stdout, the
exception's str/repr/traceback, reprs of every value object) and through the real
``keyring`` CLI with ``MENDA_LOG_LEVEL=debug``; the network failures also through
``menda-keyring diagnose --check`` (text and ``--json``).

The client secret and the refresh token travel in the query string, so no output may
hold a query string of ours either (``?grant_type=…``, ``client_secret=…``).

Failure paths (one scenario each): no config; six broken config files; a secret in
the host (env and file); a half-set environment; no login; refresh refused; refresh
5xx echoing the refresh token; wrong client secret; 403; 404; 400; 5xx storm; HTML;
malformed JSON; connection dropped; truncated body; no answer before the deadline
(``MENDA_TIMEOUT``); 401 twice; connection refused; TLS verification failure; proxy
refused; proxy answering 502 to CONNECT; secrets echoed in bodies (3) and in headers.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from menda.cloud_client import MendaCloudClient, RegistryRequest
from menda.core_auth import TokenCache, load_profile, resolve_identity
from menda.keyring import backend as backend_module
from menda.keyring.backend import MendaCodeArtifactKeyring
from menda.testing import (
    Delay,
    Drop,
    Malformed,
    MendaCloudEmulator,
    MendaHome,
    NonJSON,
    Status,
    Truncate,
    cached_secrets,
    console_script,
    format_rfc3339,
    unused_port,
    write_cache_entry,
    write_cached_login,
)

DOMAIN, OWNER, REGION = "menda-private", "058264169513", "eu-west-1"
INDEX = f"https://{DOMAIN}-{OWNER}.d.codeartifact.{REGION}.amazonaws.com/pypi/menda-plugins/simple/"
REGISTRY = RegistryRequest(DOMAIN, OWNER, REGION, "menda-plugins", "pypi")

CLIENT_ID = "leak-bot"
CLIENT_SECRET = "SECRET-client-7f1e"
SEEDED_ACCESS = "sk-access-3d9a71c0"
SEEDED_REFRESH = "sk-refresh-b04c2e55"
SEEDED_REGISTRY = "sk-registry-5a3f8812"
SEEDED = (CLIENT_SECRET, SEEDED_ACCESS, SEEDED_REFRESH, SEEDED_REGISTRY)
# A query string of ours: it would carry the client secret or the refresh token.
OUR_QUERY = re.compile(r"[?&](?:grant_type|client_id|client_secret|refresh_token|hostname)=")


@dataclass
class Ctx:
    home: MendaHome
    cloud: MendaCloudEmulator
    monkeypatch: pytest.MonkeyPatch
    request: pytest.FixtureRequest

    def env_trio(self, secret: str = CLIENT_SECRET, host: str | None = None) -> None:
        self.monkeypatch.setenv("MENDA_CLIENT_ID", CLIENT_ID)
        self.monkeypatch.setenv("MENDA_CLIENT_SECRET", secret)
        self.monkeypatch.setenv("MENDA_HOST", host or self.cloud.url)

    def config(self, text: bytes) -> None:
        self.home.config_path.parent.mkdir(parents=True, exist_ok=True)
        self.home.config_path.write_bytes(text)

    def u2m_profile(self) -> None:
        self.home.write_config({"default": {"host": self.cloud.url, "auth_type": "u2m"}})
        self.cloud.add_user("alice")

    def seed_login(self, *, expired: bool) -> None:
        now = datetime.now(timezone.utc)
        write_cached_login(
            self.home.cache_dir,
            "default",
            access_token=SEEDED_ACCESS,
            refresh_token=SEEDED_REFRESH,
            expires_in=3600,
            cached_at=(now - timedelta(hours=2 if expired else 0)).timestamp(),
        )

    def seed_m2m_access(self) -> None:
        write_cache_entry(
            self.home.cache_dir,
            f"m2m-env:{CLIENT_ID}",
            {
                "access_token": SEEDED_ACCESS,
                "token_type": "Bearer",
                "expires_at": format_rfc3339(datetime.now(timezone.utc) + timedelta(hours=1)),
                "host": self.cloud.url,
                "client_id": CLIENT_ID,
            },
        )

    def seed_stale_registry(self) -> None:
        identity = resolve_identity()
        write_cache_entry(
            self.home.cache_dir,
            identity.registry_key(DOMAIN, OWNER, REGION),
            {
                "token": SEEDED_REGISTRY,
                "expires_at": format_rfc3339(datetime.now(timezone.utc) + timedelta(minutes=3)),
                "host": identity.host,
                "identity": identity.cache_key,
                "domain": DOMAIN,
                "domain_owner": OWNER,
                "region": REGION,
            },
        )

    def register(self, **kwargs: Any) -> None:
        self.cloud.add_m2m_client(CLIENT_ID, CLIENT_SECRET, **kwargs)


M2M_CFG = f"[default]\nhost = {{url}}\nauth_type = m2m\nclient_id = {CLIENT_ID}\n"


def _cfg(ctx: Ctx, extra: str) -> None:
    ctx.config((M2M_CFG.format(url=ctx.cloud.url) + extra).encode())


@dataclass(frozen=True)
class Scenario:
    name: str
    setup: Callable[[Ctx], None]
    ok: bool = False  # the call succeeds (we check only logs and stderr then)
    cli: bool = True  # needs no in-process patch, so it runs through the CLI too
    diagnose: bool = False  # a network failure: also run `menda-keyring diagnose --check`
    local: bool = False  # a local problem: also run `menda-keyring diagnose` (no network)


def _tls(ctx: Ctx) -> None:
    host = ctx.request.getfixturevalue("tls_host")
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        ctx.monkeypatch.delenv(name, raising=False)
    ctx.env_trio(host=host)


def _refused(ctx: Ctx) -> None:
    ctx.env_trio(host=f"http://127.0.0.1:{unused_port()}")


def _proxy_refused(ctx: Ctx) -> None:
    # A remote host (never resolved: the proxy would be asked for it) through a dead proxy.
    ctx.monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{unused_port()}")
    ctx.env_trio(host="https://api.menda.invalid")


def _proxy_502(ctx: Ctx) -> None:
    proxy = ctx.request.getfixturevalue("refusing_proxy")
    ctx.monkeypatch.setenv("HTTPS_PROXY", proxy)
    ctx.env_trio(host="https://api.menda.invalid")


def _echo(endpoint: str, status: int, error: str, leaked: str) -> Callable[[Ctx], None]:
    body = json.dumps({"error": error, "error_description": f"you sent {leaked}, try again"})

    def setup(ctx: Ctx) -> None:
        ctx.register()
        ctx.env_trio()
        if leaked in (SEEDED_ACCESS,):
            ctx.seed_m2m_access()
        ctx.cloud.inject(endpoint, Status(status, body=body), times=3)

    return setup


def _echo_in_headers(ctx: Ctx) -> None:
    ctx.register()
    ctx.env_trio()
    ctx.seed_m2m_access()
    headers = {
        "WWW-Authenticate": f'Bearer error="{SEEDED_ACCESS}", error_description="{SEEDED_ACCESS}"',
        "X-Request-Id": f"{SEEDED_ACCESS}?client_secret={CLIENT_SECRET}",
        "Location": f"https://evil.example/{SEEDED_ACCESS}?t={SEEDED_ACCESS}",
    }
    ctx.cloud.inject("registry", Status(401, body="{}", headers=headers), times=2)


def _u2m_echo_refresh(ctx: Ctx) -> None:
    ctx.u2m_profile()
    ctx.seed_login(expired=True)
    body = json.dumps({"error": "server_error", "error_description": f"rt={SEEDED_REFRESH}"})
    ctx.cloud.inject("token", Status(500, body=body), times=3)


def _invalid_token_twice(ctx: Ctx) -> None:
    ctx.register()
    ctx.env_trio()
    ctx.seed_m2m_access()  # unknown to menda cloud: 401 invalid_token, then renewal
    ctx.cloud.inject("registry", Status(401, error="invalid_token"), times=2)


def _then(*steps: Callable[[Ctx], None]) -> Callable[[Ctx], None]:
    def setup(ctx: Ctx) -> None:
        for step in steps:
            step(ctx)

    return setup


def _fault(endpoint: str, fault: Any, times: int = 3) -> Callable[[Ctx], None]:
    return lambda ctx: ctx.cloud.inject(endpoint, fault, times=times)


def _m2m(ctx: Ctx) -> None:
    ctx.register()
    ctx.env_trio()
    ctx.seed_stale_registry()


def _deadline_of_one_second(ctx: Ctx) -> None:
    ctx.monkeypatch.setenv("MENDA_TIMEOUT", "1")


def _seed_real_login(ctx: Ctx) -> None:
    """An expired login whose refresh token the emulator knows: the refresh succeeds."""
    login = ctx.cloud.login("alice")
    write_cached_login(
        ctx.home.cache_dir,
        "default",
        id_token=login.id_token,
        access_token=login.access_token,
        refresh_token=login.refresh_token,
        expires_in=3600,
        cached_at=(datetime.now(timezone.utc) - timedelta(hours=2)).timestamp(),
    )


SCENARIOS = [
    Scenario("success", _m2m, ok=True, local=True),
    Scenario("success-u2m-refresh", _then(Ctx.u2m_profile, _seed_real_login), ok=True),
    Scenario("no-config", lambda c: None),
    Scenario(
        "config-missing-equals", lambda c: _cfg(c, f"client_secret {CLIENT_SECRET}\n"), local=True
    ),
    Scenario(
        "config-duplicate-secret",
        lambda c: _cfg(c, f"client_secret = {CLIENT_SECRET}\nclient_secret = {CLIENT_SECRET}\n"),
    ),
    Scenario(
        "config-no-client-id",
        lambda c: c.config(
            f"[default]\nhost = {c.cloud.url}\nauth_type = m2m\n"
            f"client_secret = {CLIENT_SECRET}\n".encode()
        ),
    ),
    Scenario(
        "config-secret-in-host",
        lambda c: c.config(
            f"[default]\nhost = https://bot:{CLIENT_SECRET}@api.example.menda.cloud/?k={SEEDED_ACCESS}\n".encode()
        ),
        local=True,
    ),
    Scenario(
        "config-non-utf8",
        lambda c: c.config(
            M2M_CFG.format(url=c.cloud.url).encode()
            + f"client_secret = {CLIENT_SECRET}".encode()
            + b"\xff\n"
        ),
    ),
    Scenario(
        "config-bad-auth-type",
        lambda c: c.config(
            f"[default]\nhost = {c.cloud.url}\nauth_type = sso\n"
            f"client_secret = {CLIENT_SECRET}\n".encode()
        ),
    ),
    Scenario(
        "env-secret-in-host",
        lambda c: c.env_trio(host=f"https://bot:{CLIENT_SECRET}@api.example.menda.cloud"),
        local=True,
    ),
    Scenario(
        "env-partial-trio", lambda c: c.monkeypatch.setenv("MENDA_CLIENT_SECRET", CLIENT_SECRET)
    ),
    Scenario("u2m-no-login", lambda c: c.u2m_profile()),
    Scenario(
        "u2m-invalid-grant",
        _then(Ctx.u2m_profile, lambda c: c.seed_login(expired=True)),
        local=True,
    ),
    Scenario("u2m-refresh-5xx-echoing-the-refresh-token", _u2m_echo_refresh, diagnose=True),
    Scenario(
        "m2m-wrong-secret",
        _then(
            lambda c: c.cloud.add_m2m_client(CLIENT_ID, "another"),
            Ctx.env_trio,
            Ctx.seed_stale_registry,
        ),
    ),
    Scenario("m2m-403", _then(lambda c: c.register(domains=["other"]), Ctx.env_trio)),
    Scenario(
        "m2m-404",
        _then(Ctx.register, Ctx.env_trio, lambda c: c.cloud.add_registry("x", OWNER, REGION)),
    ),
    Scenario("m2m-400", _then(_m2m, _fault("registry", Status(400), 1))),
    Scenario("m2m-5xx-storm", _then(_m2m, _fault("registry", Status(503)))),
    Scenario("m2m-html", _then(_m2m, _fault("token", NonJSON()))),
    Scenario(
        "m2m-malformed",
        _then(_m2m, _fault("registry", Malformed({"token": 7, "x": SEEDED_REGISTRY}), 1)),
    ),
    Scenario("m2m-drop", _then(_m2m, _fault("registry", Drop()))),
    Scenario("m2m-truncate", _then(_m2m, _fault("token", Truncate()))),
    Scenario(
        "m2m-deadline",
        _then(_m2m, _fault("token", Delay(3.0)), _deadline_of_one_second),
        diagnose=True,
    ),
    Scenario("m2m-invalid-token-twice", _invalid_token_twice),
    Scenario("connection-refused", _refused, diagnose=True),
    Scenario("tls", _tls, diagnose=True),
    Scenario("proxy-refused", _proxy_refused, diagnose=True),
    Scenario("proxy-502", _proxy_502, diagnose=True),
    Scenario(
        "echo-client-secret",
        _echo("token", 401, "invalid_client", CLIENT_SECRET),
        diagnose=True,
    ),
    Scenario("echo-access-token", _echo("registry", 403, "access_denied", SEEDED_ACCESS)),
    Scenario("echo-secret-in-5xx", _echo("token", 502, "bad_gateway", CLIENT_SECRET)),
    Scenario("echo-in-headers", _echo_in_headers, diagnose=True),
]


@pytest.fixture
def refusing_proxy() -> Iterator[str]:
    """A proxy that answers every CONNECT with 502."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    listener.settimeout(0.1)

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                try:
                    conn.recv(65536)
                    conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        listener.close()
        thread.join(5)


def known_secrets(cloud: MendaCloudEmulator, cache_dir: Path) -> set[str]:
    """The seeded values, every token the emulator minted, and every token in the cache."""
    found = set(SEEDED)
    found.update(t.token for t in cloud.minted_registry_tokens)
    # Private to the emulator, read here only to learn what to look for.
    found.update(getattr(cloud, "_access", {}))
    found.update(getattr(cloud, "_refresh", {}))
    found.update(cached_secrets(cache_dir))
    return {s for s in found if len(s) >= 8}


def assert_no_secret(texts: Iterable[str], secrets: set[str], where: str) -> None:
    blob = "\n".join(texts)
    leaked = sorted(s for s in secrets if s in blob)
    assert not leaked, f"{where}: leaked {leaked} in:\n{blob}"
    queries = sorted(set(OUR_QUERY.findall(blob)))
    assert not queries, f"{where}: a query string of ours ({queries}) in:\n{blob}"


def _reprs(cache_dir: Path) -> list[str]:
    """Reprs of every value object the scenario's state can produce."""
    out: list[str] = []
    cache = TokenCache(cache_dir)
    out.append(repr(cache))
    try:
        identity = resolve_identity()
    except Exception as exc:
        out += [str(exc), repr(exc)]
        return out
    out.append(repr(identity))
    if identity.config_path is not None:
        try:
            out.append(repr(load_profile(path=identity.config_path)))
        except Exception as exc:
            out.append(repr(exc))
    client = MendaCloudClient(identity, cache=cache)
    out.append(repr(client))
    out.append(
        repr(
            cache.load_access_token(
                identity.cache_key, host=identity.host, client_id=identity.client_id or ""
            )
        )
    )
    registry = cache.load_registry_token(
        identity.registry_key(DOMAIN, OWNER, REGION),
        host=identity.host,
        identity=identity.cache_key,
        registry=(DOMAIN, OWNER, REGION),
    )
    out.append(repr(registry))
    out.append(repr(cache.logins.load(identity.profile or "default")))
    return out


@pytest.fixture
def ctx(
    menda_home: MendaHome,
    menda_cloud: MendaCloudEmulator,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    waits: list[float],  # back-off waits are recorded, not slept
) -> Ctx:
    # Each line is printed once per process: start every scenario afresh.
    monkeypatch.setattr(backend_module, "_said", set())
    return Ctx(menda_home, menda_cloud, monkeypatch, request)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_no_secret_reaches_logs_stderr_exceptions_or_reprs_in_process(
    ctx: Ctx,
    scenario: Scenario,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    scenario.setup(ctx)
    raised: list[BaseException] = []
    report = backend_module._report

    def keep(exc: Exception) -> None:
        raised.append(exc)
        report(exc)

    ctx.monkeypatch.setattr(backend_module, "_report", keep)
    caplog.set_level(logging.DEBUG)
    token = MendaCodeArtifactKeyring().get_password(INDEX, "aws")  # type: ignore[no-untyped-call]
    out, err = capsys.readouterr()

    texts = [caplog.text, err, *(r.getMessage() for r in caplog.records)]
    for exc in raised:
        texts += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
        cause = exc.__cause__ or exc.__context__
        while cause is not None:
            texts += [str(cause), repr(cause)]
            cause = cause.__cause__ or cause.__context__
    texts += _reprs(ctx.home.cache_dir)
    secrets = known_secrets(ctx.cloud, ctx.home.cache_dir)
    if scenario.ok:
        assert token is not None
        assert out == ""
        secrets.discard(token)
        assert token not in "\n".join(texts)
    else:
        assert token is None
        assert out == ""
        assert raised, "the failure was not reported"
        assert err.splitlines()[-1].endswith(f"[{type(raised[-1]).__name__}]")
        texts.append(out)
    assert caplog.records  # debug lines are there...
    assert_no_secret(texts, secrets, scenario.name)  # ...without a secret


def _isolated(monkeypatch: pytest.MonkeyPatch, home: MendaHome) -> None:
    """What the menda_home fixture does to the environment, for another home."""
    home.home.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home.home))
    monkeypatch.setenv("USERPROFILE", str(home.home))


def test_no_secret_reaches_the_keyring_cli_or_diagnose_check_at_debug_level(
    menda_home: MendaHome, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Every scenario through a real `keyring get`, the network failures through
    `menda-keyring diagnose --check` and some local ones through `menda-keyring
    diagnose` (text and --json each), all at debug level.

    The processes run at once (each scenario with its own home and emulator), so the
    whole set costs a few seconds rather than a minute.
    """
    runs: list[tuple[Scenario, str, Ctx, subprocess.Popen[str]]] = []
    clouds: list[MendaCloudEmulator] = []
    try:
        for scenario in (s for s in SCENARIOS if s.cli):
            commands = {"keyring get": [console_script("keyring"), "get", INDEX, "aws"]}
            diagnose = [console_script("menda-keyring"), "diagnose"]
            if scenario.diagnose:
                commands["diagnose --check"] = [*diagnose, "--check", INDEX]
                commands["diagnose --check --json"] = [*diagnose, "--check", "--json", INDEX]
            if scenario.local:
                commands["diagnose"] = [*diagnose, INDEX]
                commands["diagnose --json"] = [*diagnose, "--json", INDEX]
            # A home and an emulator per command: they run at once, and must not take
            # each other's injected faults.
            for number, (what, argv) in enumerate(commands.items()):
                cloud = MendaCloudEmulator().start()
                clouds.append(cloud)
                home = MendaHome(tmp_path / f"{scenario.name}-{number}" / "home")
                with pytest.MonkeyPatch.context() as monkeypatch:
                    _isolated(monkeypatch, home)
                    scenario_ctx = Ctx(home, cloud, monkeypatch, request)
                    scenario.setup(scenario_ctx)
                    env = home.env(MENDA_LOG_LEVEL="debug")
                proc = subprocess.Popen(
                    argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
                )
                runs.append((scenario, what, scenario_ctx, proc))

        problems: list[str] = []
        for scenario, what, scenario_ctx, proc in runs:
            out, err = proc.communicate(timeout=120)
            where = f"{scenario.name}, {what}"
            secrets = known_secrets(scenario_ctx.cloud, scenario_ctx.home.cache_dir)
            if what == "keyring get":
                if "menda-keyring:" not in err:
                    problems.append(f"{where}: no debug output")
                if scenario.ok:
                    token = out.strip()
                    if proc.returncode != 0 or token not in secrets or token in err:
                        problems.append(f"{where}: exit {proc.returncode}\n{err}")
                    secrets.discard(token)
                elif proc.returncode != 1 or out:
                    problems.append(f"{where}: exit {proc.returncode}, stdout {out!r}")
            else:
                # Without --check, what fails only at menda cloud is not seen: 0 or 1.
                expected = {1} if "--check" in what else {0, 1}
                if proc.returncode not in expected:
                    problems.append(f"{where}: exit {proc.returncode}\n{out}{err}")
                if what.endswith("--json"):
                    json.loads(out)
            try:
                assert_no_secret([out, err], secrets, where)
            except AssertionError as exc:
                problems.append(str(exc))
        assert problems == []
    finally:
        for *_, proc in runs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        for cloud in clouds:
            cloud.stop()


_TOKEN_SHAPES = re.compile(r"\b(?:mat|mrt|caat|mcs)_[A-Za-z0-9_\-]{6,}")


def test_the_demo_prints_no_secret() -> None:
    demo = Path(sys.executable).with_name("menda-demo")
    try:
        from menda.testing import demo as demo_module
    except ImportError:
        pytest.skip("menda.testing.demo is not there yet")
    if not demo.exists():
        pytest.skip("the menda-demo script is not installed")
    result = subprocess.run([str(demo)], capture_output=True, text=True, timeout=300, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert demo_module.CLIENT_SECRET not in output
    # Every emulator token has a recognisable prefix; only masked ones may appear.
    assert _TOKEN_SHAPES.findall(output) == []
