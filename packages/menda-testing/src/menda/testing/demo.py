"""``menda-demo``: the whole product, working, on a machine with no account and no network.

It starts the menda cloud emulator and the fake CodeArtifact repository (reached
by its genuine host name through a TLS-terminating proxy), writes an M2M profile
into a throw-away home exactly as ``menda auth configure`` would, and installs a
private package with the real ``uv`` through ``keyring`` and menda-keyring. Each
step is printed: the config (secret masked), the resolved identity, uv's output,
the requests menda cloud saw, the cache files written (never a token), timings,
a warm second install that makes no request to menda cloud, and one failure as
a user meets it.

Nothing secret is printed: every line goes through a redactor that knows the
demo's client secret and the shapes of the emulator's tokens.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from menda.testing.codeartifact import FakeCodeArtifact
    from menda.testing.emulator import MendaCloudEmulator

__all__ = [
    "CLIENT_ID",
    "CLIENT_SECRET",
    "DOMAIN",
    "HOST",
    "OWNER",
    "PACKAGE",
    "PUBLIC_PACKAGE",
    "REGION",
    "REPOSITORY",
    "STEPS",
    "DemoError",
    "build_parser",
    "main",
    "run",
]

DOMAIN, OWNER, REGION, REPOSITORY = "menda-private", "058264169513", "eu-west-1", "menda-plugins"
HOST = f"{DOMAIN}-{OWNER}.d.codeartifact.{REGION}.amazonaws.com"
PROFILE = "default"
CLIENT_ID = "demo-ci-bot"
# A known constant, so tests can check it never reaches the output.
CLIENT_SECRET = "demo-secret-7c41e9d2b8a05f36"
PACKAGE, PACKAGE_VERSION = "menda-hello", "1.0.0"
PUBLIC_PACKAGE, PUBLIC_VERSION = "public-dep", "1.2.0"
STEPS = 8
_MASK = "********"
# The emulator's token shapes (access, refresh, registry, generated client secret).
_TOKEN_RE = re.compile(r"\b(mat|mrt|caat|mcs)_[A-Za-z0-9_\-]+")
_TIMEOUT = 180.0


class DemoError(Exception):
    """A step failed; the message says which and why (never with a secret)."""


class _Redactor:
    """Removes every secret the demo knows of from a line of text."""

    def __init__(self) -> None:
        self.secrets: set[str] = {CLIENT_SECRET}

    def __call__(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            if secret:
                text = text.replace(secret, _MASK)
        return _TOKEN_RE.sub(lambda m: f"{m.group(1)}_{_MASK}", text)


@dataclass
class _Output:
    stream: TextIO
    redact: _Redactor
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


@dataclass
class _World:
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


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


@contextmanager
def _step(out: _Output, timings: list[tuple[str, float]], n: int, title: str) -> Iterator[None]:
    out.line(f"[{n}/{STEPS}] {title}", always=True)
    start = time.perf_counter()
    yield
    elapsed = time.perf_counter() - start
    timings.append((title, elapsed))
    out.line(f"      ok ({_ms(elapsed)})", always=True)


def _find_uv() -> str:
    found = os.environ.get("UV") or shutil.which("uv")
    if not found or not Path(found).exists():
        raise DemoError(
            "uv was not found: run the demo with `uv run menda-demo`, or install uv "
            "(https://docs.astral.sh/uv/) and put it on PATH"
        )
    return found


def _run(
    world: _World, argv: Sequence[str | Path], env: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [str(a) for a in argv],
            env=dict(env),
            cwd=world.tmp,
            capture_output=True,
            text=True,
            timeout=_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise DemoError(
            f"{Path(str(argv[0])).name} did not finish within {_TIMEOUT:.0f} s"
        ) from None


def _install_argv(world: _World, *extra: str) -> list[str]:
    return [
        world.uv,
        "pip",
        "install",
        "--python",
        str(world.python),
        "--keyring-provider",
        "subprocess",
        "--index-url",
        world.aws_index_url,
        "--extra-index-url",
        world.repo.public_index_url,
        *extra,
        PACKAGE,
    ]


def _show_process(out: _Output, result: subprocess.CompletedProcess[str]) -> None:
    text = (result.stdout or "") + (result.stderr or "")
    out.block(text or "(no output)")


# -- the steps ------------------------------------------------------------------------------


def _step_servers(out: _Output, world: _World) -> None:
    world.cloud.add_registry(DOMAIN, OWNER, REGION)
    out.detail(f"menda cloud emulator     {world.cloud.url}")
    world.index_url = world.repo.add_repository(DOMAIN, OWNER, REGION, REPOSITORY)
    world.repo.add_package(
        world.index_url,
        PACKAGE,
        PACKAGE_VERSION,
        dependencies=[f"{PUBLIC_PACKAGE}>=1"],
    )
    world.repo.add_public_package(PUBLIC_PACKAGE, PUBLIC_VERSION)
    out.detail(
        f"CodeArtifact proxy (TLS) {world.repo.proxy_url} (test CA: {world.repo.ca_pem_path.name})"
    )
    out.detail(f"private index            {world.index_url}")
    out.detail(f"  serves                 {PACKAGE} {PACKAGE_VERSION} (needs {PUBLIC_PACKAGE}>=1)")
    out.detail(f"public index             {world.repo.public_index_url}")
    out.detail(f"  serves                 {PUBLIC_PACKAGE} {PUBLIC_VERSION}")


def _step_configure(out: _Output, world: _World) -> None:
    from menda.testing.files import write_mendacfg

    out.detail(f"HOME={world.home}")
    world.cloud.add_m2m_client(CLIENT_ID, CLIENT_SECRET, domains=[DOMAIN])
    out.detail(f"registered M2M client '{CLIENT_ID}' on menda cloud (may use domain '{DOMAIN}')")
    path = write_mendacfg(
        world.config_path,
        {
            PROFILE: {
                "host": world.cloud.url,
                "auth_type": "m2m",
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
            }
        },
    )
    mode = path.stat().st_mode & 0o777
    out.detail(f"wrote {path} (mode {mode:04o}), as `menda auth configure` does:")
    text = path.read_text(encoding="utf-8")
    shown = re.sub(r"(?mi)^(\s*client_secret\s*=\s*).*$", rf"\g<1>{_MASK}", text)
    out.block(shown)


@contextmanager
def _home_as(home: Path) -> Iterator[None]:
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


def _step_identity(out: _Output, world: _World) -> None:
    from menda.core_auth import resolve_identity

    env = world.env()
    with _home_as(world.home):
        identity = resolve_identity(env)
    out.detail("what menda-keyring will resolve (env trio unset, so the profile):")
    out.detail(f"  {identity!r}")


def _step_cold_install(out: _Output, world: _World) -> None:
    env = world.env()
    venv = world.tmp / "venv"
    result = _run(world, [world.uv, "venv", venv, "--python", sys.executable, "--quiet"], env)
    if result.returncode != 0:
        _show_process(out, result)
        raise DemoError(f"`uv venv` failed with exit code {result.returncode}")
    scripts = venv / ("Scripts" if sys.platform == "win32" else "bin")
    world.venv_python = scripts / ("python.exe" if sys.platform == "win32" else "python")
    out.detail(f"created venv {venv}")
    argv = _install_argv(world)
    out.detail("$ " + " ".join(["uv", *argv[1:]]))
    start = time.perf_counter()
    result = _run(world, argv, env)
    elapsed = time.perf_counter() - start
    _show_process(out, result)
    if result.returncode != 0:
        raise DemoError(f"`uv pip install {PACKAGE}` failed with exit code {result.returncode}")
    out.detail(f"uv pip install took {_ms(elapsed)}")
    _run_package(out, world, env)


def _run_package(out: _Output, world: _World, env: Mapping[str, str]) -> None:
    module = PACKAGE.replace("-", "_")
    dep = PUBLIC_PACKAGE.replace("-", "_")
    code = (
        f"import {module}, {dep}; "
        f"print('{PACKAGE}', {module}.__version__, '+ {PUBLIC_PACKAGE}', {dep}.__version__)"
    )
    result = _run(world, [world.python, "-c", code], env)
    if result.returncode != 0:
        _show_process(out, result)
        raise DemoError(f"the installed {PACKAGE} does not import")
    out.detail(f'$ python -c "import {module}; ..."  ->  installed: {result.stdout.strip()}')


def _step_report(out: _Output, world: _World) -> None:
    requests = world.cloud.requests
    out.detail(f"menda cloud saw {len(requests)} request(s):")
    for r in requests:
        grant = f" grant_type={r.grant_type}" if r.grant_type else ""
        who = f" identity={r.identity}" if r.identity else ""
        out.detail(f"  {r.method} {r.path}  endpoint={r.endpoint} status={r.status}{grant}{who}")
    registry_hits = world.repo.count(host=HOST)
    out.detail(f"the CodeArtifact host answered {registry_hits} request(s) through the proxy")
    _show_cache(out, world)


def _show_cache(out: _Output, world: _World) -> None:
    directory = world.cache_dir
    if not directory.is_dir():
        out.detail(f"token cache {directory}: not created")
        return
    mode = directory.stat().st_mode & 0o777
    out.detail(f"token cache {directory} (mode {mode:04o}):")
    # The Menda CLI's logins (.token) sit beside our own entries (menda-keyring/*.json).
    paths = sorted(directory.iterdir())
    entries = directory / "menda-keyring"
    if entries.is_dir():
        paths += sorted(entries.iterdir())
    for path in paths:
        file_mode = path.stat().st_mode & 0o777
        name = path.relative_to(directory).as_posix()
        if not path.name.endswith(".json"):
            out.detail(f"  {name}  mode {file_mode:04o}")
            continue
        out.detail(f"  {name}  mode {file_mode:04o}  {_describe_entry(path)}")


def _describe_entry(path: Path) -> str:
    """Kind and expiry of a cache entry, never its token."""
    try:
        entry: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "(unreadable)"
    if not isinstance(entry, dict):
        return "(not a JSON object)"
    if "token" in entry:
        where = f"{entry.get('domain')}-{entry.get('domain_owner')} ({entry.get('region')})"
        kind = f"registry token for {where}"
    elif "access_token" in entry:
        kind = f"m2m access token of client {entry.get('client_id')!r}"
    else:
        kind = "unknown entry"
    return f"{kind}, expires_at {entry.get('expires_at')}"


def _step_warm_install(out: _Output, world: _World) -> int:
    before = len(world.cloud.requests)
    argv = _install_argv(world, "--reinstall", "--no-cache")
    out.detail("$ " + " ".join(["uv", *argv[1:]]))
    start = time.perf_counter()
    result = _run(world, argv, world.env())
    elapsed = time.perf_counter() - start
    _show_process(out, result)
    if result.returncode != 0:
        raise DemoError(f"the warm `uv pip install` failed with exit code {result.returncode}")
    new = len(world.cloud.requests) - before
    out.detail(f"uv pip install took {_ms(elapsed)}; new requests to menda cloud: {new}")
    if new != 0:
        raise DemoError(f"the warm install asked menda cloud {new} time(s); expected none")
    out.detail("warm path: the registry token came from the cache, menda cloud was not asked")
    _run_package(out, world, world.env())
    return new


def _step_failure(out: _Output, world: _World) -> None:
    out.detail("a typo in the profile name: MENDA_PROFILE_ID=nope")
    argv = _install_argv(world, "--reinstall", "--no-cache")
    result = _run(world, argv, world.env(MENDA_PROFILE_ID="nope"))
    lines = ((result.stdout or "") + (result.stderr or "")).splitlines()
    ours = [line for line in lines if line.startswith("menda-keyring:")]
    # keyring is asked more than once; the user sees the same line each time.
    shown = [
        line
        for line in dict.fromkeys(lines)
        if line.strip() and not line.startswith("Using Python")
    ]
    out.detail(f"uv exited with code {result.returncode}; what the user sees:")
    out.block("\n".join(shown) or "(nothing)")
    if result.returncode == 0:
        raise DemoError("the install with a missing profile unexpectedly succeeded")
    if not ours:
        raise DemoError("menda-keyring's explanation did not reach the user")


# -- main -----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="menda-demo",
        description=(
            "Show menda-keyring working end to end with no account and no network: a local "
            "menda cloud, a fake CodeArtifact repository, and a real `uv pip install`."
        ),
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument(
        "--quiet", action="store_true", help="print only the step lines and the summary"
    )
    parser.add_argument(
        "--no-failure", action="store_true", help="skip the failure example (step 7)"
    )
    return parser


def run(args: argparse.Namespace, stream: TextIO) -> int:
    redact = _Redactor()
    out = _Output(stream, redact, quiet=args.quiet)
    timings: list[tuple[str, float]] = []
    total = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="menda-demo-"))
    warm_requests = -1
    with ExitStack() as stack:
        if not args.keep:
            stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        try:
            uv = _find_uv()
            from menda.testing.codeartifact import FakeCodeArtifact
            from menda.testing.emulator import MendaCloudEmulator

            with _step(out, timings, 1, "Start menda cloud emulator and fake CodeArtifact"):
                cloud = stack.enter_context(MendaCloudEmulator())
                repo = stack.enter_context(FakeCodeArtifact(cloud))
                home = tmp / "home"
                home.mkdir(mode=0o700)
                world = _World(tmp=tmp, uv=uv, cloud=cloud, repo=repo, home=home)
                _step_servers(out, world)
            with _step(out, timings, 2, "Configure an M2M profile in a fresh home"):
                _step_configure(out, world)
            with _step(out, timings, 3, "Resolve the identity"):
                _step_identity(out, world)
            with _step(out, timings, 4, f"Install {PACKAGE} with uv through keyring (cold cache)"):
                _step_cold_install(out, world)
            with _step(out, timings, 5, "What happened: menda cloud requests and token cache"):
                _step_report(out, world)
            with _step(out, timings, 6, "Install again (--reinstall --no-cache): the warm path"):
                warm_requests = _step_warm_install(out, world)
            if args.no_failure:
                out.line(f"[7/{STEPS}] Failure example skipped (--no-failure)", always=True)
            else:
                with _step(out, timings, 7, "A failure as a user meets it"):
                    _step_failure(out, world)
        except DemoError as exc:
            out.line(f"menda-demo: FAILED: {exc}", always=True)
            _cleanup_line(out, args, tmp)
            return 1
        except Exception as exc:  # a demo reports, rather than dumps a traceback
            out.line(f"menda-demo: FAILED: unexpected {type(exc).__name__}: {exc}", always=True)
            _cleanup_line(out, args, tmp)
            return 1
        with _step(out, timings, 8, "Clean up"):
            stack.close()
            out.detail("servers stopped")
            _cleanup_detail(out, args, tmp)
    out.line("", always=True)
    out.line("Summary", always=True)
    for title, seconds in timings:
        out.line(f"  {_ms(seconds):>9}  {title}", always=True)
    out.line(f"  {_ms(time.perf_counter() - total):>9}  total", always=True)
    out.line(
        f"  {PACKAGE} {PACKAGE_VERSION} installed from {HOST} through menda-keyring; "
        f"warm install made {warm_requests} request(s) to menda cloud",
        always=True,
    )
    return 0


def _cleanup_detail(out: _Output, args: argparse.Namespace, tmp: Path) -> None:
    if args.keep:
        out.line(f"      kept the temporary directory: {tmp}", always=True)
    else:
        out.detail(f"removed {tmp}")


def _cleanup_line(out: _Output, args: argparse.Namespace, tmp: Path) -> None:
    if args.keep:
        out.line(f"menda-demo: kept the temporary directory: {tmp}", always=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args, sys.stdout)
    except KeyboardInterrupt:
        sys.stdout.write("menda-demo: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
