"""A PEP 503 simple index and ``twine upload``, as the fake CodeArtifact serves them."""

from __future__ import annotations

import base64
import binascii
import email.parser
import email.policy
import hashlib
import html
import re
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

from menda.testing.proxy import ProxyRequest, ProxyResponse
from menda.testing.wheels import normalize_name

__all__ = [
    "IndexFile",
    "Repository",
    "SimpleIndex",
    "Upload",
    "aws_basic_token",
    "read_upload",
    "response",
    "serve_simple",
    "split_index_url",
]

# Versions and file names may also carry a local version (+) or an epoch (!).
_FILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+!-]*$")
_HTML = "text/html; charset=utf-8"


@dataclass(frozen=True)
class Repository:
    """One CodeArtifact repository: ``<domain>-<owner>`` in ``region``, named ``name``."""

    domain: str
    owner: str
    region: str
    name: str

    @property
    def host(self) -> str:
        return f"{self.domain}-{self.owner}.d.codeartifact.{self.region}.amazonaws.com"

    @property
    def index_url(self) -> str:
        return f"https://{self.host}/pypi/{self.name}/simple/"

    @property
    def upload_url(self) -> str:
        """Where ``twine upload --repository-url`` posts."""
        return f"https://{self.host}/pypi/{self.name}/"

    @property
    def realm(self) -> str:
        return f"{self.domain}-{self.owner}"


@dataclass(frozen=True)
class IndexFile:
    filename: str
    version: str
    path: Path
    sha256: str
    requires_python: str | None


@dataclass
class SimpleIndex:
    """The packages of one simple index (a repository, or the public one)."""

    prefix: str  # "/pypi/<repo>/simple" or "/public/simple"
    directory: Path
    projects: dict[str, dict[str, IndexFile]] = field(default_factory=dict)

    def add(self, name: str, version: str, path: Path, requires_python: str | None) -> None:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        entry = IndexFile(path.name, version, path, digest, requires_python)
        self.projects.setdefault(normalize_name(name), {})[path.name] = entry


def split_index_url(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    match = re.fullmatch(r"/pypi/([^/]+)/(?:simple/?)?", parts.path)
    if parts.hostname is None or match is None:
        msg = f"not a CodeArtifact index URL: {url!r}"
        raise ValueError(msg)
    return parts.hostname.lower().rstrip("."), match.group(1)


def aws_basic_token(header: str | None) -> str | None:
    """The password of HTTP Basic ``aws:<token>`` credentials (None for anything else)."""
    scheme, _, credentials = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, _, token = decoded.partition(":")
    return token if username == "aws" and token else None


def response(status: int, text: str, *, headers: tuple[tuple[str, str], ...] = ()) -> ProxyResponse:
    return ProxyResponse(status, text.encode() + b"\n", headers=headers)


def serve_simple(
    request: ProxyRequest, index: SimpleIndex, path: str, lock: threading.Lock
) -> ProxyResponse:
    if request.method not in ("GET", "HEAD"):
        return response(405, "Method Not Allowed", headers=(("Allow", "GET, HEAD"),))
    if not (path == index.prefix or path.startswith(index.prefix + "/")):
        return response(404, "Not Found")
    parts = [unquote(p) for p in path[len(index.prefix) :].split("/")]
    # parts: [""] for ".../simple", ["", ""] for ".../simple/", ["", name, ""] for a project.
    if parts == [""]:
        return _redirect(index.prefix + "/")
    if parts == ["", ""]:
        with lock:
            names = sorted(index.projects)
        links = "".join(
            f'<a href="{index.prefix}/{html.escape(n)}/">{html.escape(n)}</a><br/>\n' for n in names
        )
        return ProxyResponse(200, _page("Simple index", links), content_type=_HTML)
    name = parts[1]
    normalized = normalize_name(name)
    if len(parts) == 2 or (len(parts) == 3 and parts[2] == ""):
        if name != normalized or len(parts) == 2:
            return _redirect(f"{index.prefix}/{normalized}/")
        with lock:
            files = sorted(index.projects.get(normalized, {}).values(), key=lambda f: f.filename)
        if not files:
            return response(404, f"Project {normalized} not found")
        links = "".join(_link(index.prefix, normalized, f) for f in files)
        return ProxyResponse(200, _page(f"Links for {normalized}", links), content_type=_HTML)
    if len(parts) == 4:
        version, filename = parts[2], parts[3]
        with lock:
            entry = index.projects.get(normalized, {}).get(filename)
        if entry is None or entry.version != version:
            return response(404, "Not Found")
        try:
            data = entry.path.read_bytes()
        except OSError:
            return response(404, "Not Found")
        return ProxyResponse(200, data, content_type="application/octet-stream")
    return response(404, "Not Found")


class Upload(NamedTuple):
    name: str
    version: str
    filename: str
    data: bytes
    requires_python: str | None


def read_upload(request: ProxyRequest) -> Upload | ProxyResponse:
    """The file of a ``twine upload`` request, or the 400 answer to it."""
    content_type = request.headers.get("Content-Type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        return response(400, "Expected multipart/form-data")
    fields, upload = _parse_form(content_type, request.body)
    if fields.get(":action") != "file_upload":
        return response(400, "Unsupported :action")
    name, version = fields.get("name", ""), fields.get("version", "")
    if upload is None or not name or not version:
        return response(400, "Missing name, version or content")
    filename, data = upload
    if (
        not _FILE_RE.match(filename)
        or not _FILE_RE.match(version)
        or not filename.endswith((".whl", ".tar.gz", ".zip"))
    ):
        return response(400, "Invalid file name or version")
    digest = hashlib.sha256(data).hexdigest()
    expected = fields.get("sha256_digest")
    if expected and expected.lower() != digest:
        return response(400, "Digest mismatch")
    return Upload(name, version, filename, data, fields.get("requires_python") or None)


def _redirect(location: str) -> ProxyResponse:
    return ProxyResponse(301, b"", headers=(("Location", location),))


def _page(title: str, body: str) -> bytes:
    return (
        "<!DOCTYPE html>\n<html>\n<head>\n"
        '<meta name="pypi:repository-version" content="1.0">\n'
        f"<title>{html.escape(title)}</title>\n</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n{body}</body>\n</html>\n"
    ).encode()


def _link(prefix: str, name: str, entry: IndexFile) -> str:
    href = f"{prefix}/{name}/{entry.version}/{entry.filename}#sha256={entry.sha256}"
    attrs = f'href="{html.escape(href)}"'
    if entry.requires_python:
        attrs += f' data-requires-python="{html.escape(entry.requires_python)}"'
    return f"<a {attrs}>{html.escape(entry.filename)}</a><br/>\n"


def _parse_form(content_type: str, body: bytes) -> tuple[dict[str, str], tuple[str, bytes] | None]:
    """Parse multipart/form-data with the email package (``cgi`` is gone in 3.13)."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    fields: dict[str, str] = {}
    upload: tuple[str, bytes] | None = None
    if not isinstance(message, EmailMessage) or not message.is_multipart():
        return fields, None
    for part in message.iter_parts():
        field_name = part.get_param("name", header="content-disposition")
        if not isinstance(field_name, str):
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if field_name == "content" and filename:
            upload = (filename, data)
        else:
            fields.setdefault(field_name, data.decode("utf-8", "replace"))
    return fields, upload
