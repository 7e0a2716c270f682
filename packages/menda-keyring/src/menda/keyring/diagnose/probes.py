"""Local facts, no network: the identity, the URL, the CLI's login, our cache entries.

Every verdict comes from the layer that owns the rule: ``resolve_identity()`` for
who we are, ``TokenCache.check_*`` for why an entry is (not) used, ``CliTokenFile``
and ``Login`` for the CLI's login. This module only words their answers. No token
value ever enters a fact: a token is "present", an expiry is a time.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from menda.core_auth import (
    ACCESS_TOKEN_MARGIN,
    REGISTRY_TOKEN_MARGIN,
    format_time,
    resolve_identity,
)
from menda.error import MendaError
from menda.keyring._service import CodeArtifactService, parse_service
from menda.keyring.diagnose.common import (
    duration,
    error_fact,
    expiry_fact,
    mask_url,
    problem_line,
)

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from menda.core_auth import Identity, Login, TokenCache

__all__ = [
    "access_entry",
    "identity",
    "login",
    "login_problem",
    "registry_entry",
    "service_url",
]


def identity(environ: Mapping[str, str]) -> tuple[Identity | None, dict[str, Any]]:
    """The resolved identity (no secret), or the exact error resolution raised."""
    try:
        found = resolve_identity(environ)
    except Exception as exc:  # the diagnosis must go on, whatever the error
        return None, {"ok": False, "error": error_fact(exc)}
    return found, {
        "ok": True,
        "source": found.source,
        "auth_type": found.auth_type,
        "host": found.host,
        "profile": found.profile,
        "client_id": found.client_id,
        "cache_key": found.cache_key,
        "config_path": None if found.config_path is None else str(found.config_path),
    }


def service_url(url: str) -> tuple[CodeArtifactService | None, dict[str, Any]]:
    """What the backend takes from ``url``, or why it leaves the URL to other backends."""
    report: dict[str, Any] = {"given": mask_url(url)}
    service = parse_service(url)
    try:
        parts = urlsplit(url if "//" in url else "//" + url)
        host = parts.hostname or ""
        username = parts.username
    except ValueError:
        host, username = "", None
    if service is None:
        report["recognised"] = False
        if ".d.codeartifact." in host and host.rstrip(".").endswith("amazonaws.com"):
            report["reason"] = (
                f"{host!r} looks like AWS CodeArtifact but is not a repository endpoint "
                "<domain>-<12-digit owner>.d.codeartifact.<region>.amazonaws.com "
                "(or a VPC endpoint with /<format>/d/<domain>-<owner>/ in the path)"
            )
        elif host:
            report["reason"] = (
                f"{host!r} is not an AWS CodeArtifact repository endpoint, so "
                "menda-keyring leaves this URL to other keyring backends"
            )
        else:
            report["reason"] = "this is not a URL or host name that menda-keyring recognises"
        return None, report
    report.update(
        recognised=True,
        endpoint=service.endpoint,
        domain=service.domain,
        domain_owner=service.domain_owner,
        region=service.region,
        repository=service.repository,
        format=service.format,
        scheme="http" if url[:7].lower() == "http://" else "https",
        username=username,
    )
    problems: list[str] = []
    if report["scheme"] == "http":
        problems.append(
            "the URL is plain http://: menda-keyring gives no token for it (the installer "
            "would send the token in clear text); use https://"
        )
    if username not in (None, "", "aws"):
        problems.append(
            f"the URL gives the username {username!r}; AWS CodeArtifact requires 'aws', "
            "and menda-keyring answers nothing for any other username"
        )
    if problems:
        report["problems"] = problems
    return service, report


# --------------------------------------------------------------------------- the CLI's login


def _login_expiry(found: Login, now: datetime) -> dict[str, Any]:
    """The login's state, in the CLI's terms (``Login.is_valid`` decides)."""
    expires_at = found.expires_at
    fact: dict[str, Any] = {"expires_at": None if expires_at is None else format_time(expires_at)}
    if found.cached_at is None or expires_at is None:
        fact.update(state="expired", detail="never cached (cached_at is empty): treated as expired")
    elif found.is_from_the_future(now):
        fact.update(
            state="future",
            detail="saved more than a day in the future (is the system clock right?): "
            "treated as expired",
        )
    elif found.is_valid(now):
        left = duration(expires_at - now)
        fact.update(state="valid", detail=f"valid until {fact['expires_at']} ({left} left)")
    elif expires_at <= now:
        ago = duration(now - expires_at)
        fact.update(state="expired", detail=f"expired at {fact['expires_at']} ({ago} ago)")
    else:
        fact.update(
            state="expiring",
            detail=f"expires at {fact['expires_at']}, within the CLI's 1 min margin: "
            "treated as expired",
        )
    if fact["state"] != "valid":
        fact["detail"] += (
            "; it will be refreshed with its refresh token"
            if found.refresh_token
            else "; it holds no refresh token: run 'menda auth login'"
        )
    return fact


def login(cache: TokenCache, profile: str, now: datetime) -> tuple[dict[str, Any], Login | None]:
    """The Menda CLI's login for ``profile``: the file, and the login's state (never a token)."""
    logins = cache.logins
    state = logins.state()
    fact: dict[str, Any] = {
        "profile": profile,
        "path": str(state.path),
        "exists": state.exists,
        "parses": state.parses,
        "mode": None if state.mode is None else f"{state.mode:04o}",
        "profiles": list(state.profiles),
        "problem": state.problem,
    }
    if state.mode is not None and state.mode & 0o077 and os.name == "posix":
        fact["mode_note"] = f"other users can read it: chmod 600 {state.path}"
    if not state.exists:
        fact.update(
            state="absent",
            detail=f"no login: the file does not exist; run 'menda auth login' (profile "
            f"'{profile}')",
        )
        return fact, None
    if state.problem is not None:
        fact.update(state="unreadable", detail=f"no login: the file {state.problem}")
        return fact, None
    if profile not in state.profiles:
        others = ", ".join(repr(p) for p in state.profiles) or "none"
        fact.update(
            state="absent",
            detail=f"no login for profile '{profile}' in the file (it has: {others}); "
            "run 'menda auth login'",
        )
        return fact, None
    found = logins.load(profile)
    if found is None:
        fact.update(
            state="invalid",
            detail=f"the login for profile '{profile}' has a missing or bad value "
            "(access_token, expires_in, token_type or cached_at): it is not used",
        )
        return fact, None
    fact.update(
        has_refresh_token=bool(found.refresh_token),
        has_id_token=bool(found.id_token),
        presents="id token" if found.id_token else "access token",
        token_type=found.token_type,
    )
    fact.update(_login_expiry(found, now))
    return fact, found


def login_problem(
    found_identity: Identity, cache: TokenCache, found: Login | None, now: datetime
) -> str | None:
    """For u2m: the exact error a token request would raise, when that is certain offline.

    Only asked when there is no valid login and nothing to refresh it with: the
    client then fails before any request, with the message the backend prints.
    """
    if found_identity.auth_type != "u2m":
        return None
    if found is not None and (found.is_valid(now) or found.refresh_token):
        return None
    from menda.cloud_client import MendaCloudClient

    try:
        with MendaCloudClient(found_identity, cache=cache, max_attempts=1) as client:
            client.access_token()
    except MendaError as exc:
        return problem_line(error_fact(exc))
    return None


# --------------------------------------------------------------------------- our entries


def _entry_start(cache: TokenCache, key: str) -> dict[str, Any] | None:
    """The facts of an entry that is not there, or None when there is a file to check."""
    path = cache.path_for(key)
    if os.path.lexists(path):
        return None
    return {"key": key, "path": str(path), "state": "absent", "detail": "not cached"}


def _written_for(cache: TokenCache, key: str, names: tuple[str, ...]) -> dict[str, str]:
    """Who an unused entry was written for (hosts and ids, never a token)."""
    entry = cache.read_entry(key) or {}
    return {name: value for name in names if isinstance(value := entry.get(name), str)}


def access_entry(cache: TokenCache, found: Identity, now: datetime) -> dict[str, Any]:
    """The M2M access-token entry, and whether and until when it is used."""
    key = found.cache_key
    absent = _entry_start(cache, key)
    if absent is not None:
        return absent
    fact: dict[str, Any] = {"key": key, "path": str(cache.path_for(key))}
    token, reason = cache.check_access_token(key, host=found.host, client_id=found.client_id or "")
    if token is None:
        fact.update(state="unusable", detail=f"not used: {reason}")
        fact["written_for"] = _written_for(cache, key, ("host", "client_id"))
        return fact
    fact.update(
        expiry_fact(
            token.expires_at, valid=token.is_valid(now), now=now, margin=ACCESS_TOKEN_MARGIN
        )
    )
    return fact


def registry_entry(
    cache: TokenCache, found: Identity, service: CodeArtifactService, now: datetime
) -> dict[str, Any]:
    """The registry-token entry for ``service``, and whether and until when it is used."""
    parts = (service.domain, service.domain_owner, service.region)
    key = found.registry_key(*parts)
    absent = _entry_start(cache, key)
    if absent is not None:
        return absent
    fact: dict[str, Any] = {"key": key, "path": str(cache.path_for(key))}
    token, reason = cache.check_registry_token(
        key, host=found.host, identity=found.cache_key, registry=parts
    )
    if token is None:
        fact.update(state="unusable", detail=f"not used: {reason}")
        fact["written_for"] = _written_for(cache, key, ("host", "identity", "domain"))
        return fact
    fact.update(
        expiry_fact(
            token.expires_at, valid=token.is_valid(now), now=now, margin=REGISTRY_TOKEN_MARGIN
        )
    )
    return fact
