"""``MendaCloudEmulator``: the server side of menda-cloud-api.md on loopback.

A real HTTP/1.1 server (standard library only) in a daemon thread::

    with MendaCloudEmulator() as cloud:
        cloud.add_m2m_client("ci", "s3cret", domains=["menda-private"])
        ...  # point MENDA_HOST at cloud.url
        assert cloud.count("token") == 1

It answers the seven endpoints exactly as the published clients (menda-cli 0.5.0,
menda-keyring 0.0.2) call them (see ``_endpoints``), and a small admin API under
``{url}/_emulator/`` so another process can inspect and configure it (see
``python -m menda.testing serve``). Admin requests are not recorded in the log.

The module layout: ``_tokens`` and ``_state`` hold identities and issued tokens
(``Tenant``, this class's base), ``_endpoints`` parses requests and answers them,
``_replies`` and ``_faults`` shape errors and injected faults, ``_http`` serves.
"""

from __future__ import annotations

import secrets
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import fields
from datetime import datetime
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from menda.testing._admin import handle_admin
from menda.testing._endpoints import ENDPOINTS, ROUTES, DeviceCode, answer
from menda.testing._faults import Delay, Fault
from menda.testing._http import Incoming, QuietHTTPServer, Reply, make_server
from menda.testing._records import RecordedRequest, describe_request
from menda.testing._replies import Refusal, detail_reply, fault_reply, json_reply
from menda.testing._state import Tenant
from menda.testing._tokens import DEFAULT_REGISTRY

__all__ = [
    "API_PATH",
    "ENDPOINTS",
    "REGISTRY_PATH",
    "TOKEN_PATH",
    "MendaCloudEmulator",
]

API_PATH = "/api/v1"
TOKEN_PATH = API_PATH + "/auth/oauth2/token"
REGISTRY_PATH = API_PATH + "/auth/registry/token"
ADMIN_PATH = "/_emulator"


def _normalise_prefix(prefix: str) -> str:
    prefix = prefix.strip().rstrip("/")
    if prefix and not prefix.startswith("/"):
        prefix = "/" + prefix
    return prefix


class MendaCloudEmulator(Tenant):
    """A menda cloud on loopback: one tenant, its identities, faults, a request log.

    - ``registry``: ``(domain, owner, region)`` of the tenant's CodeArtifact
      registry, for which the registry endpoint mints tokens (an identity may
      override it; see ``add_m2m_client``/``add_user``).
    - ``app_client_id``: the public client id of the tenant's login app, which
      discovery answers and users' logins are bound to.
    - ``device_interval``: the polling interval the device flow announces (the CLI
      sleeps it before every poll: keep it small in tests); ``device_pending_polls``:
      how many polls are answered ``{"detail": "pending"}`` before the login is
      approved, by ``device_login_user`` or else the first user bound to the app.
    - ``clock`` (a callable returning an aware datetime) is the emulator's "now"
      for issuing and checking expiry; ``None`` means real time. The ``clock``
      pytest fixture points it at the same fake clock as ``menda.core_auth``.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        access_token_lifetime: int = 3600,
        registry_token_lifetime: int = 43200,
        path_prefix: str = "",
        rotate_refresh_tokens: bool = True,
        clock: Callable[[], datetime] | None = None,
        registry: Iterable[str] = DEFAULT_REGISTRY,
        app_client_id: str = "menda-cli",
        tenant_id: str = "menda-test",
        device_interval: int = 1,
        device_pending_polls: int = 1,
        device_code_lifetime: int = 600,
        device_login_user: str | None = None,
    ) -> None:
        super().__init__(
            access_token_lifetime=access_token_lifetime,
            registry_token_lifetime=registry_token_lifetime,
            rotate_refresh_tokens=rotate_refresh_tokens,
            clock=clock,
            registry=registry,
            app_client_id=app_client_id,
            tenant_id=tenant_id,
        )
        self.host = host
        self.port = port
        self.path_prefix = _normalise_prefix(path_prefix)
        self.device_interval = device_interval
        self.device_pending_polls = device_pending_polls
        self.device_code_lifetime = device_code_lifetime
        self.device_login_user = device_login_user
        self._devices: dict[str, DeviceCode] = {}
        self._log: list[RecordedRequest] = []
        self._faults: dict[str, deque[Fault]] = {name: deque() for name in ENDPOINTS}
        self._server: QuietHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> MendaCloudEmulator:
        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        self._stopping.clear()
        server = make_server(self.host, self.port, self._app)
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"menda-cloud-emulator:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()  # wakes requests sleeping in a Delay fault
        server.shutdown()
        server.server_close()
        server.close_connections()
        if thread is not None:
            thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> MendaCloudEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:54321``: scheme, host and port, without the path prefix."""
        if self._server is None:
            raise RuntimeError("the emulator is not running; call start() or use `with`")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        """The menda host to configure: the origin plus the path prefix, no trailing slash."""
        return self.origin + self.path_prefix

    @property
    def api_url(self) -> str:
        """``{url}/api/v1``: every endpoint path is appended to it."""
        return self.url + API_PATH

    @property
    def token_url(self) -> str:
        return self.url + TOKEN_PATH

    @property
    def registry_url(self) -> str:
        return self.url + REGISTRY_PATH

    def endpoint_url(self, endpoint: str) -> str:
        """The URL of an endpoint by name: ``cloud.endpoint_url("whoami")``."""
        for path, (name, _) in ROUTES.items():
            if name == endpoint:
                return self.api_url + path
        raise ValueError(f"endpoint must be one of {ENDPOINTS}, not {endpoint!r}")

    def __repr__(self) -> str:
        where = self.url if self._server is not None else "stopped"
        return f"MendaCloudEmulator({where})"

    # -- log and faults ---------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the request log, oldest first."""
        with self._lock:
            return list(self._log)

    def count(self, endpoint: str | None = None, **filters: Any) -> int:
        """How many logged requests match: ``cloud.count("token", grant_type="refresh_token")``."""
        names = {f.name for f in fields(RecordedRequest)}
        unknown = sorted(set(filters) - names)
        if unknown:
            raise TypeError(f"RecordedRequest has no field(s) {unknown}")
        if endpoint is not None:
            filters["endpoint"] = endpoint
        return sum(all(getattr(r, k) == v for k, v in filters.items()) for r in self.requests)

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    def inject(self, endpoint: str, fault: Fault, times: int = 1) -> None:
        """Apply ``fault`` to the next ``times`` requests to ``endpoint`` (see ``ENDPOINTS``)."""
        if endpoint not in ENDPOINTS:
            raise ValueError(f"endpoint must be one of {ENDPOINTS}, not {endpoint!r}")
        if times < 0:
            raise ValueError("times must not be negative")
        with self._lock:
            self._faults[endpoint].extend([fault] * times)

    def pending_faults(self, endpoint: str) -> list[Fault]:
        with self._lock:
            return list(self._faults[endpoint])

    def clear_faults(self) -> None:
        with self._lock:
            for queue in self._faults.values():
                queue.clear()

    def _pop_fault(self, endpoint: str) -> Fault | None:
        with self._lock:
            queue = self._faults.get(endpoint)
            return queue.popleft() if queue else None

    # -- HTTP -------------------------------------------------------------------------

    def _route(self, path: str) -> str:
        prefix = self.path_prefix + API_PATH
        if path.startswith(prefix):
            route = ROUTES.get(path[len(prefix) :])
            if route is not None:
                return route[0]
        return "other"

    def _app(self, incoming: Incoming) -> Reply:
        request_id = "req_" + secrets.token_hex(8)
        received = self.now()
        target = urlsplit(incoming.target)
        path = target.path
        admin = self.path_prefix + ADMIN_PATH
        if path.startswith(admin + "/"):
            reply = handle_admin(self, incoming, path[len(admin) :])
            reply.headers["X-Request-Id"] = request_id
            return reply
        endpoint = self._route(path)
        note: dict[str, Any] = {"identity": None, "token_kind": None}
        fault = self._pop_fault(endpoint) if endpoint != "other" else None
        if isinstance(fault, Delay):
            self._stopping.wait(fault.seconds)
        if fault is not None and not isinstance(fault, Delay):
            reply = fault_reply(fault, endpoint)
        elif endpoint == "other":
            reply = detail_reply(404, "Not Found")
        else:
            try:
                reply = json_reply(answer(self, endpoint, incoming, target.query, note))
            except Refusal as refusal:
                reply = refusal.reply()
        reply.headers["X-Request-Id"] = request_id
        if endpoint != "other":
            reply.headers.setdefault("Cache-Control", "no-store")
        record = RecordedRequest(
            method=incoming.method,
            path=path,
            endpoint=endpoint,
            status=None if reply.mode == "drop" else reply.status,
            time=received,
            identity=note["identity"],
            token_kind=note["token_kind"],
            fault=None if fault is None else fault.kind,
            request_id=request_id,
            user_agent=incoming.headers.get("user-agent"),
            **describe_request(incoming.headers, target.query, incoming.body),
        )
        # Logged before the answer goes out, so a test that has its response sees the entry.
        with self._lock:
            self._log.append(record)
        return reply
