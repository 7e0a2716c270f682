"""``menda-keyring diagnose``: why an installer does or does not get a CodeArtifact token.

The report says which versions are installed, whether keyring uses our backend,
which identity resolves (or the exact error), what the token cache holds for it
(for a user profile: the Menda CLI's login; for M2M: our access-token entry; for
a URL: our registry-token entry), and what we take from the URL. ``--check``
also calls menda cloud (``whoami`` and a live registry exchange) and lists every
HTTP request with its status and time.

No secret is ever shown, in text or JSON: no client secret, access, id, refresh
or registry token, nor anything derived from one; a token is only "present".

- ``install``: versions, and whether keyring picks our backend
- ``probes``: local facts (identity, URL, login, cache entries), no network
- ``check``: the live calls of ``--check``
- ``capture``: the ``menda`` log records (warnings, requests) during the run
- ``render``: the text report

Only the command line imports this package, never the backend.
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Any, TextIO

from menda.core_auth import TokenCache, utcnow
from menda.keyring.diagnose import install, probes
from menda.keyring.diagnose.capture import capture, warnings_in
from menda.keyring.diagnose.check import live_check
from menda.keyring.diagnose.common import problem_line
from menda.keyring.diagnose.render import render_text

if TYPE_CHECKING:
    from collections.abc import Mapping

    from menda.core_auth import Identity
    from menda.keyring._service import CodeArtifactService
    from menda.keyring.diagnose.capture import Collector

__all__ = ["EXIT_OK", "EXIT_PROBLEM", "diagnose", "render_text", "run"]

EXIT_OK = 0
EXIT_PROBLEM = 1


def _cache_section(
    identity: Identity,
    cache: TokenCache,
    service: CodeArtifactService | None,
    problems: list[str],
    *,
    check: bool,
) -> dict[str, Any]:
    now = utcnow()
    section: dict[str, Any] = {
        "directory": str(cache.directory),
        "exists": cache.directory.is_dir(),
        "entries_dir": str(cache.entries_dir),
        # Why our entries are not used (a directory others could write), or None.
        "problem": cache.problem,
    }
    if section["problem"] is not None:
        problems.append(f"the token cache is not used: {section['problem']}")
    if identity.auth_type == "u2m":
        section["login"], login = probes.login(cache, identity.profile or "", now)
        if not check:
            # With --check, the live calls say it themselves.
            problem = probes.login_problem(identity, cache, login, now)
            if problem is not None:
                problems.append(problem)
    else:
        section["access_token"] = probes.access_entry(cache, identity, now)
    if service is not None:
        section["registry_token"] = probes.registry_entry(cache, identity, service, now)
    return section


def _check_section(
    identity: Identity, cache: TokenCache, collector: Collector, problems: list[str]
) -> dict[str, Any]:
    section = live_check(identity, cache, collector)
    for step in ("bearer", "whoami", "exchange"):
        if "error" in section[step]:
            problems.append(problem_line(section[step]["error"]))
    return section


def diagnose(
    url: str | None = None,
    *,
    check: bool = False,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The whole report as a JSON-ready dict; ``report["exit_status"]`` is the verdict."""
    env = os.environ if environ is None else environ
    problems: list[str] = []
    report: dict[str, Any] = {}
    with capture(env) as collector:
        report["versions"] = install.versions()
        backend = report["backend"] = install.backend(env)
        if backend["used"] == "no":
            problems.append(
                f"keyring does not use menda-keyring: {backend.get('reason', 'unknown reason')}"
            )

        service: CodeArtifactService | None = None
        if url is not None:
            service, report["url"] = probes.service_url(url)
            if service is None:
                problems.append(f"the URL is not recognised: {report['url']['reason']}")
            else:
                problems += report["url"].get("problems", [])

        identity, report["identity"] = probes.identity(env)
        if identity is None:
            problems.append(problem_line(report["identity"]["error"]))
            if check:
                report["check"] = {"ok": False, "skipped": "no identity to check (see above)"}
        else:
            cache = TokenCache(environ=env)
            report["cache"] = _cache_section(identity, cache, service, problems, check=check)
            if check:
                report["check"] = _check_section(identity, cache, collector, problems)

        report["warnings"] = warnings_in(collector.records)
    report["problems"] = problems
    report["ok"] = not problems
    report["exit_status"] = EXIT_OK if not problems else EXIT_PROBLEM
    return report


def run(
    url: str | None = None,
    *,
    check: bool = False,
    as_json: bool = False,
    stdout: TextIO | None = None,
) -> int:
    """Print the report (text, or one JSON object) and return the exit status."""
    out = sys.stdout if stdout is None else stdout
    report = diagnose(url, check=check)
    out.write(json.dumps(report, indent=2) + "\n" if as_json else render_text(report))
    out.flush()
    return int(report["exit_status"])
