"""Shared pieces of the hardening tests: the real `keyring` CLI, the M2M client that
``m2m_env`` (tests/conftest.py) registers, and hostile servers on loopback (raw sockets,
so they can misbehave in ways no HTTP library allows)."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import trustme

from menda.testing import MendaHome, console_script

DOMAIN, OWNER, REGION, REPOSITORY = "menda-private", "058264169513", "eu-west-1", "menda-plugins"
ENDPOINT = f"{DOMAIN}-{OWNER}.d.codeartifact.{REGION}.amazonaws.com"
INDEX = f"https://{ENDPOINT}/pypi/{REPOSITORY}/simple/"
KEYRING = console_script("keyring")
MENDA_KEYRING = console_script("menda-keyring")

CLIENT_ID = "hardening-bot"
CLIENT_SECRET = "SECRET-client-7f1e"

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX files and signals")


@dataclass
class Finished:
    """A finished child process, with its peak memory."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float
    maxrss_kib: int | None = None

    @property
    def lines(self) -> list[str]:
        return self.stderr.splitlines()


class KeyringCLI:
    """``keyring <args>`` exactly as uv and pip spawn it (test modules cannot import conftest)."""

    path = KEYRING
    diagnose_path = MENDA_KEYRING

    def __call__(
        self, *args: str, env: dict[str, str], timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [KEYRING, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
        )

    def spawn(
        self, *args: str, env: dict[str, str], program: str = KEYRING
    ) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [program, *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def measured(
        self, *args: str, env: dict[str, str], timeout: float = 60, program: str = KEYRING
    ) -> Finished:
        """Run to the end and return, with its output, the child's own peak RSS (POSIX).

        The child is started by a small Python parent that reports its rusage: a child
        of this (large) process would count the memory it shared before exec.
        """
        import tempfile

        started = time.monotonic()
        with tempfile.TemporaryDirectory() as scratch:
            report = Path(scratch) / "rusage"
            argv = [program, *args]
            if sys.platform != "win32":
                argv = [sys.executable, "-c", _RUSAGE_PARENT, str(report), *argv]
            result = subprocess.run(
                argv, env=env, capture_output=True, text=True, timeout=timeout, check=False
            )
            maxrss = int(report.read_text()) if report.exists() else None
        return Finished(
            result.returncode, result.stdout, result.stderr, time.monotonic() - started, maxrss
        )


# Runs argv[2:] as its child (stdio inherited), writes the child's ru_maxrss in KiB to
# argv[1] and exits with the child's status.
_RUSAGE_PARENT = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
kib = usage.ru_maxrss // 1024 if sys.platform == "darwin" else usage.ru_maxrss
open(sys.argv[1], "w").write(str(kib))
sys.exit(os.waitstatus_to_exitcode(status))
"""


@pytest.fixture
def keyring_cli() -> KeyringCLI:
    return KeyringCLI()


@pytest.fixture
def kit() -> object:
    """This module: its helpers and constants (test modules cannot import a conftest)."""
    return sys.modules[__name__]


@pytest.fixture
def m2m_credentials() -> tuple[str, str]:
    """The client ``m2m_env`` registers: the hardening client, which ``Secrets`` knows."""
    return CLIENT_ID, CLIENT_SECRET


class _Silent(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.send_response(500)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def tls_host(tmp_path: Path) -> Iterator[str]:
    """An HTTPS server whose certificate comes from a CA nobody trusts."""
    ca = trustme.CA()
    server = HTTPServer(("127.0.0.1", 0), _Silent)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# ------------------------------------------------------------------------ hostile servers


@dataclass
class Request:
    """One request a hostile server received (secrets included: it is the attacker)."""

    method: str
    target: str
    headers: dict[str, str]

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.target).query)

    @property
    def endpoint(self) -> str:
        """``token``, ``registry`` or the path."""
        if self.path.endswith("/auth/oauth2/token"):
            return "token"
        if self.path.endswith("/auth/registry/token"):
            return "registry"
        return self.path


Handler = Callable[["Connection", Request], None]


@dataclass
class Connection:
    """The socket of one request, with helpers to answer it, well or badly."""

    sock: socket.socket
    stopping: threading.Event

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def head(self, status: int, headers: Mapping[str, str], reason: str = "X") -> bytes:
        lines = [f"HTTP/1.1 {status} {reason}", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        text = "\r\n".join(lines) + "\r\n\r\n"
        try:
            return text.encode("latin-1")  # what http.client decodes header bytes with
        except UnicodeEncodeError:
            return text.encode("utf-8")

    def answer(
        self,
        status: int,
        body: bytes | str | dict[str, object] = b"",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if isinstance(body, dict):
            body = json.dumps(body)
        data = body.encode() if isinstance(body, str) else body
        all_headers = {"Content-Type": "application/json", "Content-Length": str(len(data))}
        all_headers.update(headers or {})
        self.send(self.head(status, all_headers) + data)

    def hang(self) -> None:
        """Never answer (until the server stops)."""
        self.stopping.wait(120)

    def trickle(self, data: bytes, every: float = 1.0) -> None:
        """Send ``data`` one byte per ``every`` seconds."""
        for byte in data:
            if self.stopping.wait(every):
                return
            self.send(bytes([byte]))


class HostileServer:
    """A TCP server on 127.0.0.1; each connection's first request goes to ``handler``."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[Request] = []
        self.connections = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port = self._listener.getsockname()[1]
        self._open: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def count(self, endpoint: str | None = None) -> int:
        with self._lock:
            return sum(endpoint is None or r.endpoint == endpoint for r in self.requests)

    def _serve(self) -> None:
        self._listener.settimeout(0.1)  # so that stop() is noticed
        while not self._stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(None)
            with self._lock:
                self.connections += 1
                self._open.append(sock)
            threading.Thread(target=self._one, args=(sock,), daemon=True).start()

    def _one(self, sock: socket.socket) -> None:
        with contextlib.suppress(OSError), sock:
            sock.settimeout(30)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(65536)
                if not chunk:
                    return
                data += chunk
            head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
            request_line, *header_lines = head.split("\r\n")
            method, target, _ = request_line.split(" ", 2)
            headers = {}
            for line in header_lines:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            request = Request(method, target, headers)
            with self._lock:
                self.requests.append(request)
            self.handler(Connection(sock, self._stopping), request)

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(5)
        self._listener.close()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                    sock.close()


@pytest.fixture
def hostile() -> Iterator[Callable[[Handler], HostileServer]]:
    """``hostile(handler)`` starts a hostile server; all are stopped at teardown."""
    servers: list[HostileServer] = []

    def start(handler: Handler) -> HostileServer:
        server = HostileServer(handler)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


# Tokens a hostile menda cloud hands out: distinctive, so any leak is found.
HOSTILE_ACCESS = "HOSTILE-access-3d9a71c0"
HOSTILE_REGISTRY = "HOSTILE-registry-5a3f8812"
JWE_HEADER = "eyJ2ZXIiOjEsImlzdSI6MTczNzA2MzgyMCwiZW5jIjoiQTEyOEdDTSJ9"


def good_token(conn: Connection, request: Request) -> None:
    conn.answer(200, {"access_token": HOSTILE_ACCESS, "expires_in": 3600, "token_type": "Bearer"})


def good_registry(conn: Connection, request: Request) -> None:
    conn.answer(200, {"token": HOSTILE_REGISTRY, "expires_in": 43200})


def cloud(*, token: Handler = good_token, registry: Handler = good_registry) -> Handler:
    """A menda cloud whose two endpoints behave as given."""

    def handle(conn: Connection, request: Request) -> None:
        if request.endpoint == "token":
            token(conn, request)
        elif request.endpoint == "registry":
            registry(conn, request)
        else:
            conn.answer(404, {"detail": "Not Found"})

    return handle


def m2m_env_for(home: MendaHome, host: str, **extra: str | None) -> dict[str, str]:
    """The environment of a `keyring` child with M2M credentials for ``host``."""
    return home.env(
        MENDA_CLIENT_ID=CLIENT_ID, MENDA_CLIENT_SECRET=CLIENT_SECRET, MENDA_HOST=host, **extra
    )


@dataclass
class Secrets:
    """Values that must never show up anywhere."""

    values: set[str] = field(default_factory=lambda: {CLIENT_SECRET, HOSTILE_ACCESS})

    def leaked_in(self, *texts: str) -> list[str]:
        blob = "\n".join(texts)
        return sorted(s for s in self.values if s in blob)
