"""What the fake CodeArtifact holds: repositories by host and name, a public index, the files."""

from __future__ import annotations

import re
import shutil
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from menda.testing._pypi_index import Repository, SimpleIndex, split_index_url
from menda.testing.wheels import build_wheel, normalize_name

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from menda.testing._pypi_index import Upload

__all__ = ["Repositories"]

_SEGMENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class Repositories:
    """The repositories, their simple indexes and the files they serve, in a temporary directory.

    ``lock`` guards all of it; the simple pages are served under it too.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._repositories: dict[tuple[str, str], Repository] = {}
        self._indexes: dict[tuple[str, str], SimpleIndex] = {}
        self._realms: dict[str, Repository] = {}  # host -> any repository there (same realm)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._public: SimpleIndex | None = None

    def add(self, domain: str, owner: str, region: str, repo: str) -> Repository:
        """Create (or find) a repository."""
        for part in (domain, owner, region, repo):
            if not _SEGMENT_RE.match(part):
                msg = f"not a valid domain, owner, region or repository name: {part!r}"
                raise ValueError(msg)
        repository = Repository(domain.lower(), owner, region.lower(), repo)
        key = (repository.host, repo)
        with self.lock:
            if key not in self._repositories:
                self._repositories[key] = repository
                self._indexes[key] = SimpleIndex(
                    f"/pypi/{repo}/simple", Path(f"repos/{repository.host}/{repo}")
                )
                self._realms.setdefault(repository.host, repository)
        return repository

    def find(self, index_url: str | Repository) -> Repository:
        """The repository behind an index URL; ``KeyError`` when there is none."""
        if isinstance(index_url, Repository):
            return index_url
        key = split_index_url(index_url)
        with self.lock:
            repository = self._repositories.get(key)
        if repository is None:
            msg = f"no such repository: {index_url!r} (call add_repository first)"
            raise KeyError(msg)
        return repository

    def realm(self, host: str) -> Repository | None:
        """A repository at ``host`` (all of a host's repositories share its realm), or None."""
        with self.lock:
            return self._realms.get(host)

    def index_at(self, host: str, name: str) -> SimpleIndex | None:
        with self.lock:
            return self._indexes.get((host, name))

    def public_index(self) -> SimpleIndex:
        with self.lock:
            return self._public_index()

    def add_wheel(
        self,
        repository: Repository | None,
        name: str,
        version: str,
        *,
        dependencies: Iterable[str],
        requires_python: str | None,
        modules: Mapping[str, str] | None,
    ) -> Path:
        """Build a tiny wheel and serve it from ``repository`` (None: the public index)."""
        with self.lock:
            if repository is None:
                index = self._public_index()
            else:
                index = self._indexes[(repository.host, repository.name)]
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

    def store_upload(self, index: SimpleIndex, upload: Upload) -> bool:
        """Serve an uploaded file; False when the index has a file of that name already."""
        with self.lock:
            existing = index.projects.get(normalize_name(upload.name), {})
            if upload.filename in existing:
                return False
            target = self._storage(index) / upload.filename
            target.write_bytes(upload.data)
            index.add(upload.name, upload.version, target, upload.requires_python)
        return True

    def files(self, repository: Repository, name: str | None) -> list[str]:
        """File names served by a repository (of one project when ``name`` is given)."""
        with self.lock:
            index = self._indexes[(repository.host, repository.name)]
            projects = (
                [index.projects.get(normalize_name(name), {})]
                if name is not None
                else list(index.projects.values())
            )
            return sorted(filename for files in projects for filename in files)

    def copy_file(self, repository: Repository, filename: str, dest: Path) -> Path:
        """Copy a served file to ``dest``; ``KeyError`` when the repository has no such file."""
        with self.lock:
            index = self._indexes[(repository.host, repository.name)]
            for files in index.projects.values():
                if filename in files:
                    return Path(shutil.copy(files[filename].path, dest))
        msg = f"no file {filename!r} in {repository.index_url}"
        raise KeyError(msg)

    def clear(self) -> None:
        """Forget every package and delete the files; the repositories stay."""
        with self.lock:
            for index in self._indexes.values():
                index.projects.clear()
            self._public = None
            if self._tmp is not None:
                self._tmp.cleanup()
                self._tmp = None

    def _public_index(self) -> SimpleIndex:
        if self._public is None:
            self._public = SimpleIndex("/public/simple", Path("public"))
        return self._public

    def _storage(self, index: SimpleIndex) -> Path:
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="menda-codeartifact-")
        directory = Path(self._tmp.name) / index.directory
        directory.mkdir(parents=True, exist_ok=True)
        return directory
