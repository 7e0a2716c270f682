"""Shared pieces of the hardening tests: the real `keyring` CLI and an M2M set-up."""

from __future__ import annotations

import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
import trustme

from menda.testing.emulator import MendaCloudEmulator
from menda.testing.pytest_plugin import MendaHome, console_script

DOMAIN, OWNER, REGION, REPOSITORY = "menda-private", "058264169513", "eu-west-1", "menda-plugins"
ENDPOINT = f"{DOMAIN}-{OWNER}.d.codeartifact.{REGION}.amazonaws.com"
INDEX = f"https://{ENDPOINT}/pypi/{REPOSITORY}/simple/"
KEYRING = console_script("keyring")

CLIENT_ID = "hardening-bot"
CLIENT_SECRET = "SECRET-client-7f1e"


class KeyringCLI:
    """``keyring <args>`` exactly as uv and pip spawn it (test modules cannot import conftest)."""

    path = KEYRING

    def __call__(
        self, *args: str, env: dict[str, str], timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [KEYRING, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
        )


@pytest.fixture
def keyring_cli() -> KeyringCLI:
    return KeyringCLI()


@pytest.fixture
def m2m_env(
    menda_home: MendaHome, menda_cloud: MendaCloudEmulator, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """M2M from the environment (in this process too); returns the env for a subprocess."""
    menda_cloud.add_m2m_client(CLIENT_ID, CLIENT_SECRET)
    trio = {
        "MENDA_CLIENT_ID": CLIENT_ID,
        "MENDA_CLIENT_SECRET": CLIENT_SECRET,
        "MENDA_HOST": menda_cloud.url,
    }
    for name, value in trio.items():
        monkeypatch.setenv(name, value)
    return menda_home.env(**trio)


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
