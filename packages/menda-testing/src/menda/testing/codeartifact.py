"""A fake AWS CodeArtifact PyPI repository, reached by its genuine host name.

:class:`FakeCodeArtifact` serves PEP 503 simple pages and files at
``https://<domain>-<owner>.d.codeartifact.<region>.amazonaws.com/pypi/<repo>/simple/``
behind HTTP Basic ``aws:<token>``, where the token is whatever the validator
(the menda cloud emulator) says is a live registry token for that domain,
owner and region; anything else gets 401 with
``WWW-Authenticate: Basic realm="<domain>-<owner>"``. It accepts ``twine
upload`` (``POST /pypi/<repo>/``), and serves an unauthenticated stand-in for
PyPI at :attr:`FakeCodeArtifact.public_index_url`. Installers reach it through
the forward proxy of :mod:`menda.testing.proxy` on the same port; see
:meth:`FakeCodeArtifact.installer_env`.
"""

from __future__ import annotations

import base64
import binascii
import email.parser
import email.policy
import hashlib
import html
import logging
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType
from typing import Protocol
from urllib.parse import unquote, urlsplit

from menda.testing.proxy import ProxyRequest, ProxyResponse, ProxyServer, RequestLog
from menda.testing.wheels import build_wheel, normalize_name

__all__ = ["FakeCodeArtifact", "RegistryTokenValidator", "Repository"]

log = logging.getLogger(__name__)

_SEGMENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# Versions and file names may also carry a local version (+) or an epoch (!).
_FILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+!-]*$")
_HTML = "text/html; charset=utf-8"


class RegistryTokenValidator(Protocol):
    """What the repository asks of the menda cloud emulator."""

    def validate_registry_token(self, token: str, *, domain: str, owner: str, region: str) -> bool:
        """Whether ``token`` is a live registry token minted for this domain, owner and region."""
        ...


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
class _File:
    filename: str
    version: str
    path: Path
    sha256: str
    requires_python: str | None


@dataclass
class _Index:
    """The packages of one simple index (a repository, or the public one)."""

    prefix: str  # "/pypi/<repo>/simple" or "/public/simple"
    directory: Path
    projects: dict[str, dict[str, _File]] = field(default_factory=dict)

    def add(self, name: str, version: str, path: Path, requires_python: str | None) -> None:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        entry = _File(path.name, version, path, digest, requires_python)
        self.projects.setdefault(normalize_name(name), {})[path.name] = entry


def _split_index_url(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    match = re.fullmatch(r"/pypi/([^/]+)/(?:simple/?)?", parts.path)
    if parts.hostname is None or match is None:
        msg = f"not a CodeArtifact index URL: {url!r}"
        raise ValueError(msg)
    return parts.hostname.lower().rstrip("."), match.group(1)


def _response(
    status: int, text: str, *, headers: tuple[tuple[str, str], ...] = ()
) -> ProxyResponse:
    return ProxyResponse(status, text.encode() + b"\n", headers=headers)


class FakeCodeArtifact:
    """The fake CodeArtifact repositories, a public index, and the proxy that reaches them.

    ``validator`` is usually the :class:`~menda.testing.emulator.MendaCloudEmulator`.
    Start it with ``with FakeCodeArtifact(cloud) as ca:`` or :meth:`start` /
    :meth:`stop`; repositories and packages may be added before or after start.
    Stopping deletes the package files and forgets the packages.
    """

    def __init__(
        self, validator: RegistryTokenValidator, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self._validator = validator
        self._lock = threading.Lock()
        self._repositories: dict[tuple[str, str], Repository] = {}
        self._indexes: dict[tuple[str, str], _Index] = {}
        self._realms: dict[str, Repository] = {}  # host -> any repository there (same realm)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._public: _Index | None = None
        self._proxy = ProxyServer(self, host=host, port=port)

    # -- life cycle ------------------------------------------------------------

    def start(self) -> FakeCodeArtifact:
        self._proxy.start()
        return self

    def stop(self) -> None:
        self._proxy.stop()
        with self._lock:
            for index in self._indexes.values():
                index.projects.clear()
            self._public = None
            if self._tmp is not None:
                self._tmp.cleanup()
                self._tmp = None

    def __enter__(self) -> FakeCodeArtifact:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what tests read ---------------------------------------------------------

    @property
    def port(self) -> int:
        return self._proxy.port

    @property
    def proxy_url(self) -> str:
        """``http://127.0.0.1:<port>``: HTTPS_PROXY for installers, ``proxies=`` for requests."""
        return self._proxy.url

    @property
    def ca_pem_path(self) -> Path:
        """The test CA certificate (PEM) that signs every repository host's certificate."""
        return self._proxy.ca_pem_path

    @property
    def public_index_url(self) -> str:
        """An unauthenticated simple index standing in for PyPI (plain http on loopback)."""
        return f"http://{self._proxy.host}:{self.port}/public/simple/"

    @property
    def requests(self) -> RequestLog:
        """Every request answered (CONNECTs included), with status and auth; never a token."""
        return self._proxy.request_log

    def count(self, **criteria: object) -> int:
        """Shortcut for ``requests.count``: ``ca.count(host=h, status=401)``."""
        return self._proxy.request_log.count(**criteria)

    def installer_env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """Environment for an installer subprocess: ``base`` (default os.environ), proxy, CA.

        ``NO_PROXY`` keeps loopback direct, so the menda cloud emulator and the
        public index are reached without the proxy.
        """
        env = dict(os.environ if base is None else base)
        for name in ("ALL_PROXY", "all_proxy"):
            env.pop(name, None)
        proxy = self.proxy_url
        ca = str(self.ca_pem_path)
        no_proxy = "127.0.0.1,localhost"
        env.update(
            HTTPS_PROXY=proxy,
            https_proxy=proxy,
            HTTP_PROXY=proxy,
            http_proxy=proxy,
            NO_PROXY=no_proxy,
            no_proxy=no_proxy,
            SSL_CERT_FILE=ca,
            PIP_CERT=ca,
            REQUESTS_CA_BUNDLE=ca,
        )
        return env

    # -- content ---------------------------------------------------------------

    def add_repository(self, domain: str, owner: str, region: str, repo: str) -> str:
        """Create (or find) a repository; returns its genuine index URL."""
        for part in (domain, owner, region, repo):
            if not _SEGMENT_RE.match(part):
                msg = f"not a valid domain, owner, region or repository name: {part!r}"
                raise ValueError(msg)
        repository = Repository(domain.lower(), owner, region.lower(), repo)
        key = (repository.host, repo)
        with self._lock:
            if key not in self._repositories:
                self._repositories[key] = repository
                self._indexes[key] = _Index(
                    f"/pypi/{repo}/simple", Path(f"repos/{repository.host}/{repo}")
                )
                self._realms.setdefault(repository.host, repository)
        return repository.index_url

    def repository(self, index_url: str | Repository) -> Repository:
        """The repository behind an index URL (as :meth:`add_repository` returned)."""
        if isinstance(index_url, Repository):
            return index_url
        key = _split_index_url(index_url)
        with self._lock:
            repository = self._repositories.get(key)
        if repository is None:
            msg = f"no such repository: {index_url!r} (call add_repository first)"
            raise KeyError(msg)
        return repository

    def add_package(
        self,
        index_url: str | Repository,
        name: str,
        version: str,
        *,
        dependencies: Iterable[str] = (),
        requires_python: str | None = None,
        modules: Mapping[str, str] | None = None,
    ) -> Path:
        """Build a tiny wheel and serve it from that repository; returns the wheel's path."""
        repository = self.repository(index_url)
        with self._lock:
            index = self._indexes[(repository.host, repository.name)]
            return self._add(
                index,
                name=name,
                version=version,
                dependencies=dependencies,
                requires_python=requires_python,
                modules=modules,
            )

    def add_public_package(
        self,
        name: str,
        version: str,
        *,
        dependencies: Iterable[str] = (),
        requires_python: str | None = None,
        modules: Mapping[str, str] | None = None,
    ) -> Path:
        """Build a tiny wheel and serve it without authentication at :attr:`public_index_url`."""
        with self._lock:
            return self._add(
                self._public_index(),
                name=name,
                version=version,
                dependencies=dependencies,
                requires_python=requires_python,
                modules=modules,
            )

    def files(self, index_url: str | Repository, name: str | None = None) -> list[str]:
        """File names served by a repository (of one project when ``name`` is given)."""
        repository = self.repository(index_url)
        with self._lock:
            index = self._indexes[(repository.host, repository.name)]
            projects = (
                [index.projects.get(normalize_name(name), {})]
                if name is not None
                else list(index.projects.values())
            )
            return sorted(filename for files in projects for filename in files)

    def _public_index(self) -> _Index:
        if self._public is None:
            self._public = _Index("/public/simple", Path("public"))
        return self._public

    def _storage(self, index: _Index) -> Path:
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="menda-codeartifact-")
        directory = Path(self._tmp.name) / index.directory
        directory.mkdir(parents=True, exist_ok=True)
        return directory

    def _add(
        self,
        index: _Index,
        *,
        name: str,
        version: str,
        dependencies: Iterable[str],
        requires_python: str | None,
        modules: Mapping[str, str] | None,
    ) -> Path:
        path = build_wheel(
            self._storage(index),
            name,
            version,
            dependencies=tuple(dependencies),
            modules=modules,
            requires_python=requires_python,
        )
        index.add(name, version, path, requires_python)
        return path

    # -- the ProxyApplication side ----------------------------------------------

    def serves(self, scheme: str, host: str, port: int) -> bool:
        with self._lock:
            if host in self._realms:
                return port == (443 if scheme == "https" else 80)
        return scheme == "http" and self._is_self(host, port)

    def _is_self(self, host: str, port: int) -> bool:
        return port == self._proxy.port and host in {"127.0.0.1", "localhost", self._proxy.host}

    def handle(self, request: ProxyRequest) -> ProxyResponse:
        path = urlsplit(request.path).path
        with self._lock:
            realm = self._realms.get(request.host)
        if realm is not None:
            return self._handle_codeartifact(request, realm, path)
        public_path = path == "/public/simple" or path.startswith("/public/simple/")
        if public_path and (request.via == "direct" or self._is_self(request.host, request.port)):
            with self._lock:
                index = self._public_index()
            return self._serve_simple(request, index, path)
        return _response(404, "Not Found")

    def _check_auth(self, request: ProxyRequest, realm: Repository) -> ProxyResponse | None:
        header = request.headers.get("Authorization")
        valid = False
        if header is not None:
            scheme, _, credentials = header.partition(" ")
            if scheme.lower() == "basic":
                try:
                    decoded = base64.b64decode(credentials.strip(), validate=True).decode()
                except (binascii.Error, UnicodeDecodeError):
                    decoded = ""
                username, _, token = decoded.partition(":")
                if username == "aws" and token:
                    try:
                        valid = self._validator.validate_registry_token(
                            token, domain=realm.domain, owner=realm.owner, region=realm.region
                        )
                    except Exception:
                        log.debug("registry token validator failed", exc_info=True)
                        valid = False
        if valid:
            return None
        return ProxyResponse(
            401,
            b"Unauthorized\n",
            headers=(("WWW-Authenticate", f'Basic realm="{realm.realm}"'),),
            auth_presented=header is not None,
        )

    def _handle_codeartifact(
        self, request: ProxyRequest, realm: Repository, path: str
    ) -> ProxyResponse:
        refusal = self._check_auth(request, realm)
        if refusal is not None:
            return refusal
        response = self._route_codeartifact(request, path)
        return ProxyResponse(
            response.status,
            response.body,
            headers=response.headers,
            content_type=response.content_type,
            auth_presented=True,
            auth_valid=True,
        )

    def _route_codeartifact(self, request: ProxyRequest, path: str) -> ProxyResponse:
        match = re.match(r"^/pypi/([^/]+)(/.*)?$", path)
        if match is None:
            return _response(404, "Not Found")
        repo_name, rest = unquote(match.group(1)), match.group(2) or ""
        key = (request.host, repo_name)
        with self._lock:
            index = self._indexes.get(key)
        if index is None:
            return _response(404, f"Repository {repo_name} not found")
        if rest in ("", "/", "/legacy/"):
            if request.method != "POST":
                return _response(405, "Method Not Allowed", headers=(("Allow", "POST"),))
            return self._upload(request, index)
        return self._serve_simple(request, index, path)

    def _serve_simple(self, request: ProxyRequest, index: _Index, path: str) -> ProxyResponse:
        if request.method not in ("GET", "HEAD"):
            return _response(405, "Method Not Allowed", headers=(("Allow", "GET, HEAD"),))
        if not (path == index.prefix or path.startswith(index.prefix + "/")):
            return _response(404, "Not Found")
        parts = [unquote(p) for p in path[len(index.prefix) :].split("/")]
        # parts: [""] for ".../simple", ["", ""] for ".../simple/", ["", name, ""] for a project.
        if parts == [""]:
            return _redirect(index.prefix + "/")
        if parts == ["", ""]:
            with self._lock:
                names = sorted(index.projects)
            links = "".join(
                f'<a href="{index.prefix}/{html.escape(n)}/">{html.escape(n)}</a><br/>\n'
                for n in names
            )
            return ProxyResponse(200, _page("Simple index", links), content_type=_HTML)
        name = parts[1]
        normalized = normalize_name(name)
        if len(parts) == 2 or (len(parts) == 3 and parts[2] == ""):
            if name != normalized or len(parts) == 2:
                return _redirect(f"{index.prefix}/{normalized}/")
            with self._lock:
                files = sorted(
                    index.projects.get(normalized, {}).values(), key=lambda f: f.filename
                )
            if not files:
                return _response(404, f"Project {normalized} not found")
            links = "".join(_link(index.prefix, normalized, f) for f in files)
            return ProxyResponse(200, _page(f"Links for {normalized}", links), content_type=_HTML)
        if len(parts) == 4:
            version, filename = parts[2], parts[3]
            with self._lock:
                entry = index.projects.get(normalized, {}).get(filename)
            if entry is None or entry.version != version:
                return _response(404, "Not Found")
            try:
                data = entry.path.read_bytes()
            except OSError:
                return _response(404, "Not Found")
            return ProxyResponse(200, data, content_type="application/octet-stream")
        return _response(404, "Not Found")

    def _upload(self, request: ProxyRequest, index: _Index) -> ProxyResponse:
        content_type = request.headers.get("Content-Type", "")
        if not content_type.lower().startswith("multipart/form-data"):
            return _response(400, "Expected multipart/form-data")
        fields, upload = _parse_form(content_type, request.body)
        if fields.get(":action") != "file_upload":
            return _response(400, "Unsupported :action")
        name, version = fields.get("name", ""), fields.get("version", "")
        if upload is None or not name or not version:
            return _response(400, "Missing name, version or content")
        filename, data = upload
        if (
            not _FILE_RE.match(filename)
            or not _FILE_RE.match(version)
            or not filename.endswith((".whl", ".tar.gz", ".zip"))
        ):
            return _response(400, "Invalid file name or version")
        digest = hashlib.sha256(data).hexdigest()
        expected = fields.get("sha256_digest")
        if expected and expected.lower() != digest:
            return _response(400, "Digest mismatch")
        with self._lock:
            existing = index.projects.get(normalize_name(name), {})
            if filename in existing:
                return _response(409, f"{filename} already exists")
            target = self._storage(index) / filename
            target.write_bytes(data)
            index.add(name, version, target, fields.get("requires_python") or None)
        log.debug("stored upload %s", filename)
        return _response(200, "OK")

    def copy_file(self, index_url: str | Repository, filename: str, dest: Path) -> Path:
        """Copy a served file (e.g. an upload) to ``dest`` and return the copy's path."""
        repository = self.repository(index_url)
        with self._lock:
            index = self._indexes[(repository.host, repository.name)]
            for files in index.projects.values():
                if filename in files:
                    return Path(shutil.copy(files[filename].path, dest))
        msg = f"no file {filename!r} in {repository.index_url}"
        raise KeyError(msg)


def _redirect(location: str) -> ProxyResponse:
    return ProxyResponse(301, b"", headers=(("Location", location),))


def _page(title: str, body: str) -> bytes:
    return (
        "<!DOCTYPE html>\n<html>\n<head>\n"
        '<meta name="pypi:repository-version" content="1.0">\n'
        f"<title>{html.escape(title)}</title>\n</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n{body}</body>\n</html>\n"
    ).encode()


def _link(prefix: str, name: str, entry: _File) -> str:
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
