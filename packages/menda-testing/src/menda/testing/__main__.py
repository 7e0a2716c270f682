"""``python -m menda.testing serve``: run the menda cloud emulator in the foreground.

It prints one line, the emulator's URL, to stdout (flushed) so a parent process
can read it, then serves until SIGTERM or SIGINT. Other processes inspect and
configure it through its admin API under ``<url>/_emulator/``.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from menda.testing._tokens import DEFAULT_REGISTRY
from menda.testing.emulator import MendaCloudEmulator


def _m2m(value: str) -> tuple[str, str]:
    client_id, sep, secret = value.partition(":")
    if not sep or not client_id or not secret:
        raise argparse.ArgumentTypeError("expected CLIENT_ID:SECRET")
    return client_id, secret


def _registry(value: str) -> tuple[str, str, str]:
    parts = value.split(":")
    if len(parts) != 3 or not all(parts):
        raise argparse.ArgumentTypeError("expected DOMAIN:OWNER:REGION")
    return parts[0], parts[1], parts[2]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m menda.testing", description="menda-testing tools"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the menda cloud emulator in the foreground")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    serve.add_argument("--path-prefix", default="", help="serve the API under this path")
    serve.add_argument(
        "--m2m",
        action="append",
        type=_m2m,
        default=[],
        metavar="ID:SECRET",
        help="register an M2M client (repeatable)",
    )
    serve.add_argument(
        "--user",
        action="append",
        default=[],
        metavar="NAME",
        help="register a user who approves device logins (repeatable; the first approves)",
    )
    serve.add_argument(
        "--registry",
        type=_registry,
        default=DEFAULT_REGISTRY,
        metavar="DOMAIN:OWNER:REGION",
        help=f"the tenant's CodeArtifact registry (default: {':'.join(DEFAULT_REGISTRY)})",
    )
    serve.add_argument("--app-client-id", default="menda-cli", help="the login app's client id")
    serve.add_argument("--tenant-id", default="menda-test")
    serve.add_argument("--access-token-lifetime", type=int, default=3600, metavar="SECONDS")
    serve.add_argument("--registry-token-lifetime", type=int, default=43200, metavar="SECONDS")
    serve.add_argument(
        "--device-interval",
        type=int,
        default=1,
        metavar="SECONDS",
        help="the device flow's polling interval (default: 1)",
    )
    # Room for more subcommands next to serve. `demo` takes its own options
    # (menda-demo's); main() hands them over before this parser sees them.
    commands.add_parser(
        "demo",
        help="show menda-keyring working end to end (menda-demo; see `demo --help`)",
        add_help=False,
    )
    return parser


def serve(args: argparse.Namespace) -> int:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    cloud = MendaCloudEmulator(
        host=args.host,
        port=args.port,
        path_prefix=args.path_prefix,
        access_token_lifetime=args.access_token_lifetime,
        registry_token_lifetime=args.registry_token_lifetime,
        registry=args.registry,
        app_client_id=args.app_client_id,
        tenant_id=args.tenant_id,
        device_interval=args.device_interval,
    )
    for client_id, secret in args.m2m:
        cloud.add_m2m_client(client_id, secret)
    for name in args.user:
        cloud.add_user(name)
    with cloud:
        sys.stdout.write(cloud.url + "\n")
        sys.stdout.flush()
        while not stop.wait(0.2):
            pass
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["demo"]:
        from menda.testing.demo import main as demo_main

        return demo_main(arguments[1:])
    args = build_parser().parse_args(arguments)
    if args.command == "serve":
        return serve(args)
    raise AssertionError(f"unhandled command {args.command!r}")  # argparse rejects others


if __name__ == "__main__":
    sys.exit(main())
