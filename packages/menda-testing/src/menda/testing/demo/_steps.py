"""The demo's steps, in order: each prints what it did, never a secret."""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path
from typing import Any

from menda.testing.demo._world import (
    CLIENT_ID,
    CLIENT_SECRET,
    DOMAIN,
    HOST,
    MASK,
    OWNER,
    PACKAGE,
    PACKAGE_VERSION,
    PROFILE,
    PUBLIC_PACKAGE,
    PUBLIC_VERSION,
    REGION,
    REPOSITORY,
    USER,
    USER_PROFILE,
    DemoError,
    Output,
    World,
    home_as,
    ms,
    run_command,
    show_process,
)


def install_argv(world: World, *extra: str) -> list[str]:
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


def servers(out: Output, world: World) -> None:
    world.cloud.add_registry(DOMAIN, OWNER, REGION)
    out.detail(f"menda cloud emulator (plain http on loopback)  {world.cloud.url}")
    world.index_url = world.repo.add_repository(DOMAIN, OWNER, REGION, REPOSITORY)
    world.repo.add_package(
        world.index_url, PACKAGE, PACKAGE_VERSION, dependencies=[f"{PUBLIC_PACKAGE}>=1"]
    )
    world.repo.add_public_package(PUBLIC_PACKAGE, PUBLIC_VERSION)
    out.detail(
        f"HTTPS proxy (a forward proxy at {world.repo.proxy_url}; it answers for the "
        f"CodeArtifact host itself, with a certificate from a test CA: {world.repo.ca_pem_path})"
    )
    out.detail(f"private index            {world.index_url}")
    out.detail(f"  serves                 {PACKAGE} {PACKAGE_VERSION} (needs {PUBLIC_PACKAGE}>=1)")
    out.detail(f"public index             {world.repo.public_index_url}")
    out.detail(f"  serves                 {PUBLIC_PACKAGE} {PUBLIC_VERSION}")


def configure(out: Output, world: World) -> None:
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
    out.block(re.sub(r"(?mi)^(\s*client_secret\s*=\s*).*$", rf"\g<1>{MASK}", text))


def identity(out: Output, world: World) -> None:
    from menda.core_auth import resolve_identity

    env = world.env()
    with home_as(world.home):
        found = resolve_identity(env)
    out.detail("what menda-keyring will resolve (env trio unset, so the profile):")
    out.detail(f"  {found!r}")


def cold_install(out: Output, world: World) -> None:
    env = world.env()
    venv = world.tmp / "venv"
    result = run_command(world, [world.uv, "venv", venv, "--python", sys.executable, "-q"], env)
    if result.returncode != 0:
        show_process(out, result)
        raise DemoError(f"`uv venv` failed with exit code {result.returncode}")
    scripts = venv / ("Scripts" if sys.platform == "win32" else "bin")
    world.venv_python = scripts / ("python.exe" if sys.platform == "win32" else "python")
    out.detail(f"created venv {venv}")
    _install(out, world, env, "uv pip install")
    _run_package(out, world, env)


def _install(out: Output, world: World, env: dict[str, str], what: str, *extra: str) -> None:
    argv = install_argv(world, *extra)
    out.command(argv, env)
    start = time.perf_counter()
    result = run_command(world, argv, env)
    elapsed = time.perf_counter() - start
    show_process(out, result)
    if result.returncode != 0:
        raise DemoError(f"`{what}` failed with exit code {result.returncode}")
    out.detail(f"{what} took {ms(elapsed)}")


def _run_package(out: Output, world: World, env: dict[str, str]) -> None:
    module = PACKAGE.replace("-", "_")
    dep = PUBLIC_PACKAGE.replace("-", "_")
    code = (
        f"import {module}, {dep}; "
        f"print('{PACKAGE}', {module}.__version__, '+ {PUBLIC_PACKAGE}', {dep}.__version__)"
    )
    result = run_command(world, [world.python, "-c", code], env)
    if result.returncode != 0:
        show_process(out, result)
        raise DemoError(f"the installed {PACKAGE} does not import")
    out.detail(f'$ python -c "import {module}; ..."  ->  installed: {result.stdout.strip()}')


def report(out: Output, world: World) -> None:
    requests = world.cloud.requests
    out.detail(f"menda cloud saw {len(requests)} request(s):")
    for r in requests:
        grant = f" grant_type={r.grant_type}" if r.grant_type else ""
        who = f" identity={r.identity}" if r.identity else ""
        out.detail(f"  {r.method} {r.path}  endpoint={r.endpoint} status={r.status}{grant}{who}")
    registry_hits = world.repo.count(host=HOST)
    out.detail(f"the CodeArtifact host answered {registry_hits} request(s) through the proxy")
    _show_cache(out, world)


def _show_cache(out: Output, world: World) -> None:
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
        what = _describe_entry(path) if path.name.endswith(".json") else ""
        if path.name == ".token":
            what = "the Menda CLI's logins: " + ", ".join(_sections(path))
        out.detail(f"  {name}  mode {file_mode:04o}  {what}".rstrip())


def _sections(path: Path) -> list[str]:
    return re.findall(r"(?m)^\[([^\]]+)\]", path.read_text(encoding="utf-8", errors="replace"))


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
        kind = f"registry token of {entry.get('identity')} for {where}"
    elif "access_token" in entry:
        kind = f"m2m access token of client {entry.get('client_id')!r}"
    else:
        kind = "unknown entry"
    return f"{kind}, expires_at {entry.get('expires_at')}"


def warm_install(out: Output, world: World) -> int:
    before = len(world.cloud.requests)
    _install(out, world, world.env(), "uv pip install", "--reinstall", "--no-cache")
    new = len(world.cloud.requests) - before
    out.detail(f"new requests to menda cloud: {new}")
    if new != 0:
        raise DemoError(f"the warm install asked menda cloud {new} time(s); expected none")
    out.detail("warm path: the registry token came from the cache, menda cloud was not asked")
    _run_package(out, world, world.env())
    return new


def user_login(out: Output, world: World) -> None:
    world.cloud.add_user(USER, domains=[DOMAIN])
    world.cloud.device_interval = 0  # the emulator approves on its own; no need to wait
    out.detail(f"registered user '{USER}' on menda cloud; the device flow approves by itself")
    env = world.env(MENDA_PROFILE_ID=USER_PROFILE)
    argv = [
        str(Path(sys.executable).parent / "menda-keyring"),
        "login",
        "--host",
        world.cloud.url,
        "--no-browser",
    ]
    out.command(argv, env)
    result = run_command(world, argv, env)
    show_process(out, result)
    if result.returncode != 0:
        raise DemoError(f"`menda-keyring login` failed with exit code {result.returncode}")
    config = world.config_path.read_text(encoding="utf-8")
    added = config[config.index(f"[{USER_PROFILE}]") :]
    out.detail(f"{world.config_path} gained the profile, as `menda auth configure` writes it:")
    out.block(added)
    out.detail("the login is in the Menda CLI's token file, where `menda auth login` puts it:")
    _show_cache(out, world)


def user_install(out: Output, world: World) -> None:
    before = len(world.cloud.requests)
    env = world.env(MENDA_PROFILE_ID=USER_PROFILE)
    _install(out, world, env, "uv pip install", "--reinstall", "--no-cache")
    made = world.cloud.requests[before:]
    tokens = sum(r.endpoint == "token" for r in made)
    exchanges = sum(r.endpoint == "registry" for r in made)
    out.detail(
        f"requests to menda cloud: {tokens} token, {exchanges} registry exchange "
        "(the login's id token was presented; nobody was asked to sign in again)"
    )
    if tokens:
        raise DemoError("the install after login asked for a new token")


def failure(out: Output, world: World) -> None:
    out.detail("a typo in the profile name: MENDA_PROFILE_ID=nope")
    argv = install_argv(world, "--reinstall", "--no-cache")
    result = run_command(world, argv, world.env(MENDA_PROFILE_ID="nope"))
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
