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
:meth:`FakeCodeArtifact.installer_env`. What it serves (repositories, their
indexes and files) is kept in ``_repositories.py``.
"""

from __future__ import annotations

import logging
import os
import re
from typing import TYPE_CHECKING, Protocol
from urllib.parse import unquote, urlsplit

from menda.testing._pypi_index import (
    Repository,
    aws_basic_token,
    read_upload,
    response,
    serve_simple,
)
from menda.testing._repositories import Repositories
from menda.testing.proxy import ProxyRequest, ProxyResponse, ProxyServer, RequestLog

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from pathlib import Path
    from types import TracebackType

    from menda.testing._pypi_index import SimpleIndex

__all__ = ["FakeCodeArtifact", "RegistryTokenValidator", "Repository"]

log = logging.getLogger(__name__)


class RegistryTokenValidator(Protocol):
    """What the repository asks of the menda cloud emulator."""

    def validate_registry_token(self, token: str, *, domain: str, owner: str, region: str) -> bool:
        """Whether ``token`` is a live registry token minted for this domain, owner and region."""
        ...


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
        self._repos = Repositories()
        self._proxy = ProxyServer(self, host=host, port=port)

    # -- life cycle ------------------------------------------------------------

    def start(self) -> FakeCodeArtifact:
        self._proxy.start()
        return self

    def stop(self) -> None:
        self._proxy.stop()
        self._repos.clear()

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
        return self._repos.add(domain, owner, region, repo).index_url

    def repository(self, index_url: str | Repository) -> Repository:
        """The repository behind an index URL (as :meth:`add_repository` returned)."""
        return self._repos.find(index_url)

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
        return self._repos.add_wheel(
            self.repository(index_url),
            name,
            version,
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
        return self._repos.add_wheel(
            None,
            name,
            version,
            dependencies=dependencies,
            requires_python=requires_python,
            modules=modules,
        )

    def files(self, index_url: str | Repository, name: str | None = None) -> list[str]:
        """File names served by a repository (of one project when ``name`` is given)."""
        return self._repos.files(self.repository(index_url), name)

    def copy_file(self, index_url: str | Repository, filename: str, dest: Path) -> Path:
        """Copy a served file (e.g. an upload) to ``dest`` and return the copy's path."""
        return self._repos.copy_file(self.repository(index_url), filename, dest)

    # -- the ProxyApplication side ----------------------------------------------

    def serves(self, scheme: str, host: str, port: int) -> bool:
        if self._repos.realm(host) is not None:
            return port == (443 if scheme == "https" else 80)
        return scheme == "http" and self._is_self(host, port)

    def _is_self(self, host: str, port: int) -> bool:
        return port == self._proxy.port and host in {"127.0.0.1", "localhost", self._proxy.host}

    def handle(self, request: ProxyRequest) -> ProxyResponse:
        path = urlsplit(request.path).path
        realm = self._repos.realm(request.host)
        if realm is not None:
            return self._handle_codeartifact(request, realm, path)
        public_path = path == "/public/simple" or path.startswith("/public/simple/")
        if public_path and (request.via == "direct" or self._is_self(request.host, request.port)):
            index = self._repos.public_index()
            return serve_simple(request, index, path, self._repos.lock)
        return response(404, "Not Found")

    def _check_auth(self, request: ProxyRequest, realm: Repository) -> ProxyResponse | None:
        header = request.headers.get("Authorization")
        token = aws_basic_token(header)
        valid = False
        if token:
            try:
                valid = self._validator.validate_registry_token(
                    token, domain=realm.domain, owner=realm.owner, region=realm.region
                )
            except Exception:
                log.debug("registry token validator failed", exc_info=True)
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
            return response(404, "Not Found")
        repo_name, rest = unquote(match.group(1)), match.group(2) or ""
        index = self._repos.index_at(request.host, repo_name)
        if index is None:
            return response(404, f"Repository {repo_name} not found")
        if rest in ("", "/", "/legacy/"):
            if request.method != "POST":
                return response(405, "Method Not Allowed", headers=(("Allow", "POST"),))
            return self._upload(request, index)
        return serve_simple(request, index, path, self._repos.lock)

    def _upload(self, request: ProxyRequest, index: SimpleIndex) -> ProxyResponse:
        upload = read_upload(request)
        if isinstance(upload, ProxyResponse):
            return upload
        if not self._repos.store_upload(index, upload):
            return response(409, f"{upload.filename} already exists")
        log.debug("stored upload %s", upload.filename)
        return response(200, "OK")
