"""``menda-keyring login`` and ``logout``: a user login without the Menda CLI.

``login`` runs the device flow (``menda.cloud_client.DeviceLogin``) for a u2m
profile and writes the result where ``menda auth login`` does: the profile's
section of the Menda CLI's token file, in the CLI's exact format, so the CLI
and every installer see the same login. With ``--host`` a missing profile is
added to the config file, in the CLI's format. Nothing is written before the
user has approved: Ctrl-C while waiting leaves every file as it was.

``logout`` removes that profile's section from the token file, and our cached
CodeArtifact tokens obtained with that login (their ``identity`` is
``u2m-profile:<profile>``), so the next install has to sign in again.

Only the command line imports this module.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from typing import TYPE_CHECKING, TextIO

from menda.core_auth import (
    ENV_CLIENT_ID,
    ENV_CLIENT_SECRET,
    ENV_HOST,
    ENV_PROFILE_ID,
    Identity,
    TokenCache,
    add_u2m_profile,
    default_config_path,
    load_profile,
    normalize_host,
)
from menda.error import (
    ConfigFileNotFoundError,
    MendaConfigError,
    MendaError,
    ProfileNotFoundError,
)
from menda.keyring._prompt import Countdown, can_open_browser, say, show

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from menda.core_auth import Profile

__all__ = ["EXIT_FAILURE", "EXIT_INTERRUPTED", "EXIT_OK", "login", "logout"]

EXIT_OK = 0
EXIT_FAILURE = 1
#: 128 + SIGINT, what a shell reports for a command stopped with Ctrl-C.
EXIT_INTERRUPTED = 130

DEFAULT_PROFILE = "default"
_REGISTRY_ENTRY = re.compile(r"registry-[0-9a-f]{32}\.json")


def _fail(err: TextIO, message: str) -> int:
    say(err, "menda-keyring: " + " ".join(message.split()))
    return EXIT_FAILURE


def _profile_name(profile: str | None, env: Mapping[str, str]) -> str:
    if profile is not None and profile.strip():
        return profile.strip()
    return (env.get(ENV_PROFILE_ID) or "").strip() or DEFAULT_PROFILE


@contextlib.contextmanager
def _uninterrupted() -> Iterator[None]:
    """Hold off Ctrl-C while files are written: they are written whole, or not at all.

    An interrupt that arrives meanwhile is dropped; the login is complete by then.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: None)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _forget_registry_tokens(cache: TokenCache, identity_key: str) -> int:
    """Delete our cached CodeArtifact tokens of ``identity_key``; how many went."""
    try:
        names = sorted(
            p.name for p in cache.entries_dir.iterdir() if _REGISTRY_ENTRY.fullmatch(p.name)
        )
    except OSError:
        return 0
    forgotten = 0
    for name in names:
        key = name[: -len(".json")]
        entry = cache.read_entry(key)
        if entry is not None and entry.get("identity") == identity_key:
            cache.delete(key)
            if not cache.path_for(key).exists():
                forgotten += 1
    return forgotten


def _m2m_environment(env: Mapping[str, str]) -> bool:
    return all(
        (env.get(name) or "").strip() for name in (ENV_CLIENT_ID, ENV_CLIENT_SECRET, ENV_HOST)
    )


def _profile_for_login(
    name: str, host: str | None, env: Mapping[str, str], err: TextIO
) -> tuple[Profile | None, bool]:
    """The profile to log in with, and whether it must be created; (None, _) after a
    message on ``err``."""
    path = default_config_path(env)
    try:
        profile = load_profile(name, path=path, environ=env)
    except (ConfigFileNotFoundError, ProfileNotFoundError) as exc:
        if host is None:
            if isinstance(exc, ConfigFileNotFoundError):
                _fail(
                    err,
                    f"Menda config file not found: {path}, so there is no profile '{name}'. "
                    "Pass --host URL (your menda cloud URL) to create it for a user login, "
                    "or run `menda auth configure`.",
                )
            else:
                _fail(err, f"{exc.message} Or pass --host URL to create it for a user login.")
            return None, False
        # Checked now, written only once the user has approved.
        return add_u2m_profile(name, host, path=path, environ=env, dry_run=True), True
    if profile.auth_type == "m2m":
        _fail(
            err,
            f"Profile '{name}' in {path} is an M2M profile (auth_type = m2m): it signs in "
            "with its client id and secret, and needs no login. Log in with a u2m profile "
            "(--profile NAME; with --host URL to create one).",
        )
        return None, False
    if host is not None:
        wanted = normalize_host(host, setting="--host")
        if wanted != profile.host:
            _fail(
                err,
                f"Profile '{name}' in {path} has host {profile.host}, not {wanted}; not "
                "changing it. Leave out --host, choose another --profile, or change the "
                "host with `menda auth configure`.",
            )
            return None, False
    return profile, False


def login(
    profile: str | None = None,
    host: str | None = None,
    *,
    browser: bool = True,
    environ: Mapping[str, str] | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """``menda-keyring login``: log a user in with the device flow; the exit status."""
    env = os.environ if environ is None else environ
    out = sys.stdout if stdout is None else stdout
    err = sys.stderr if stderr is None else stderr
    try:
        name = _profile_name(profile, env)
        return _login(name, host, browser=browser, env=env, out=out, err=err)
    except KeyboardInterrupt:
        say(err, "menda-keyring: login cancelled; nothing was written.")
        return EXIT_INTERRUPTED
    except MendaError as exc:
        return _fail(err, exc.message)


def _login(
    name: str,
    host: str | None,
    *,
    browser: bool,
    env: Mapping[str, str],
    out: TextIO,
    err: TextIO,
) -> int:
    from menda.cloud_client import DeviceLogin
    from menda.keyring import __version__

    if _m2m_environment(env):
        return _fail(
            err,
            f"{ENV_CLIENT_ID}, {ENV_CLIENT_SECRET} and {ENV_HOST} are set: installers use "
            "that M2M identity, not a user login. Unset them to log in as a user.",
        )
    profile, create = _profile_for_login(name, host, env, err)
    if profile is None:
        return EXIT_FAILURE
    cache = TokenCache(environ=env)
    logins = cache.logins
    state = logins.state()
    if state.exists and not state.parses:
        # Found out now, not after the user has approved.
        return _fail(
            err,
            f"The Menda CLI's token file {logins.path} {state.problem}, so the login could "
            "not be saved; it holds the CLI's logins and is left alone. Move it away, then "
            "log in again.",
        )
    identity = Identity(
        host=profile.host,
        auth_type="u2m",
        cache_key=f"u2m-profile:{name}",
        source=f"profile:{name}",
        profile=name,
        config_path=profile.path,
    )
    say(err, f"Logging in to {profile.host} (profile '{name}').")
    countdown = Countdown(err, tty=err.isatty())
    with DeviceLogin(identity, user_agent_extra=f"menda-keyring/{__version__}") as flow:
        authorization = flow.start()
        show(err, authorization, browser=browser and can_open_browser(env))
        try:
            result = flow.wait(authorization, on_tick=countdown)
        finally:
            countdown.close()

    with _uninterrupted():
        if create:
            try:
                add_u2m_profile(name, profile.host, path=profile.path, environ=env)
            except MendaConfigError as exc:
                return _fail(err, f"{exc.message} The login was not saved.")
            say(err, f"Created profile '{name}' in {profile.path}.")
        with logins.lock():
            stored = logins.store(name, result)
        if not stored:
            return _fail(
                err,
                f"Could not write the login to {logins.path}: check that the directory is "
                "writable and the file is the Menda CLI's token file. The login was not saved.",
            )
        # A new login may be another user: tokens obtained with the old one must go.
        _forget_registry_tokens(cache, identity.cache_key)
    say(out, f"Logged in with profile '{name}' ({profile.host}); the login is in {logins.path}.")
    return EXIT_OK


def logout(
    profile: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """``menda-keyring logout``: forget one profile's login; the exit status."""
    env = os.environ if environ is None else environ
    out = sys.stdout if stdout is None else stdout
    err = sys.stderr if stderr is None else stderr
    name = _profile_name(profile, env)
    cache = TokenCache(environ=env)
    logins = cache.logins
    state = logins.state()
    if state.exists and not state.parses:
        return _fail(
            err,
            f"Cannot log out of profile '{name}': the Menda CLI's token file {logins.path} "
            f"{state.problem}; it was left as it is.",
        )
    had_login = name in state.profiles
    with _uninterrupted():
        if had_login:
            with logins.lock():
                logins.remove(name)
        forgotten = _forget_registry_tokens(cache, f"u2m-profile:{name}")
    if had_login and name in logins.state().profiles:
        return _fail(
            err,
            f"Could not rewrite {logins.path}: the login of profile '{name}' is still there. "
            "Check that the directory is writable.",
        )
    if had_login:
        message = f"Logged out of profile '{name}': removed its login from {logins.path}"
    else:
        message = f"No login for profile '{name}' in {logins.path}"
    if forgotten:
        plural = "s" if forgotten != 1 else ""
        message += f"; deleted {forgotten} cached CodeArtifact token{plural}"
    say(out, message + ".")
    return EXIT_OK
