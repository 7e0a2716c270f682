"""Secrets never leak: every error path, driven with recognisable secret values.

The values: the client secret ``SECRET-client-7f1e``; access, refresh and registry
tokens seeded into cache files (``sk-access-…``, ``sk-refresh-…``, ``sk-registry-…``);
and every token the emulator minted during the test. Each scenario runs through the
backend in-process (log records at DEBUG with tracebacks, stderr, stdout, the
exception's str/repr/traceback, reprs of every value object) and, where it needs no
in-process patch, through the real ``keyring`` CLI with ``MENDA_LOG_LEVEL=debug``.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from menda.cloud_client import MendaCloudClient, RegistryRequest
from menda.core_auth import (
    Identity,
    TokenCache,
    load_profile,
    registry_cache_key,
    resolve_identity,
)
from menda.keyring import backend as backend_module
from menda.keyring.backend import MendaCodeArtifactKeyring
from menda.testing._faults import Delay, Drop, Malformed, NonJSON, Status, Truncate
from menda.testing.emulator import MendaCloudEmulator
from menda.testing.files import cached_secrets, write_cache_entry, write_cached_login
from menda.testing.pytest_plugin import MendaHome

DOMAIN, OWNER, REGION = "menda-private", "058264169513", "eu-west-1"
INDEX = f"https://{DOMAIN}-{OWNER}.d.codeartifact.{REGION}.amazonaws.com/pypi/menda-plugins/simple/"
REGISTRY = RegistryRequest(DOMAIN, OWNER, REGION, "menda-plugins", "pypi")

CLIENT_ID = "leak-bot"
CLIENT_SECRET = "SECRET-client-7f1e"
SEEDED_ACCESS = "sk-access-3d9a71c0"
SEEDED_REFRESH = "sk-refresh-b04c2e55"
SEEDED_REGISTRY = "sk-registry-5a3f8812"
SEEDED = (CLIENT_SECRET, SEEDED_ACCESS, SEEDED_REFRESH, SEEDED_REGISTRY)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


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
            host=self.cloud.url,
            access_token=SEEDED_ACCESS,
            refresh_token=SEEDED_REFRESH,
            expires_at=now + (timedelta(hours=-1) if expired else timedelta(hours=1)),
        )

    def seed_m2m_access(self) -> None:
        write_cache_entry(
            self.home.cache_dir,
            CLIENT_ID,
            {
                "access_token": SEEDED_ACCESS,
                "token_type": "Bearer",
                "expires_at": _rfc3339(datetime.now(timezone.utc) + timedelta(hours=1)),
                "host": self.cloud.url,
                "auth_type": "m2m",
                "client_id": CLIENT_ID,
            },
        )

    def seed_stale_registry(self, identity_key: str = CLIENT_ID) -> None:
        write_cache_entry(
            self.home.cache_dir,
            registry_cache_key(identity_key, self.cloud.url, DOMAIN, OWNER, REGION),
            {
                "token": SEEDED_REGISTRY,
                "expires_at": _rfc3339(datetime.now(timezone.utc) + timedelta(minutes=3)),
                "host": self.cloud.url,
                "identity": identity_key,
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


def _short_timeouts(ctx: Ctx) -> None:
    """The backend builds its own client: give it short timeouts to keep the test fast."""
    import menda.cloud_client

    class Quick(MendaCloudClient):
        def __init__(self, identity: Identity, **kwargs: Any) -> None:
            super().__init__(identity, timeout=(1.0, 0.2), **kwargs)

    ctx.monkeypatch.setattr(menda.cloud_client, "MendaCloudClient", Quick)


@dataclass(frozen=True)
class Scenario:
    name: str
    setup: Callable[[Ctx], None]
    ok: bool = False  # the call succeeds (we check only logs and stderr then)
    cli: bool = True  # needs no in-process patch, so it runs through the CLI too


def _tls(ctx: Ctx) -> None:
    host = ctx.request.getfixturevalue("tls_host")
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        ctx.monkeypatch.delenv(name, raising=False)
    ctx.env_trio(host=host)


def _echo(endpoint: str, status: int, error: str, leaked: str) -> Callable[[Ctx], None]:
    body = json.dumps({"error": error, "error_description": f"you sent {leaked}, try again"})

    def setup(ctx: Ctx) -> None:
        ctx.register()
        ctx.env_trio()
        if leaked in (SEEDED_ACCESS,):
            ctx.seed_m2m_access()
        ctx.cloud.inject(endpoint, Status(status, body=body), times=3)

    return setup


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


def _seed_real_login(ctx: Ctx) -> None:
    """An expired login whose refresh token the emulator knows: the refresh succeeds."""
    login = ctx.cloud.login("alice")
    write_cached_login(
        ctx.home.cache_dir,
        "default",
        host=ctx.cloud.url,
        access_token=login.access_token,
        refresh_token=login.refresh_token,
        expires_at=datetime.now(timezone.utc) - timedelta(minutes=5),
    )


SCENARIOS = [
    Scenario("success", _m2m, ok=True),
    Scenario("success-u2m-refresh", _then(Ctx.u2m_profile, _seed_real_login), ok=True),
    Scenario("no-config", lambda c: None),
    Scenario("config-missing-equals", lambda c: _cfg(c, f"client_secret {CLIENT_SECRET}\n")),
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
    ),
    Scenario(
        "env-partial-trio", lambda c: c.monkeypatch.setenv("MENDA_CLIENT_SECRET", CLIENT_SECRET)
    ),
    Scenario("u2m-no-login", lambda c: c.u2m_profile()),
    Scenario("u2m-invalid-grant", _then(Ctx.u2m_profile, lambda c: c.seed_login(expired=True))),
    Scenario("u2m-refresh-5xx-echoing-the-refresh-token", _u2m_echo_refresh),
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
    Scenario("m2m-timeout", _then(_m2m, _fault("token", Delay(1.0)), _short_timeouts), cli=False),
    Scenario("m2m-invalid-token-twice", _invalid_token_twice),
    Scenario("tls", _tls),
    Scenario("echo-client-secret", _echo("token", 401, "invalid_client", CLIENT_SECRET)),
    Scenario("echo-access-token", _echo("registry", 403, "access_denied", SEEDED_ACCESS)),
    Scenario("echo-secret-in-5xx", _echo("token", 502, "bad_gateway", CLIENT_SECRET)),
]


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
    out.append(repr(cache.load_access_token(identity.cache_key, host=identity.host)))
    key = registry_cache_key(identity.cache_key, identity.host, DOMAIN, OWNER, REGION)
    registry = cache.load_registry_token(key, host=identity.host, identity=identity.cache_key)
    out.append(repr(registry))
    return out


@pytest.fixture
def ctx(
    menda_home: MendaHome,
    menda_cloud: MendaCloudEmulator,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> Ctx:
    monkeypatch.setattr("menda.cloud_client._http._sleep", lambda seconds: None)
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
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]

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
        assert warnings[-1].endswith(f"[{type(raised[-1]).__name__}]")
        texts.append(out)
    assert caplog.records  # debug lines are there...
    assert_no_secret(texts, secrets, scenario.name)  # ...without a secret


@pytest.mark.parametrize("scenario", [s for s in SCENARIOS if s.cli], ids=lambda s: s.name)
def test_no_secret_reaches_the_keyring_cli_output_at_debug_level(
    ctx: Ctx, scenario: Scenario, keyring_cli: Any
) -> None:
    scenario.setup(ctx)
    env = ctx.home.env(MENDA_LOG_LEVEL="debug")
    result = keyring_cli("get", INDEX, "aws", env=env)
    secrets = known_secrets(ctx.cloud, ctx.home.cache_dir)
    assert "menda-keyring:" in result.stderr
    assert "Traceback" not in result.stderr or scenario.ok is False
    if scenario.ok:
        assert result.returncode == 0, result.stderr
        token = result.stdout.strip()
        assert token in secrets
        assert token not in result.stderr
        secrets.discard(token)
    else:
        assert result.returncode == 1, result.stdout
        assert result.stdout == ""
    assert_no_secret([result.stdout, result.stderr], secrets, scenario.name)


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
