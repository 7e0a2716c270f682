"""Recognise keyring service names that are AWS CodeArtifact repository endpoints.

Installers ask keyring for a service named by a URL, a bare ``host``, ``host:port``
or ``scheme://host[:port]`` (docs/installers.md). A service is ours only when
its host is ``<domain>-<owner>.d.codeartifact.<region>.amazonaws.com`` (one
trailing dot allowed), or the VPC endpoint ``vpce-<id>.d.codeartifact.<region>.vpce.amazonaws.com``
with the domain and owner in the path (``/<format>/d/<domain>-<owner>/<repo>/...``).

This runs on every ``keyring`` call of every install, so it imports only ``re`` and
``typing`` (both already loaded by keyring itself), compiles its patterns on
first use, does no I/O and never raises. It is strict on purpose: anything that
does not match exactly is not ours, and the installer carries on without us. That
includes non-ASCII text (full-width dots, Cyrillic look-alikes), punycode,
whitespace and control characters, a CodeArtifact host in the userinfo, query or
fragment of another URL, a path on a bare host, and the AWS China suffix
``amazonaws.com.cn``, which the spec does not name.
"""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = ["CodeArtifactService", "parse_service"]

# Longer than any index URL an installer sends, short enough that matching is cheap.
MAX_SERVICE_LENGTH = 2048

# The package formats CodeArtifact serves; the first path segment names one.
FORMATS = frozenset({"pypi", "npm", "maven", "nuget", "swift", "ruby", "generic", "cargo"})

_REGION = r"[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]{2,16}-[1-9][0-9]?"
# CodeArtifact's own pattern (2 to 50 characters). A punycode label ("xn--") would
# display as Unicode in some tools: never ours.
_DOMAIN = r"(?!xn--)[a-z][a-z0-9-]{0,48}[a-z0-9]"
_OWNER = r"[0-9]{12}"
# RFC 3986 characters, ASCII only; a backslash or space is never part of a URL we accept.
_PCT = r"%[0-9a-f]{2}"
_UNRESERVED_SUB = r"[a-z0-9._~!$&'()*+,;=-]"
_USERINFO = rf"(?:{_UNRESERVED_SUB}|:|{_PCT})*"
_PATH = rf"(?:{_UNRESERVED_SUB}|[:@/]|{_PCT})*"
_QUERY = rf"(?:{_UNRESERVED_SUB}|[:@/?]|{_PCT})*"

# A bare host or host:port, or scheme://[userinfo@]host[:port][/path][?query][#fragment].
# Userinfo cannot hold "@", so "https://<codeartifact host>@evil.example/" puts
# evil.example where the host must be, and fails.
_SERVICE = rf"""
    (?:(?P<scheme>https?)://(?:{_USERINFO}@)?)?
    (?:
        (?P<domain>{_DOMAIN})-(?P<owner>{_OWNER})\.d\.codeartifact\.(?P<region>{_REGION})
        \.amazonaws\.com
      |
        (?P<vpce>vpce-[0-9a-f]{{8,17}}-[0-9a-z]{{8}}(?:-{_REGION}[a-z])?)
        \.d\.codeartifact\.(?P<vpce_region>{_REGION})\.vpce\.amazonaws\.com
    )
    \.?
    (?::(?P<port>[0-9]{{1,5}}))?
    (?P<rest>(?P<path>/{_PATH})?(?:\?{_QUERY})?(?:\#{_QUERY})?)
"""

# The "<domain>-<owner>" path segment of a VPC endpoint URL (paths are case-sensitive,
# and CodeArtifact domain names are lower case).
_PATH_DOMAIN = rf"(?P<domain>{_DOMAIN})-(?P<owner>{_OWNER})"
_REPOSITORY = r"[A-Za-z0-9][A-Za-z0-9._-]{1,99}"  # CodeArtifact's own pattern

_patterns: tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]] | None = None


def _compiled() -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    # Compiled on first use, not on import: importing the backend must stay cheap.
    global _patterns  # noqa: PLW0603
    if _patterns is None:
        _patterns = (
            re.compile(_SERVICE, re.ASCII | re.IGNORECASE | re.VERBOSE),
            re.compile(_PATH_DOMAIN, re.ASCII),
            re.compile(_REPOSITORY, re.ASCII),
        )
    return _patterns


class CodeArtifactService(NamedTuple):
    """The CodeArtifact repository a keyring service name points at."""

    # A NamedTuple rather than a frozen dataclass: building a dataclass costs
    # about 0.3 ms at import, and keyring imports this on every install.

    domain: str
    domain_owner: str
    region: str
    repository: str | None
    format: str | None
    endpoint: str


def parse_service(service: str) -> CodeArtifactService | None:
    """Return the CodeArtifact parts of ``service``, or None when it is not ours.

    Never raises, reads nothing and prints nothing.
    """
    if not isinstance(service, str) or not service or len(service) > MAX_SERVICE_LENGTH:
        return None
    if ".d.codeartifact." not in service.lower():
        # Nearly every call keyring gets is for another host: answer those
        # without compiling the pattern at all.
        return None
    service_pattern, path_domain_pattern, repository_pattern = _compiled()
    match = service_pattern.fullmatch(service)
    if match is None:
        return None
    if match["rest"] and match["scheme"] is None:
        return None  # a path, query or fragment belongs to a URL, never to a bare host
    port = match["port"]
    if port is not None and not 1 <= int(port) <= 65535:
        return None

    segments = match["path"].split("/")[1:] if match["path"] else []
    if any(segment in (".", "..") for segment in segments):
        # A server would resolve these to another repository (or, on a VPC
        # endpoint, another domain) than the one the path seems to name.
        if match["vpce"]:
            return None
        segments = []

    repo_format: str | None = None
    repository: str | None = None
    if match["vpce"]:
        # /<format>/d/<domain>-<owner>/<repo>/...: the host names no domain.
        if len(segments) < 3 or segments[0] not in FORMATS or segments[1] != "d":
            return None
        path_domain = path_domain_pattern.fullmatch(segments[2])
        if path_domain is None:
            return None
        domain, owner = path_domain["domain"], path_domain["owner"]
        region = match["vpce_region"].lower()
        if len(segments) >= 4 and repository_pattern.fullmatch(segments[3]):
            repo_format, repository = segments[0], segments[3]
        host = f"{match['vpce'].lower()}.d.codeartifact.{region}.vpce.amazonaws.com"
    else:
        domain, owner, region = match["domain"].lower(), match["owner"], match["region"].lower()
        if (
            len(segments) >= 2
            and segments[0] in FORMATS
            and repository_pattern.fullmatch(segments[1])
        ):
            repo_format, repository = segments[0], segments[1]
        host = f"{domain}-{owner}.d.codeartifact.{region}.amazonaws.com"
    return CodeArtifactService(
        domain=domain,
        domain_owner=owner,
        region=region,
        repository=repository,
        format=repo_format,
        endpoint=host,
    )
