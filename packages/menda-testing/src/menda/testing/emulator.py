"""``MendaCloudEmulator``: the server side of menda-cloud-api.md on loopback.

A real HTTP/1.1 server (standard library only) in a daemon thread::

    with MendaCloudEmulator() as cloud:
        client_id, secret = "ci", "s3cret"
        cloud.add_m2m_client(client_id, secret, domains=["menda-private"])
        ...  # point MENDA_HOST at cloud.url
        assert cloud.count("token") == 1

Besides the two API endpoints it answers a small admin API under
``{url}/_emulator/`` so another process can inspect and configure it (see
``python -m menda.testing serve``). Admin requests are not recorded in the log.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import secrets
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta, timezone
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qs, unquote_plus, urlsplit

from menda.testing._admin import handle_admin
from menda.testing._faults import (
    Delay,
    Drop,
    Fault,
    Malformed,
    NonJSON,
    Status,
    Truncate,
)
from menda.testing._http import Incoming, QuietHTTPServer, Reply, make_server
from menda.testing._records import (
    MintedRegistryToken,
    RecordedRequest,
    UserLogin,
    format_rfc3339,
)

__all__ = ["ENDPOINTS", "REGISTRY_PATH", "TOKEN_PATH", "MendaCloudEmulator"]

TOKEN_PATH = "/api/v1/auth/oauth2/token"
REGISTRY_PATH = "/api/v1/auth/registry/token"
ADMIN_PATH = "/_emulator"
ENDPOINTS = ("token", "registry")

# Form fields of a token request that are secret and therefore never recorded.
_SECRET_FIELDS = frozenset({"refresh_token", "client_secret", "code", "password", "assertion"})
_FORM = "application/x-www-form-urlencoded"
_JSON = "application/json"


def _real_now() -> datetime:
    return datetime.now(timezone.utc)


def _normalise_prefix(prefix: str) -> str:
    prefix = prefix.strip().rstrip("/")
    if prefix and not prefix.startswith("/"):
        prefix = "/" + prefix
    return prefix


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value).encode()


def _media_type(headers: Mapping[str, str]) -> str:
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()


@dataclass
class _Principal:
    name: str
    kind: Literal["m2m", "u2m"]
    client_id: str
    secret: str | None = field(repr=False)
    domains: set[str] | None  # None: every domain


@dataclass
class _AccessGrant:
    identity: str
    expires_at: datetime
    revoked: bool = False


@dataclass
class _RefreshGrant:
    identity: str
    client_id: str
    revoked: bool = False


class _Refusal(Exception):
    """Raised inside a request to answer with an OAuth-style error."""

    def __init__(
        self, status: int, error: str, description: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description
        self.headers = headers or {}


class MendaCloudEmulator:
    """A menda cloud on loopback: token and registry-token endpoints, identities, faults, a log.

    ``clock`` (a callable returning an aware datetime) is the emulator's "now" for
    issuing and checking expiry; ``None`` means real time. The ``clock`` pytest
    fixture points it at the same fake clock as ``menda.core_auth``.
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
    ) -> None:
        self.host = host
        self.port = port
        self.access_token_lifetime = access_token_lifetime
        self.registry_token_lifetime = registry_token_lifetime
        self.rotate_refresh_tokens = rotate_refresh_tokens
        self.clock = clock
        self.path_prefix = _normalise_prefix(path_prefix)
        self._lock = threading.RLock()
        self._principals: dict[str, _Principal] = {}
        self._access: dict[str, _AccessGrant] = {}
        self._refresh: dict[str, _RefreshGrant] = {}
        self._registry_tokens: dict[str, MintedRegistryToken] = {}
        self._revoked_registry: set[str] = set()
        self._registries: set[tuple[str, str, str]] = set()
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
    def token_url(self) -> str:
        return self.url + TOKEN_PATH

    @property
    def registry_url(self) -> str:
        return self.url + REGISTRY_PATH

    def __repr__(self) -> str:
        where = self.url if self._server is not None else "stopped"
        return f"MendaCloudEmulator({where})"

    def now(self) -> datetime:
        """The emulator's current time (its ``clock``, else real time)."""
        return (self.clock or _real_now)()

    # -- identities -------------------------------------------------------------------

    def add_m2m_client(
        self, client_id: str, client_secret: str, *, domains: Iterable[str] | None = None
    ) -> None:
        """Register (or replace) an M2M client; ``domains=None`` allows every domain."""
        with self._lock:
            existing = self._principals.get(client_id)
            if existing is not None and existing.kind != "m2m":
                raise ValueError(f"{client_id!r} is already a user name")
            self._principals[client_id] = _Principal(
                client_id, "m2m", client_id, client_secret, _domain_set(domains)
            )

    def add_user(
        self,
        name: str = "alice",
        *,
        client_id: str = "menda-cli",
        domains: Iterable[str] | None = None,
    ) -> UserLogin:
        """Register a U2M user and return a fresh login, as ``menda auth login`` would get."""
        with self._lock:
            if name in self._principals:
                raise ValueError(f"identity {name!r} already exists; use login({name!r})")
            self._principals[name] = _Principal(name, "u2m", client_id, None, _domain_set(domains))
            return self.login(name)

    def login(self, name: str) -> UserLogin:
        """Another fresh login (access and refresh token) for an existing user."""
        with self._lock:
            principal = self._principal(name)
            if principal.kind != "u2m":
                raise ValueError(f"{name!r} is an M2M client, not a user")
            access, expires_at = self.issue_access_token(name)
            refresh = self._mint_refresh(principal)
            return UserLogin(name, principal.client_id, access, refresh, expires_at)

    def issue_access_token(
        self, identity: str, lifetime: int | None = None
    ) -> tuple[str, datetime]:
        """Mint an access token for a client id or user name, as the token endpoint would."""
        with self._lock:
            self._principal(identity)
            seconds = self.access_token_lifetime if lifetime is None else lifetime
            expires_at = self.now() + timedelta(seconds=seconds)
            token = "mat_" + secrets.token_urlsafe(24)
            self._access[token] = _AccessGrant(identity, expires_at)
            return token, expires_at

    def revoke_access_token(self, token: str) -> None:
        with self._lock:
            grant = self._access.get(token)
            if grant is not None:
                grant.revoked = True

    def revoke_refresh_token(self, token: str) -> None:
        with self._lock:
            grant = self._refresh.get(token)
            if grant is not None:
                grant.revoked = True

    def revoke_registry_token(self, token: str) -> None:
        with self._lock:
            self._revoked_registry.add(token)

    def allow(self, identity: str, domain: str) -> None:
        """Let ``identity`` use CodeArtifact ``domain`` (no-op when it may use every domain)."""
        with self._lock:
            principal = self._principal(identity)
            if principal.domains is not None:
                principal.domains.add(domain)

    def deny(self, identity: str, domain: str) -> None:
        """Forbid ``domain`` to ``identity``; one allowed every domain becomes allowed none."""
        with self._lock:
            principal = self._principal(identity)
            if principal.domains is None:
                principal.domains = set()
            principal.domains.discard(domain)

    def add_registry(self, domain: str, owner: str, region: str) -> None:
        """Declare a known registry; once any is declared, the others are 404 registry_not_found."""
        with self._lock:
            self._registries.add((domain, owner, region))

    def _principal(self, identity: str) -> _Principal:
        try:
            return self._principals[identity]
        except KeyError:
            raise ValueError(f"unknown identity {identity!r}") from None

    def _mint_refresh(self, principal: _Principal) -> str:
        token = "mrt_" + secrets.token_urlsafe(24)
        self._refresh[token] = _RefreshGrant(principal.name, principal.client_id)
        return token

    # -- registry tokens --------------------------------------------------------------

    def validate_registry_token(self, token: str, *, domain: str, owner: str, region: str) -> bool:
        """True when this emulator minted ``token`` for that registry and it is still valid."""
        with self._lock:
            minted = self._registry_tokens.get(token)
            if minted is None or token in self._revoked_registry:
                return False
            return (minted.domain, minted.domain_owner, minted.region) == (
                domain,
                owner,
                region,
            ) and self.now() < minted.expires_at

    @property
    def minted_registry_tokens(self) -> list[MintedRegistryToken]:
        with self._lock:
            return list(self._registry_tokens.values())

    def mint_registry_token(
        self,
        identity: str,
        *,
        domain: str,
        owner: str,
        region: str,
        repository: str | None = None,
        format: str | None = None,
        lifetime: int | None = None,
    ) -> MintedRegistryToken:
        """Mint a registry token directly, as the registry endpoint would for ``identity``."""
        with self._lock:
            self._principal(identity)
            seconds = self.registry_token_lifetime if lifetime is None else lifetime
            # Whole seconds: the wire format has no fraction, and a client must not
            # believe a token outlives what the server granted.
            expires_at = (self.now() + timedelta(seconds=seconds)).replace(microsecond=0)
            minted = MintedRegistryToken(
                "caat_" + secrets.token_urlsafe(32),
                identity,
                domain,
                owner,
                region,
                repository,
                format,
                expires_at,
            )
            self._registry_tokens[minted.token] = minted
            return minted

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
        """Apply ``fault`` to the next ``times`` requests to ``endpoint`` ("token"/"registry")."""
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

    def _app(self, incoming: Incoming) -> Reply:
        request_id = "req_" + secrets.token_hex(8)
        received = self.now()
        path = urlsplit(incoming.target).path
        prefix = self.path_prefix
        if path.startswith(prefix + ADMIN_PATH + "/"):
            reply = handle_admin(self, incoming, path[len(prefix + ADMIN_PATH) :])
            reply.headers["X-Request-Id"] = request_id
            return reply
        if path == prefix + TOKEN_PATH:
            endpoint = "token"
        elif path == prefix + REGISTRY_PATH:
            endpoint = "registry"
        else:
            endpoint = "other"

        entry: dict[str, Any] = {
            "grant_type": None,
            "client_id": None,
            "body": None,
            "identity": None,
        }
        if endpoint == "token":
            entry.update(_describe_token(incoming))
        elif endpoint == "registry":
            entry["body"] = _json_or_none(incoming.body)

        fault = self._pop_fault(endpoint) if endpoint != "other" else None
        if isinstance(fault, Delay):
            self._stopping.wait(fault.seconds)
        if fault is None or isinstance(fault, Delay):
            reply = self._answer(endpoint, path, incoming, entry)
        else:
            reply = _fault_reply(fault, endpoint)
        reply.headers["X-Request-Id"] = request_id
        if endpoint != "other":
            reply.headers.setdefault("Cache-Control", "no-store")
        record = RecordedRequest(
            method=incoming.method,
            path=path,
            endpoint=endpoint,
            status=None if reply.mode == "drop" else reply.status,
            grant_type=entry["grant_type"],
            client_id=entry["client_id"],
            body=entry["body"],
            time=received,
            identity=entry["identity"],
            fault=None if fault is None else fault.kind,
            request_id=request_id,
            user_agent=incoming.headers.get("user-agent"),
        )
        # Logged before the answer goes out, so a test that has its response sees the entry.
        with self._lock:
            self._log.append(record)
        return reply

    def _answer(self, endpoint: str, path: str, incoming: Incoming, entry: dict[str, Any]) -> Reply:
        if endpoint == "other":
            return _error_reply(404, "not_found", f"no such endpoint: {incoming.method} {path}")
        if incoming.method != "POST":
            reply = _error_reply(405, "invalid_request", f"{incoming.method} is not allowed")
            reply.headers["Allow"] = "POST"
            return reply
        try:
            if endpoint == "token":
                payload, identity = self._token(incoming)
            else:
                payload, identity = self._registry(incoming)
        except _Refusal as refusal:
            reply = _error_reply(refusal.status, refusal.error, refusal.description)
            reply.headers.update(refusal.headers)
            return reply
        entry["identity"] = identity
        reply = Reply(200, _json_bytes(payload))
        if endpoint == "token":
            reply.headers["Pragma"] = "no-cache"
        return reply

    def _token(self, incoming: Incoming) -> tuple[dict[str, Any], str]:
        if _media_type(incoming.headers) != _FORM:
            raise _Refusal(400, "invalid_request", f"Content-Type must be {_FORM}")
        form = _parse_form(incoming.body)
        grant_type = form.get("grant_type")
        if not grant_type:
            raise _Refusal(400, "invalid_request", "grant_type is missing")
        if grant_type == "client_credentials":
            return self._client_credentials(incoming)
        if grant_type == "refresh_token":
            return self._refresh_grant(form)
        raise _Refusal(400, "unsupported_grant_type", f"grant_type {grant_type!r} is not supported")

    def _client_credentials(self, incoming: Incoming) -> tuple[dict[str, Any], str]:
        challenge = {"WWW-Authenticate": 'Basic realm="menda"'}
        credentials = _basic_credentials(incoming.headers.get("authorization", ""))
        if credentials is None:
            raise _Refusal(
                401, "invalid_client", "client authentication (HTTP Basic) is required", challenge
            )
        client_id, client_secret = credentials
        with self._lock:
            principal = self._principals.get(client_id)
            if (
                principal is None
                or principal.kind != "m2m"
                or principal.secret is None
                or not hmac.compare_digest(principal.secret.encode(), client_secret.encode())
            ):
                raise _Refusal(401, "invalid_client", "unknown client or wrong secret", challenge)
            token, _ = self.issue_access_token(client_id)
        payload = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self.access_token_lifetime,
            "scope": "registry",
        }
        return payload, client_id

    def _refresh_grant(self, form: dict[str, str]) -> tuple[dict[str, Any], str]:
        refresh_token = form.get("refresh_token")
        client_id = form.get("client_id")
        if not refresh_token:
            raise _Refusal(400, "invalid_request", "refresh_token is missing")
        if not client_id:
            raise _Refusal(400, "invalid_request", "client_id is missing")
        with self._lock:
            if not any(
                p.kind == "u2m" and p.client_id == client_id for p in self._principals.values()
            ):
                raise _Refusal(401, "invalid_client", f"unknown public client {client_id!r}")
            grant = self._refresh.get(refresh_token)
            if grant is None or grant.revoked:
                raise _Refusal(400, "invalid_grant", "the refresh token is unknown or revoked")
            if grant.client_id != client_id:
                raise _Refusal(400, "invalid_grant", "the refresh token belongs to another client")
            principal = self._principal(grant.identity)
            token, _ = self.issue_access_token(grant.identity)
            payload: dict[str, Any] = {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": self.access_token_lifetime,
            }
            if self.rotate_refresh_tokens:
                grant.revoked = True
                payload["refresh_token"] = self._mint_refresh(principal)
        return payload, grant.identity

    def _registry(self, incoming: Incoming) -> tuple[dict[str, Any], str]:
        scheme, _, token = incoming.headers.get("authorization", "").partition(" ")
        token = token.strip()
        challenge = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
        with self._lock:
            grant = self._access.get(token) if scheme.lower() == "bearer" else None
            if grant is None:
                raise _Refusal(
                    401, "invalid_token", "a valid Bearer access token is required", challenge
                )
            if grant.revoked:
                raise _Refusal(401, "invalid_token", "the access token was revoked", challenge)
            if self.now() >= grant.expires_at:
                raise _Refusal(401, "invalid_token", "the access token has expired", challenge)
            identity = grant.identity
        request = _registry_request(incoming)
        domain, owner, region = request["domain"], request["domain_owner"], request["region"]
        with self._lock:
            if self._registries and (domain, owner, region) not in self._registries:
                raise _Refusal(
                    404,
                    "registry_not_found",
                    f"no CodeArtifact domain {domain!r} owned by {owner} in {region}",
                )
            principal = self._principal(identity)
            if principal.domains is not None and domain not in principal.domains:
                raise _Refusal(
                    403, "access_denied", f"{identity!r} may not use CodeArtifact domain {domain!r}"
                )
            minted = self.mint_registry_token(
                identity,
                domain=domain,
                owner=owner,
                region=region,
                repository=request["repository"],
                format=request["format"],
            )
        return {"token": minted.token, "expires_at": format_rfc3339(minted.expires_at)}, identity


# -- request parsing helpers ------------------------------------------------------------


def _domain_set(domains: Iterable[str] | None) -> set[str] | None:
    if isinstance(domains, str):
        raise TypeError("domains must be an iterable of names, not one string")
    return None if domains is None else set(domains)


def _parse_form(body: bytes) -> dict[str, str]:
    try:
        pairs = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise _Refusal(400, "invalid_request", "the form body is not UTF-8") from None
    repeated = sorted(name for name, values in pairs.items() if len(values) > 1)
    if repeated:
        # RFC 6749 §3.2: request parameters must not be included more than once.
        raise _Refusal(400, "invalid_request", f"parameter(s) repeated: {repeated}")
    return {name: values[0] for name, values in pairs.items()}


def _basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    if not sep:
        return None
    # RFC 6749 §2.3.1: both parts are form-urlencoded before being joined with ':'.
    return unquote_plus(user), unquote_plus(password)


def _describe_token(incoming: Incoming) -> dict[str, Any]:
    """What the log keeps of a token request: never a secret, and never an exception."""
    try:
        pairs = parse_qs(incoming.body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        pairs = {}
    form = {k: v[0] for k, v in pairs.items() if k not in _SECRET_FIELDS}
    client_id = form.get("client_id")
    if client_id is None:
        basic = _basic_credentials(incoming.headers.get("authorization", ""))
        client_id = basic[0] if basic else None
    return {"grant_type": form.get("grant_type"), "client_id": client_id, "body": form}


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _registry_request(incoming: Incoming) -> dict[str, Any]:
    if _media_type(incoming.headers) != _JSON:
        raise _Refusal(400, "invalid_request", f"Content-Type must be {_JSON}")
    try:
        data = json.loads(incoming.body)
    except ValueError:
        raise _Refusal(400, "invalid_request", "the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise _Refusal(400, "invalid_request", "the body must be a JSON object")
    if data.get("registry_type") != "codeartifact":
        raise _Refusal(400, "invalid_request", "registry_type must be 'codeartifact'")
    for name in ("domain", "domain_owner", "region"):
        value = data.get(name)
        if not isinstance(value, str) or not value:
            raise _Refusal(400, "invalid_request", f"{name} must be a non-empty string")
    for name in ("repository", "format"):
        if name not in data:
            raise _Refusal(400, "invalid_request", f"{name} is missing (send null for none)")
        if data[name] is not None and not isinstance(data[name], str):
            raise _Refusal(400, "invalid_request", f"{name} must be a string or null")
    return data


# -- replies ----------------------------------------------------------------------------


def _error_reply(status: int, error: str, description: str) -> Reply:
    return Reply(status, _json_bytes({"error": error, "error_description": description}))


_DEFAULT_ERRORS = {
    400: "invalid_request",
    403: "access_denied",
    404: "not_found",
    429: "slow_down",
}


def _fault_reply(fault: Fault, endpoint: str) -> Reply:
    if isinstance(fault, Status):
        if fault.body is not None:
            reply = Reply(fault.code, fault.body.encode(), fault.content_type)
        else:
            error = fault.error
            if error is None and fault.code == 401:
                error = "invalid_client" if endpoint == "token" else "invalid_token"
            if error is None and fault.code == 404 and endpoint == "registry":
                error = "registry_not_found"
            if error is None:
                error = _DEFAULT_ERRORS.get(
                    fault.code, "temporarily_unavailable" if fault.code >= 500 else "error"
                )
            reply = _error_reply(fault.code, error, f"injected fault: HTTP {fault.code}")
        if fault.retry_after is not None:
            reply.headers["Retry-After"] = str(fault.retry_after)
        return reply
    if isinstance(fault, Malformed):
        return Reply(fault.status, _json_bytes(fault.body))
    if isinstance(fault, NonJSON):
        return Reply(fault.status, fault.body.encode(), fault.content_type)
    if isinstance(fault, Drop):
        return Reply(0, mode="drop")
    if isinstance(fault, Truncate):
        partial = b'{"access_token": "tr' if endpoint == "token" else b'{"token": "tr'
        return Reply(fault.status, partial, mode="truncate")
    raise TypeError(f"not a fault: {fault!r}")
