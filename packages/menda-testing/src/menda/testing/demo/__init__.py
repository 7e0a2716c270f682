"""``menda-demo``: the whole product, working, on a machine with no account and no network.

It starts the menda cloud emulator and the fake CodeArtifact repository (reached
by its genuine host name through a TLS-terminating proxy), writes an M2M profile
into a throw-away home exactly as ``menda auth configure`` would, and installs a
private package with the real ``uv`` through ``keyring`` and menda-keyring. Then
the user's path: ``menda-keyring login`` (the device flow) writes a login into
the Menda CLI's token file, and the next install needs no further sign-in. Each
step prints what it did and the commands as a user can copy them; nothing secret
is printed (every line goes through a redactor that knows the demo's client
secret and the shapes of the emulator's tokens).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TextIO

from menda.testing.demo import _steps
from menda.testing.demo._world import (
    CLIENT_ID,
    CLIENT_SECRET,
    DOMAIN,
    HOST,
    OWNER,
    PACKAGE,
    PACKAGE_VERSION,
    PUBLIC_PACKAGE,
    REGION,
    REPOSITORY,
    STEPS,
    DemoError,
    Output,
    Redactor,
    World,
    find_uv,
    ms,
    step,
)

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
        "--no-failure", action="store_true", help="skip the failure example (step 9)"
    )
    return parser


def run(args: argparse.Namespace, stream: TextIO) -> int:
    out = Output(stream, Redactor(), quiet=args.quiet)
    timings: list[tuple[str, float]] = []
    total = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="menda-demo-"))
    warm_requests = -1
    with ExitStack() as stack:
        if not args.keep:
            stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        try:
            uv = find_uv()
            from menda.testing.codeartifact import FakeCodeArtifact
            from menda.testing.emulator import MendaCloudEmulator

            with step(out, timings, 1, "Start menda cloud emulator and fake CodeArtifact"):
                cloud = stack.enter_context(MendaCloudEmulator())
                repo = stack.enter_context(FakeCodeArtifact(cloud))
                home = tmp / "home"
                home.mkdir(mode=0o700)
                world = World(tmp=tmp, uv=uv, cloud=cloud, repo=repo, home=home)
                _steps.servers(out, world)
            with step(out, timings, 2, "Configure an M2M profile in a fresh home"):
                _steps.configure(out, world)
            with step(out, timings, 3, "Resolve the identity"):
                _steps.identity(out, world)
            with step(out, timings, 4, f"Install {PACKAGE} with uv through keyring (cold cache)"):
                _steps.cold_install(out, world)
            with step(out, timings, 5, "What happened: menda cloud requests and token cache"):
                _steps.report(out, world)
            with step(out, timings, 6, "Install again (--reinstall --no-cache): the warm path"):
                warm_requests = _steps.warm_install(out, world)
            with step(out, timings, 7, "A user signs in: menda-keyring login (device flow)"):
                _steps.user_login(out, world)
            with step(out, timings, 8, "Install as that user: no further sign-in"):
                _steps.user_install(out, world)
            if args.no_failure:
                out.line(f"[9/{STEPS}] Failure example skipped (--no-failure)", always=True)
            else:
                with step(out, timings, 9, "A failure as a user meets it"):
                    _steps.failure(out, world)
        except DemoError as exc:
            out.line(f"menda-demo: FAILED: {exc}", always=True)
            _cleanup_line(out, args, tmp)
            return 1
        except Exception as exc:  # a demo reports, rather than dumps a traceback
            out.line(f"menda-demo: FAILED: unexpected {type(exc).__name__}: {exc}", always=True)
            _cleanup_line(out, args, tmp)
            return 1
        with step(out, timings, 10, "Clean up"):
            stack.close()
            out.detail("servers stopped: the commands above only worked while the demo ran")
            _cleanup_detail(out, args, tmp)
    out.line("", always=True)
    out.line("Summary", always=True)
    for title, seconds in timings:
        out.line(f"  {ms(seconds):>9}  {title}", always=True)
    out.line(f"  {ms(time.perf_counter() - total):>9}  total", always=True)
    out.line(
        f"  {PACKAGE} {PACKAGE_VERSION} installed from {HOST} through menda-keyring; "
        f"warm install made {warm_requests} request(s) to menda cloud",
        always=True,
    )
    return 0


def _cleanup_detail(out: Output, args: argparse.Namespace, tmp: Path) -> None:
    if args.keep:
        out.line(f"      kept the temporary directory: {tmp}", always=True)
    else:
        out.detail(f"removed {tmp}")


def _cleanup_line(out: Output, args: argparse.Namespace, tmp: Path) -> None:
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
