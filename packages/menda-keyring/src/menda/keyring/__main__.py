"""``menda-keyring`` (also ``python -m menda.keyring``): the diagnostic command line."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["main"]

_DIAGNOSE_HELP = """\
Explain whether pip, uv, twine or Poetry will get an AWS CodeArtifact token
from menda-keyring, without printing any secret: versions, whether keyring
uses this backend, which identity resolves (or the exact error), the Menda
CLI's login (user profiles) or the cached access token (M2M), the cached
registry token for URL, and what is taken from URL.

examples:
  menda-keyring diagnose
  menda-keyring diagnose https://DOMAIN-OWNER.d.codeartifact.REGION.amazonaws.com/pypi/REPO/simple/
  menda-keyring diagnose --check [URL]      # also call menda cloud: whoami, a live exchange
  menda-keyring diagnose --json URL         # the same report as one JSON object
"""

_EXIT_HELP = """\
exit status:
  0  no problem found: the identity resolves, the URL (if any) is recognised,
     keyring uses menda-keyring, and a token can be had as far as can be told
     without the network (with --check: whoami and the live exchange succeeded)
  1  a problem was found; the report says which
  2  usage error

--check always asks menda cloud for a new registry token; the cached one is
neither used nor replaced. The token it presents comes from the cache when
valid, as an installer's would: an expired login is refreshed (and written
back), an M2M access token fetched (and cached).

Set MENDA_LOG_LEVEL=debug to also trace every step on stderr.
"""


def _parser() -> argparse.ArgumentParser:
    from menda.keyring import __version__

    parser = argparse.ArgumentParser(
        prog="menda-keyring",
        description="Diagnostics for the menda-keyring keyring backend.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    diagnose = commands.add_parser(
        "diagnose",
        help="explain whether a CodeArtifact token can be had (no secret is printed)",
        description=_DIAGNOSE_HELP,
        epilog=_EXIT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    diagnose.add_argument(
        "url", nargs="?", metavar="URL", help="an index URL or host as the installer uses it"
    )
    diagnose.add_argument(
        "--check",
        action="store_true",
        help="also call menda cloud (whoami, a live registry exchange) and report each request",
    )
    diagnose.add_argument(
        "--json", action="store_true", dest="as_json", help="print one JSON object"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2

    from menda.keyring.diagnose import run

    return run(args.url, check=args.check, as_json=args.as_json)


if __name__ == "__main__":
    sys.exit(main())
