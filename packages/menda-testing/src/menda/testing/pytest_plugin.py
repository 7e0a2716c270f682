"""pytest fixtures for menda tests (registered through the ``pytest11`` entry point).

- ``menda_home``: an isolated home (HOME, USERPROFILE; MENDA_* and proxy variables
  removed) with helpers to write a mendacfg, logins in the CLI's token file and
  menda-keyring's own cache entries.
- ``menda_cloud``: a started :class:`MendaCloudEmulator`, stopped at teardown.
- ``m2m_client``: ``(client_id, client_secret)`` registered on ``menda_cloud``.
- ``clock`` / ``frozen_clock``: a fake "now" for ``menda.core_auth`` (and for
  ``menda_cloud`` when the test uses both), moved with ``clock.advance(seconds)``.

Its helpers (``MendaHome``, ``FakeClock``, ``console_script``, ``unused_port``) are
imported from ``menda.testing``.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import secrets
import socket
import sys
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from menda.testing._records import UserLogin
from menda.testing.emulator import MendaCloudEmulator
from menda.testing.files import (
    CLI_TOKEN_FILE,
    OWN_CACHE_DIR,
    cached_secrets,
    read_cli_token_file,
    write_cache_entry,
    write_cached_login,
    write_mendacfg,
)

__all__ = ["FakeClock", "MendaHome", "console_script", "unused_port"]

# The fake CodeArtifact's fixtures live in their own module; load them with ours when present.
if TYPE_CHECKING:
    from menda.testing.published import PublishedClients

if importlib.util.find_spec("menda.testing._pytest_codeartifact") is not None:
    pytest_plugins = ["menda.testing._pytest_codeartifact"]

_PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "ALL_PROXY")


def _removed_variables(environ: Mapping[str, str]) -> list[str]:
    proxies = {*_PROXY_VARIABLES, *(name.lower() for name in _PROXY_VARIABLES)}
    return [name for name in environ if name.upper().startswith("MENDA_") or name in proxies]


def console_script(name: str) -> str:
    """The path of an installed console script (``keyring``, ``menda-keyring``) of this Python."""
    scripts = Path(sys.executable).parent
    return str(scripts / (f"{name}.exe" if sys.platform == "win32" else name))


def unused_port() -> int:
    """A port on 127.0.0.1 that nobody listens on (bound, then released): connecting is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class MendaHome:
    """An isolated home directory; the environment is already pointed at it."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.config_path = home / ".menda" / "mendacfg"
        self.cache_dir = home / ".menda" / "tokens" / "cache"
        self.profiles: dict[str, dict[str, str]] = {}
        self.defaults: dict[str, str] | None = None

    def __repr__(self) -> str:
        return f"MendaHome({str(self.home)!r})"

    def write_config(
        self,
        profiles: Mapping[str, Mapping[str, str]],
        defaults: Mapping[str, str] | None = None,
    ) -> Path:
        """Write ``config_path`` with exactly these profiles (replacing what was there)."""
        self.profiles = {name: dict(values) for name, values in profiles.items()}
        self.defaults = None if defaults is None else dict(defaults)
        return write_mendacfg(self.config_path, self.profiles, defaults=self.defaults)

    @property
    def token_file(self) -> Path:
        """The CLI's token file, ``<cache_dir>/.token``."""
        return self.cache_dir / CLI_TOKEN_FILE

    @property
    def own_cache_dir(self) -> Path:
        """menda-keyring's own entries, ``<cache_dir>/menda-keyring``."""
        return self.cache_dir / OWN_CACHE_DIR

    def write_cached_login(
        self,
        profile: str,
        login: UserLogin | None = None,
        *,
        now: datetime | None = None,
        **fields: Any,
    ) -> Path:
        """Write ``profile``'s section of the CLI's token file, as ``menda auth login`` does.

        From ``login`` (``cached_at`` = ``now``, default the moment of login, and
        ``expires_in`` the lifetime left then), and/or the keyword arguments of
        :func:`menda.testing.write_cached_login`, which win (``cached_at=0`` for a
        long-expired login, ``extra={...}`` for a broken one).
        """
        values = {} if login is None else login.cache_fields(now)
        values.update(fields)
        return write_cached_login(self.cache_dir, profile, **values)

    def read_cli_tokens(self) -> dict[str, dict[str, str]]:
        """The sections of the CLI's token file (``{}`` when there is none)."""
        return read_cli_token_file(self.token_file)

    def write_cache_entry(self, key: str, entry: Mapping[str, Any]) -> Path:
        """One of menda-keyring's own entries: ``<cache_dir>/menda-keyring/<key>.json``."""
        return write_cache_entry(self.cache_dir, key, entry)

    def cached_secrets(self) -> list[str]:
        """Every token value in ``cache_dir``: what no output may contain."""
        return cached_secrets(self.cache_dir)

    def add_m2m_profile(
        self,
        cloud: MendaCloudEmulator,
        client_id: str,
        client_secret: str,
        *,
        profile: str = "default",
    ) -> Path:
        """Add an ``auth_type = m2m`` profile for ``cloud`` to the config file (kept profiles)."""
        self.profiles[profile] = {
            "host": cloud.url,
            "auth_type": "m2m",
            "client_id": client_id,
            "client_secret": client_secret,
        }
        return write_mendacfg(self.config_path, self.profiles, defaults=self.defaults)

    def add_u2m_profile(
        self,
        cloud: MendaCloudEmulator,
        *,
        profile: str = "default",
        user: str = "alice",
        domains: list[str] | None = None,
        registry: tuple[str, str, str] | None = None,
    ) -> UserLogin:
        """Register ``user`` on ``cloud``, add a u2m profile and cache the login in the
        CLI's token file (``cached_at`` = the emulator's now), as ``menda auth login`` does."""
        login = cloud.add_user(user, domains=domains, registry=registry)
        self.profiles[profile] = {"host": cloud.url, "auth_type": "u2m"}
        write_mendacfg(self.config_path, self.profiles, defaults=self.defaults)
        self.write_cached_login(profile, login, now=cloud.now())
        return login

    def env(self, **overrides: str | None) -> dict[str, str]:
        """The environment for a subprocess: the current one (isolated) plus ``overrides``.

        An override of ``None`` removes that variable.
        """
        # The fixture already isolated os.environ; what the test set since is kept.
        environ = dict(os.environ)
        environ["HOME"] = str(self.home)
        environ["USERPROFILE"] = str(self.home)
        for name, value in overrides.items():
            if value is None:
                environ.pop(name, None)
            else:
                environ[name] = value
        return environ


@pytest.fixture
def menda_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MendaHome:
    """An isolated home: HOME/USERPROFILE under tmp, MENDA_* and proxy variables removed."""
    home = tmp_path / "home"
    home.mkdir()
    for name in _removed_variables(os.environ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("USERPROFILE", str(home))
    return MendaHome(home)


@pytest.fixture
def menda_cloud() -> Iterator[MendaCloudEmulator]:
    """A running menda cloud emulator on loopback."""
    with MendaCloudEmulator() as cloud:
        yield cloud


@pytest.fixture
def m2m_client(menda_cloud: MendaCloudEmulator) -> tuple[str, str]:
    """An M2M client registered on ``menda_cloud``, allowed every domain.

    The secret holds characters that need form-urlencoding and INI care.
    """
    client_id = "ci-client"
    client_secret = "mcs_" + secrets.token_urlsafe(18) + "+/:%#;"
    menda_cloud.add_m2m_client(client_id, client_secret)
    return client_id, client_secret


class FakeClock:
    """A settable "now" (aware, UTC); calling it returns the time."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(timezone.utc).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self._now

    def now(self) -> datetime:
        return self._now

    def set(self, moment: datetime) -> None:
        if moment.tzinfo is None:
            raise ValueError("pass an aware datetime")
        self._now = moment.astimezone(timezone.utc)

    def advance(self, seconds: float = 0, **delta: float) -> datetime:
        """Move forward by ``seconds`` (and any ``timedelta`` keywords); return the new time."""
        self._now += timedelta(seconds=seconds, **delta)
        return self._now

    def __repr__(self) -> str:
        return f"FakeClock({self._now.isoformat()})"


@pytest.fixture
def clock(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeClock]:
    """Freeze ``menda.core_auth.utcnow()`` at the current time; move it with ``advance``.

    When the test also uses ``menda_cloud``, the emulator follows the same clock
    (set ``menda_cloud.clock = None`` to give it real time back).
    """
    from menda.core_auth import set_clock

    fake = FakeClock()
    previous = set_clock(fake)
    if "menda_cloud" in request.fixturenames:
        cloud = request.getfixturevalue("menda_cloud")
        monkeypatch.setattr(cloud, "clock", fake)
    try:
        yield fake
    finally:
        set_clock(previous)


@pytest.fixture
def frozen_clock(clock: FakeClock) -> FakeClock:
    """The same as ``clock``."""
    return clock


# Computed at import, before any fixture points HOME at a temporary directory.
_PUBLISHED_ROOT = Path.home() / ".cache" / "menda-keyring-tests"


@pytest.fixture(scope="session")
def published_clients() -> PublishedClients:
    """menda-cli 0.5.0 and menda-keyring 0.0.2, each in its own venv (built once).

    Skips on Python < 3.11 (menda-cli needs it) and when uv or PyPI is unavailable.
    """
    from menda.testing.published import VenvUnavailable, build_published_clients

    if sys.version_info < (3, 11):
        pytest.skip("menda-cli 0.5.0 requires Python 3.11 or newer")
    try:
        return build_published_clients(_PUBLISHED_ROOT)
    except VenvUnavailable as exc:
        pytest.skip(str(exc))
