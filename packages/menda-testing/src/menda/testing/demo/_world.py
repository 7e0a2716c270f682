"""What the demo's steps share: the constants, the servers and home, output that hides secrets."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from menda.testing.codeartifact import FakeCodeArtifact
    from menda.testing.emulator import MendaCloudEmulator

DOMAIN, OWNER, REGION, REPOSITORY = "menda-private", "058264169513", "eu-west-1", "menda-plugins"
HOST = f"{DOMAIN}-{OWNER}.d.codeartifact.{REGION}.amazonaws.com"
PROFILE = "default"
USER_PROFILE = "me"
USER = "alice"
CLIENT_ID = "demo-ci-bot"
# A known constant, so tests can check it never reaches the output.
CLIENT_SECRET = "demo-secret-7c41e9d2b8a05f36"
PACKAGE, PACKAGE_VERSION = "menda-hello", "1.0.0"
PUBLIC_PACKAGE, PUBLIC_VERSION = "public-dep", "1.2.0"
STEPS = 10
MASK = "********"
# The emulator's token shapes: access, id, refresh, device code, generated client
# secret, and CodeArtifact tokens (five dot-separated base64url parts).
TOKEN_RE = re.compile(
    r"\b(mat|mit|mrt|mdc|mcs)_[A-Za-z0-9_\-]+|\beyJ[A-Za-z0-9_\-]*(?:\.[A-Za-z0-9_\-]*){4}"
)
TIMEOUT = 180.0
# What a user's copy of a command needs besides the command itself.
SHOWN_VARIABLES = ("HOME", "HTTPS_PROXY", "NO_PROXY", "SSL_CERT_FILE", "MENDA_PROFILE_ID")


class DemoError(Exception):
    """A step failed; the message says which and why (never with a secret)."""


class Redactor:
    """Removes every secret the demo knows of from a line of text."""

    def __init__(self) -> None:
        self.secrets: set[str] = {CLIENT_SECRET}

    def __call__(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            if secret:
                text = text.replace(secret, MASK)
        return TOKEN_RE.sub(lambda m: f"{m.group(1) or 'eyJ'}_{MASK}", text)


@dataclass
class Output:
    stream: TextIO
    redact: Redactor
    quiet: bool = False

    def line(self, text: str = "", *, always: bool = False) -> None:
        if self.quiet and not always:
            return
        self.stream.write(self.redact(text) + "\n")
        self.stream.flush()

    def detail(self, text: str) -> None:
        self.line("      " + text)

    def block(self, text: str, prefix: str = "      | ") -> None:
        for row in text.rstrip("\n").splitlines():
            self.line(prefix + row)

    def command(self, argv: Sequence[str | Path], env: Mapping[str, str]) -> None:
        """A command as a user can copy it: the variables it needs, then the command."""
        shown = [f"{n}={shlex.quote(env[n])}" for n in SHOWN_VARIABLES if env.get(n)]
        words = [Path(str(argv[0])).name, *(str(a) for a in argv[1:])]
        self.detail("$ " + " ".join(shown + [shlex.quote(w) for w in words]))


@dataclass
class World:
    """Everything the steps share."""

    tmp: Path
    uv: str
    cloud: MendaCloudEmulator
    repo: FakeCodeArtifact
    home: Path
    index_url: str = ""
    venv_python: Path | None = None
    timings: list[tuple[str, float]] = field(default_factory=list)

    @property
    def python(self) -> Path:
        if self.venv_python is None:
            raise DemoError("the virtual environment was not created")
        return self.venv_python

    @property
    def aws_index_url(self) -> str:
        return self.index_url.replace("https://", "https://aws@", 1)

    @property
    def config_path(self) -> Path:
        return self.home / ".menda" / "mendacfg"

    @property
    def cache_dir(self) -> Path:
        return self.home / ".menda" / "tokens" / "cache"

    def env(self, **overrides: str) -> dict[str, str]:
        """A user's shell on a fresh machine: our home, the proxy and CA, our keyring first."""
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PIP_", "UV_", "MENDA_", "TWINE_", "VIRTUAL_ENV", "KEYRING_"))
            and k not in ("CONDA_PREFIX", "PYTHONPATH", "PYTHONHOME")
        }
        base.update(HOME=str(self.home), USERPROFILE=str(self.home))
        env = self.repo.installer_env(base)
        env.update(
            # uv spawns the `keyring` next to this interpreter: the one with our backend.
            PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
            UV_CACHE_DIR=str(self.tmp / "uv-cache"),
            UV_NO_CONFIG="1",
            UV_PYTHON_DOWNLOADS="never",
            PYTHONDONTWRITEBYTECODE="1",
        )
        env.update(overrides)
        return env


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


@contextmanager
def step(out: Output, timings: list[tuple[str, float]], n: int, title: str) -> Iterator[None]:
    out.line(f"[{n}/{STEPS}] {title}", always=True)
    start = time.perf_counter()
    yield
    elapsed = time.perf_counter() - start
    timings.append((title, elapsed))
    out.line(f"      ok ({ms(elapsed)})", always=True)


def find_uv() -> str:
    found = os.environ.get("UV") or shutil.which("uv")
    if not found or not Path(found).exists():
        raise DemoError(
            "uv was not found: run the demo with `uv run menda-demo`, or install uv "
            "(https://docs.astral.sh/uv/) and put it on PATH"
        )
    return found


def run_command(
    world: World, argv: Sequence[str | Path], env: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [str(a) for a in argv],
            env=dict(env),
            cwd=world.tmp,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        name = Path(str(argv[0])).name
        raise DemoError(f"{name} did not finish within {TIMEOUT:.0f} s") from None


def show_process(out: Output, result: subprocess.CompletedProcess[str]) -> None:
    # Progress goes to stderr and results to stdout: in the order a terminal shows them.
    text = (result.stderr or "") + (result.stdout or "")
    out.block(text or "(no output)")


@contextmanager
def home_as(home: Path) -> Iterator[None]:
    """Point this process's home at ``home`` for the duration (Path.home() reads the env)."""
    saved = {name: os.environ.get(name) for name in ("HOME", "USERPROFILE")}
    os.environ["HOME"] = os.environ["USERPROFILE"] = str(home)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
