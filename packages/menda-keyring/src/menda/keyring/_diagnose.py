"""``menda-keyring diagnose``: why an installer does or does not get a CodeArtifact token.

The report says which versions are installed, whether keyring uses our backend,
which identity resolves (or the exact error), what the token cache holds for it
and, with a URL, what we take from that URL. ``--check`` also performs a real
exchange and lists every HTTP request with its status and time.

No secret is ever shown: no client secret, access, refresh or registry token,
nor anything derived from one; a token is only ever "present". A password in
the URL's userinfo is masked before the URL is echoed.

This module is imported only by the command line, never by the backend.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import urlsplit

from menda.core_auth import (
    ACCESS_TOKEN_MARGIN,
    ENV_LOG_LEVEL,
    REGISTRY_TOKEN_MARGIN,
    AccessToken,
    Identity,
    RegistryToken,
    TokenCache,
    format_time,
    normalize_host,
    registry_cache_key,
    resolve_identity,
    utcnow,
)
from menda.error import MendaConfigError, MendaError
from menda.keyring._service import CodeArtifactService, parse_service

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from pathlib import Path

__all__ = ["diagnose", "render_text", "run"]

#: Distributions whose versions the report lists.
DISTRIBUTIONS = (
    "keyring",
    "menda-keyring",
    "menda-core-auth",
    "menda-cloud-client",
    "menda-error",
)

EXIT_OK = 0
EXIT_PROBLEM = 1

# --------------------------------------------------------------------------- log capture


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def _capture(environ: Mapping[str, str]) -> Iterator[_Collector]:
    """Collect every record of the ``menda`` loggers (our own trace, not printed).

    With ``MENDA_LOG_LEVEL`` set, records at that level also go to stderr, as in the backend.
    """
    logger = logging.getLogger("menda")
    collector = _Collector()
    saved = (logger.level, logger.propagate)
    stream: logging.Handler | None = None
    requested = environ.get(ENV_LOG_LEVEL, "").strip().upper()
    level = logging.getLevelName(requested) if requested else None
    if isinstance(level, int):
        stream = logging.StreamHandler(sys.stderr)
        stream.setLevel(level)
        stream.setFormatter(logging.Formatter("menda-keyring: %(message)s"))
        logger.addHandler(stream)
    logger.addHandler(collector)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield collector
    finally:
        logger.removeHandler(collector)
        if stream is not None:
            logger.removeHandler(stream)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception:  # a malformed record must not break the report
        return str(record.msg)


# --------------------------------------------------------------------------- helpers


def _in(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    sign = "" if seconds >= 0 else "-"
    seconds = abs(seconds)
    if seconds >= 3600:
        return f"{sign}{seconds // 3600} h {seconds % 3600 // 60} min"
    if seconds >= 60:
        return f"{sign}{seconds // 60} min"
    return f"{sign}{seconds} s"


def _error(exc: BaseException) -> dict[str, str]:
    if isinstance(exc, MendaError):
        return {"class": type(exc).__name__, "message": str(exc)}
    # Not ours to word, and its text may quote anything (a secret included).
    return {
        "class": type(exc).__name__,
        "message": f"unexpected {type(exc).__name__}: rerun with MENDA_LOG_LEVEL=debug "
        "for the trace, and report it",
    }


def mask_url(url: str) -> str:
    """``url`` with a password in its userinfo replaced by ``***``."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if not password or "@" not in parts.netloc:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return parts._replace(netloc=f"{user}:***@{hostport}").geturl()


# --------------------------------------------------------------------------- sections


def _versions() -> dict[str, Any]:
    from importlib import metadata

    packages: dict[str, str | None] = {}
    for name in DISTRIBUTIONS:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    return {
        "python": f"{platform.python_version()} ({platform.python_implementation()})",
        "executable": sys.executable,
        "platform": platform.platform(),
        "packages": packages,
    }


def _describe(backend: object) -> str:
    cls = type(backend)
    priority: object
    try:
        priority = getattr(backend, "priority", None)
    except Exception:  # keyring's priority may raise for a backend that is not viable
        priority = "not viable"
    return f"{cls.__module__}.{cls.__qualname__} (priority {priority})"


def _backend(environ: Mapping[str, str]) -> dict[str, Any]:
    """Whether ``keyring.get_keyring()`` answers through our backend, and if not, why."""
    from importlib import metadata

    import keyring
    from keyring.backends.chainer import ChainerBackend
    from keyring.util import platform_
    from menda.keyring.backend import MendaCodeArtifactKeyring

    report: dict[str, Any] = {}
    entry_points = metadata.entry_points(group="keyring.backends")
    report["registered"] = any(
        ep.value.split(":")[0] == "menda.keyring.backend" for ep in entry_points
    )
    report["config_file"] = str(platform_.config_root() / "keyringrc.cfg")
    env_backend = environ.get("PYTHON_KEYRING_BACKEND")
    report["python_keyring_backend"] = env_backend
    try:
        selected = keyring.get_keyring()
    except Exception as exc:  # a broken keyringrc.cfg or PYTHON_KEYRING_BACKEND
        report["selected"] = None
        report["used"] = "no"
        report["error"] = _error(exc)
        report["reason"] = "keyring could not load a backend: " + str(exc)
        return report
    report["selected"] = _describe(selected)
    if isinstance(selected, MendaCodeArtifactKeyring):
        report["used"] = "directly"
        return report
    if isinstance(selected, ChainerBackend):
        chain = list(selected.backends)
        report["chain"] = [_describe(b) for b in chain]
        ours = [i for i, b in enumerate(chain) if isinstance(b, MendaCodeArtifactKeyring)]
        if ours:
            report["used"] = "through the chainer"
            report["position"] = ours[0] + 1
            return report
    report["used"] = "no"
    reasons = []
    if env_backend:
        reasons.append(f"PYTHON_KEYRING_BACKEND={env_backend} selects another backend")
    if (platform_.config_root() / "keyringrc.cfg").is_file():
        reasons.append(f"{report['config_file']} may name another default-keyring")
    if not report["registered"]:
        reasons.append(
            "the keyring.backends entry point of menda-keyring is not installed in "
            f"this Python ({sys.executable}): install menda-keyring next to keyring"
        )
    if not reasons:
        reasons.append("another backend was chosen over it")
    report["reason"] = "; ".join(reasons)
    return report


def _identity(environ: Mapping[str, str]) -> tuple[Identity | None, dict[str, Any]]:
    try:
        identity = resolve_identity(environ)
    except Exception as exc:  # the diagnosis must go on, whatever the error
        return None, {"ok": False, "error": _error(exc)}
    return identity, {
        "ok": True,
        "source": identity.source,
        "auth_type": identity.auth_type,
        "host": identity.host,
        "profile": identity.profile,
        "client_id": identity.client_id,
        "cache_key": identity.cache_key,
        "config_path": None if identity.config_path is None else str(identity.config_path),
    }


def _url(url: str) -> tuple[CodeArtifactService | None, dict[str, Any]]:
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
        username=username,
    )
    if username not in (None, "", "aws"):
        report["problem"] = (
            f"the URL gives the username {username!r}; AWS CodeArtifact requires 'aws', "
            "and menda-keyring answers nothing for any other username"
        )
    return service, report


def _expiry(
    state: dict[str, Any],
    expires_at: datetime,
    valid: bool,
    margin: timedelta,
    now: datetime,
) -> None:
    when = state["expires_at"] = format_time(expires_at)
    if valid:
        state["state"] = "valid"
        state["usable_until"] = format_time(expires_at - margin)
        state["detail"] = f"valid until {when} (used for {_in(expires_at - margin - now)} more)"
    elif expires_at <= now:
        state["state"] = "expired"
        state["detail"] = f"expired at {when} ({_in(now - expires_at)} ago)"
    elif expires_at - margin <= now:
        state["state"] = "expiring"
        state["detail"] = (
            f"expires at {when}, within the {_in(margin)} margin: a new one will be fetched"
        )
    else:
        state["state"] = "implausible"
        state["detail"] = f"expires at {when}, implausibly far ahead (clock wrong?): it is not used"


def _same_host(cached: object, host: str) -> bool:
    if not isinstance(cached, str):
        return False
    try:
        return normalize_host(cached, setting="cached host") == host
    except MendaConfigError:
        return False


def _entry_start(cache: TokenCache, key: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    path = cache.path_for(key)
    state: dict[str, Any] = {"key": key, "path": str(path)}
    if not path.exists():
        state.update(state="absent", detail="not cached")
        return state, None
    raw = cache.read_entry(key)
    if raw is None:
        state.update(
            state="unreadable",
            detail="cannot be read or is not a JSON object: treated as a miss",
        )
    return state, raw


def _access_entry(
    cache: TokenCache, identity: Identity, now: datetime
) -> tuple[dict[str, Any], AccessToken | None]:
    key = identity.cache_key
    state, raw = _entry_start(cache, key)
    if raw is None:
        return state, None
    client_id = identity.client_id
    token = cache.load_access_token(
        key, host=identity.host, client_id=client_id, auth_type=identity.auth_type
    )
    if token is None:
        if not _same_host(raw.get("host"), identity.host):
            why = f"written for host {raw.get('host')!r}, not {identity.host!r}"
        elif client_id is not None and raw.get("client_id") != client_id:
            why = f"written for client id {raw.get('client_id')!r}, not {client_id!r}"
        elif raw.get("auth_type") != identity.auth_type:
            why = f"written for auth type {raw.get('auth_type')!r}, not {identity.auth_type!r}"
        else:
            why = "a field is missing or mistyped (access_token, expires_at, host, auth_type)"
        state.update(state="mismatch", detail=f"not used: {why}")
        return state, None
    state["refresh_token"] = "present" if token.refresh_token else "absent"
    _expiry(state, token.expires_at, token.is_valid(now), ACCESS_TOKEN_MARGIN, now)
    return state, token


def _registry_entry(
    cache: TokenCache, identity: Identity, service: CodeArtifactService, now: datetime
) -> dict[str, Any]:
    key = registry_cache_key(
        identity.cache_key, identity.host, service.domain, service.domain_owner, service.region
    )
    state, raw = _entry_start(cache, key)
    if raw is None:
        return state
    wanted = (service.domain, service.domain_owner, service.region)
    token: RegistryToken | None = cache.load_registry_token(
        key, host=identity.host, identity=identity.cache_key, registry=wanted
    )
    if token is None:
        if not _same_host(raw.get("host"), identity.host):
            why = f"written for host {raw.get('host')!r}, not {identity.host!r}"
        elif raw.get("identity") != identity.cache_key:
            why = f"written for identity {raw.get('identity')!r}, not {identity.cache_key!r}"
        elif (raw.get("domain"), raw.get("domain_owner"), raw.get("region")) != wanted:
            why = "written for another domain, owner or region"
        else:
            why = "a field is missing or mistyped (token, expires_at, host, identity, domain)"
        state.update(state="mismatch", detail=f"not used: {why}")
        return state
    _expiry(state, token.expires_at, token.is_valid(now), REGISTRY_TOKEN_MARGIN, now)
    return state


def _login_problem(identity: Identity, cache: TokenCache, token: AccessToken | None) -> str | None:
    """For u2m: the exact NoCachedLoginError a token request would raise, if it must.

    Only asked when the answer is certain without the network (no usable token
    and nothing to refresh with): the client then fails before any request.
    """
    if identity.auth_type != "u2m":
        return None
    if token is not None and (token.is_valid() or (token.refresh_token and token.client_id)):
        return None
    from menda.cloud_client import MendaCloudClient

    try:
        with MendaCloudClient(identity, cache=cache, max_attempts=1) as client:
            client.access_token()
    except MendaError as exc:
        return f"{exc} [{type(exc).__name__}]"
    return None


# --------------------------------------------------------------------------- --check


class _FreshCache(TokenCache):
    """The user's cache, minus the entries ``--no-cache`` must not read or write.

    Registry tokens are always bypassed; M2M access tokens too (a client
    credentials grant changes nothing elsewhere). A U2M login stays: it is the
    only copy, and a refresh that rotates the refresh token must be written back.
    """

    def __init__(self, directory: Path, *, bypass_access: bool) -> None:
        super().__init__(directory)
        self._bypass_access = bypass_access

    def load_access_token(
        self,
        key: str,
        *,
        host: str,
        client_id: str | None = None,
        auth_type: str | None = None,
    ) -> AccessToken | None:
        if self._bypass_access:
            return None
        return super().load_access_token(key, host=host, client_id=client_id, auth_type=auth_type)

    def store_access_token(self, key: str, token: AccessToken) -> bool:
        if self._bypass_access:
            return False
        return super().store_access_token(key, token)

    def load_registry_token(
        self,
        key: str,
        *,
        host: str,
        identity: str,
        registry: tuple[str, str, str] | None = None,
    ) -> RegistryToken | None:
        return None

    def store_registry_token(self, key: str, token: RegistryToken) -> bool:
        return False


def _check(
    identity: Identity,
    cache: TokenCache,
    service: CodeArtifactService,
    collector: _Collector,
    *,
    no_cache: bool,
) -> dict[str, Any]:
    from menda.cloud_client import MendaCloudClient
    from menda.keyring.backend import _registry_request, _user_agent

    used_cache = (
        _FreshCache(cache.directory, bypass_access=identity.auth_type == "m2m")
        if no_cache
        else cache
    )
    first = len(collector.records)
    report: dict[str, Any] = {"no_cache": no_cache}
    start = time.monotonic()
    try:
        with MendaCloudClient(identity, cache=used_cache, user_agent_extra=_user_agent()) as client:
            credential = client.registry_token(_registry_request(service))
    except Exception as exc:
        report.update(ok=False, error=_error(exc))
    else:
        report.update(
            ok=True,
            token="present",  # noqa: S106 - a state, never the token
            username=credential.username,
            from_cache=credential.from_cache,
            expires_at=format_time(credential.expires_at),
        )
    report["elapsed_ms"] = round((time.monotonic() - start) * 1000)
    requests: list[dict[str, Any]] = []
    trace: list[str] = []
    for record in collector.records[first:]:
        if not record.name.startswith("menda.cloud_client"):
            continue
        text = _message(record)
        trace.append(text)
        request = getattr(record, "menda_request", None)
        if isinstance(request, dict):
            requests.append(dict(request))
    report["requests"] = requests
    report["trace"] = trace
    return report


# --------------------------------------------------------------------------- the report


def diagnose(
    url: str | None = None,
    *,
    check: bool = False,
    no_cache: bool = False,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The whole report as a JSON-ready dict; ``report["exit_status"]`` is the verdict."""
    env = os.environ if environ is None else environ
    problems: list[str] = []
    report: dict[str, Any] = {}
    with _capture(env) as collector:
        report["versions"] = _versions()
        backend = _backend(env)
        report["backend"] = backend
        if backend["used"] == "no":
            problems.append(
                f"keyring does not use menda-keyring: {backend.get('reason', 'unknown reason')}"
            )

        service: CodeArtifactService | None = None
        if url is not None:
            service, report["url"] = _url(url)
            if service is None:
                problems.append(f"the URL is not recognised: {report['url']['reason']}")
            elif "problem" in report["url"]:
                problems.append(report["url"]["problem"])

        identity, report["identity"] = _identity(env)
        if identity is None:
            error = report["identity"]["error"]
            problems.append(f"{error['message']} [{error['class']}]")
        else:
            cache = TokenCache(environ=env)
            now = utcnow()
            cache_report: dict[str, Any] = {
                "directory": str(cache.directory),
                "exists": cache.directory.is_dir(),
            }
            cache_report["access_token"], token = _access_entry(cache, identity, now)
            if service is not None:
                cache_report["registry_token"] = _registry_entry(cache, identity, service, now)
            report["cache"] = cache_report
            if not check:
                login = _login_problem(identity, cache, token)
                if login is not None:
                    problems.append(login)
            elif service is not None:
                report["check"] = _check(identity, cache, service, collector, no_cache=no_cache)
                if not report["check"]["ok"]:
                    error = report["check"]["error"]
                    problems.append(f"{error['message']} [{error['class']}]")
        if check and "check" not in report:
            report["check"] = {"ok": False, "skipped": "nothing to check with (see above)"}

        report["warnings"] = [
            _message(r) for r in collector.records if r.levelno >= logging.WARNING
        ]
    report["problems"] = problems
    report["ok"] = not problems
    report["exit_status"] = EXIT_OK if not problems else EXIT_PROBLEM
    return report


def _rows(rows: list[tuple[str, object]]) -> list[str]:
    return [f"  {label:<18} {value}" for label, value in rows if value is not None]


def render_text(report: Mapping[str, Any]) -> str:
    """The report for people: one section per question, no colours."""
    lines: list[str] = []
    versions = report["versions"]
    lines.append("Versions")
    rows: list[tuple[str, object]] = [
        ("python", versions["python"]),
        ("executable", versions["executable"]),
        ("platform", versions["platform"]),
    ]
    rows += [(name, v or "not installed") for name, v in versions["packages"].items()]
    lines += _rows(rows)

    backend = report["backend"]
    lines += ["", "Keyring backend"]
    rows = [
        ("selected", backend["selected"]),
        ("menda-keyring", "used " + backend["used"] if backend["used"] != "no" else "NOT used"),
    ]
    if backend.get("chain"):
        rows.append(("chain", f"{len(backend['chain'])} backends, in order:"))
    lines += _rows(rows)
    for number, name in enumerate(backend.get("chain", []), 1):
        lines.append(f"  {'':<18}   {number}. {name}")
    if backend["used"] == "no":
        lines += _rows(
            [
                ("why", backend.get("reason")),
                ("keyring config", backend["config_file"]),
                ("PYTHON_KEYRING_BACKEND", backend.get("python_keyring_backend")),
            ]
        )

    if "url" in report:
        url = report["url"]
        lines += ["", "URL"]
        rows = [("given", url["given"])]
        if url["recognised"]:
            rows += [
                ("recognised", "yes"),
                ("endpoint", url["endpoint"]),
                ("domain", url["domain"]),
                ("domain owner", url["domain_owner"]),
                ("region", url["region"]),
                ("repository", url["repository"] or "(none in the URL)"),
                ("format", url["format"] or "(none in the URL)"),
                ("username", url.get("username")),
                ("problem", url.get("problem")),
            ]
        else:
            rows += [("recognised", "no: not recognised by menda-keyring"), ("why", url["reason"])]
        lines += _rows(rows)

    identity = report["identity"]
    lines += ["", "Identity"]
    if identity["ok"]:
        lines += _rows(
            [
                ("source", identity["source"]),
                ("auth type", identity["auth_type"]),
                ("host", identity["host"]),
                ("client id", identity["client_id"]),
                ("cache key", identity["cache_key"]),
                ("config file", identity["config_path"]),
            ]
        )
    else:
        error = identity["error"]
        lines += _rows([("error", error["class"]), ("message", error["message"])])

    if "cache" in report:
        cache = report["cache"]
        lines += ["", "Token cache"]
        exists = "" if cache["exists"] else " (does not exist yet)"
        rows = [("directory", cache["directory"] + exists)]
        for label, name in (("access token", "access_token"), ("registry token", "registry_token")):
            entry = cache.get(name)
            if entry is None:
                continue
            detail = entry["detail"]
            if entry.get("refresh_token"):
                detail += f"; refresh token {entry['refresh_token']}"
            rows += [(label, entry["path"]), ("", detail)]
        lines += _rows(rows)

    if "check" in report:
        check = report["check"]
        bypassed = ", caches bypassed" if check.get("no_cache") else ""
        lines += ["", f"Check (live exchange){bypassed}"]
        if "skipped" in check:
            lines += _rows([("skipped", check["skipped"])])
        else:
            for request in check["requests"]:
                # A failed attempt's error is the same text as the result's message below.
                status = request["status"] if request["status"] is not None else "failed"
                lines.append(
                    f"  {request['method']} {request['url']} -> {status} in {request['ms']:.0f} ms"
                )
            if not check["requests"]:
                lines.append("  no request made")
            if check["ok"]:
                source = "from the cache" if check["from_cache"] else "from menda cloud"
                lines += _rows(
                    [
                        ("result", f"token present ({source}), username {check['username']}"),
                        ("expires at", check["expires_at"]),
                        ("took", f"{check['elapsed_ms']} ms, {len(check['requests'])} request(s)"),
                    ]
                )
            else:
                error = check["error"]
                lines += _rows(
                    [
                        ("result", f"failed [{error['class']}]"),
                        ("message", error["message"]),
                        ("took", f"{check['elapsed_ms']} ms"),
                    ]
                )

    if report["warnings"]:
        lines += ["", "Warnings"]
        lines += [f"  - {w}" for w in report["warnings"]]

    lines.append("")
    if report["ok"]:
        verdict = "a token was obtained" if "check" in report else "no problem found"
        lines.append(f"Result: OK, {verdict} (exit status {report['exit_status']})")
    else:
        count = len(report["problems"])
        lines.append(
            f"Result: {count} problem{'s' if count > 1 else ''} "
            f"(exit status {report['exit_status']})"
        )
        lines += [f"  - {p}" for p in report["problems"]]
    return "\n".join(lines) + "\n"


def run(
    url: str | None = None,
    *,
    check: bool = False,
    no_cache: bool = False,
    as_json: bool = False,
    stdout: TextIO | None = None,
) -> int:
    """Print the report (text, or one JSON object) and return the exit status."""
    out = sys.stdout if stdout is None else stdout
    report = diagnose(url, check=check, no_cache=no_cache)
    if as_json:
        out.write(json.dumps(report, indent=2) + "\n")
    else:
        out.write(render_text(report))
    out.flush()
    return int(report["exit_status"])
