"""``menda-keyring`` (also ``python -m menda.keyring``): diagnose, login and logout."""

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


_LOGIN_HELP = """\
Log in to menda cloud as a user, without the Menda CLI: the device flow, as
`menda auth login` runs it. Prints a URL and a code; approve the code in a
browser (opened for you unless --no-browser, or there is no display). The login
goes where `menda auth login` puts it, the profile's section of
~/.menda/tokens/cache/.token, in the CLI's format: the Menda CLI and every
installer then use it. Nothing is written until you have approved; Ctrl-C
leaves every file as it was.

The profile is --profile, else MENDA_PROFILE_ID, else "default". With --host, a
profile missing from ~/.menda/mendacfg (or MENDA_CONFIG_FILE) is added to it as
`auth_type = u2m`; an existing one is never changed.

examples:
  menda-keyring login --host https://api.example.menda.cloud
  menda-keyring login --profile dev --no-browser
"""

_LOGOUT_HELP = """\
Forget a profile's login: remove its section from the Menda CLI's token file
(every other login stays), and the CodeArtifact tokens menda-keyring cached
with it, so the next install has to sign in again.
"""

_LOGOUT_EXIT_HELP = """\
exit status:
  0  done (also when there was no login)
  1  failed; one line on stderr says why
  2  usage error
"""

_LOGIN_EXIT_HELP = """\
exit status:
  0    logged in
  1    failed; one line on stderr says why
  2    usage error
  130  cancelled with Ctrl-C; nothing was written
"""


def _profile_name(value: str) -> str:
    if not value.strip():
        raise argparse.ArgumentTypeError("the profile name must not be empty")
    return value.strip()


def _parser() -> argparse.ArgumentParser:
    from menda.keyring import __version__

    parser = argparse.ArgumentParser(
        prog="menda-keyring",
        description="Log in to menda cloud, and diagnose the menda-keyring keyring backend.",
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
    login = commands.add_parser(
        "login",
        help="log in as a user with the device flow (no Menda CLI needed)",
        description=_LOGIN_HELP,
        epilog=_LOGIN_EXIT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    login.add_argument(
        "--profile", metavar="NAME", type=_profile_name, help="the profile to log in with"
    )
    login.add_argument(
        "--host", metavar="URL", help="menda cloud's URL: creates the profile when it is missing"
    )
    login.add_argument(
        "--no-browser",
        action="store_false",
        dest="browser",
        help="only print the URL; do not open a browser",
    )
    logout = commands.add_parser(
        "logout",
        help="forget a profile's login",
        description=_LOGOUT_HELP,
        epilog=_LOGOUT_EXIT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    logout.add_argument(
        "--profile", metavar="NAME", type=_profile_name, help="the profile to log out of"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2

    if args.command == "login":
        from menda.keyring.login import login

        return login(args.profile, args.host, browser=args.browser)
    if args.command == "logout":
        from menda.keyring.login import logout

        return logout(args.profile)

    from menda.keyring.diagnose import run

    return run(args.url, check=args.check, as_json=args.as_json)


if __name__ == "__main__":
    sys.exit(main())
