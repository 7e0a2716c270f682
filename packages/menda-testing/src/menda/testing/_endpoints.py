"""The seven endpoints of menda cloud, strictly in the shape the published clients send.

menda-cli 0.5.0 and menda-keyring 0.0.2 are the only evidence of what the real
service accepts, so anything else is refused with a 4xx ``{"detail": ...}`` that
says what was expected: client credentials in the query string (not HTTP Basic
and a form body), the token in ``authorizationToken`` (not ``Authorization``),
no body where the clients send none.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from menda.testing._http import Incoming
from menda.testing._replies import UNAUTHORIZED, Refusal

if TYPE_CHECKING:
    from menda.testing.emulator import MendaCloudEmulator

__all__ = ["DEVICE_GRANT", "ENDPOINTS", "ROUTES", "DeviceCode", "answer", "media_type"]

# Paths under <host>/api/v1 -> (endpoint name, method).
ROUTES: dict[str, tuple[str, str]] = {
    "/auth/oauth2/token": ("token", "POST"),
    "/auth/registry/token": ("registry", "POST"),
    "/auth/discovery": ("discovery", "GET"),
    "/auth/device/authorize": ("device_authorize", "POST"),
    "/auth/device/token": ("device_token", "POST"),
    "/auth/whoami": ("whoami", "GET"),
}
ENDPOINTS = tuple(name for name, _ in ROUTES.values())
_METHODS = dict(ROUTES.values())
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
_CALLBACK = "/auth/device/callback"
_JSON = "application/json"
_DEVICE_FIELDS = frozenset(
    {"client_id", "redirect_uri", "device_code", "grant_type", "code_verifier"}
)
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
_USER_CODE_LETTERS = "BCDFGHJKLMNPQRSTVWXZ"


@dataclass
class DeviceCode:
    user_code: str
    client_id: str
    challenge: str
    expires_at: datetime
    polls: int = 0
    used: bool = False


def media_type(headers: Mapping[str, str]) -> str:
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()


def answer(
    cloud: MendaCloudEmulator, endpoint: str, incoming: Incoming, query: str, note: Any
) -> Any:
    """The JSON payload of a successful answer; raises :class:`Refusal` for any other.

    ``note`` is a dict the handler fills with ``identity`` and ``token_kind``.
    """
    method = _METHODS[endpoint]
    if incoming.method != method:
        raise Refusal(405, "Method Not Allowed", headers={"Allow": method})
    return _HANDLERS[endpoint](cloud, incoming, query, note)


# -- request checks -----------------------------------------------------------------------


def _query(query: str, allowed: Collection[str], required: Collection[str]) -> dict[str, str]:
    try:
        pairs = parse_qs(query, keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        raise Refusal(400, "the query string is not UTF-8") from None
    repeated = sorted(name for name, values in pairs.items() if len(values) > 1)
    if repeated:
        raise Refusal(400, f"query parameter(s) repeated: {repeated}")
    unknown = sorted(set(pairs) - set(allowed))
    if unknown:
        raise Refusal(400, f"unexpected query parameter(s): {unknown}")
    missing = sorted(name for name in required if not pairs.get(name, [""])[0])
    if missing:
        raise Refusal(400, f"missing query parameter(s): {missing}")
    return {name: values[0] for name, values in pairs.items()}


def _no_body(incoming: Incoming, what: str) -> None:
    if incoming.body:
        raise Refusal(400, f"{what} takes no request body; its parameters go in the query string")


def _header_token(incoming: Incoming, *, bearer: bool) -> str:
    """The token in ``authorizationToken``: ``Bearer <token>``, or the raw token (whoami)."""
    value = incoming.headers.get("authorizationtoken", "").strip()
    if not value:
        if "authorization" in incoming.headers:
            shape = "Bearer <token>" if bearer else "<token>"
            raise Refusal(
                401,
                f"the token goes in the authorizationToken header (authorizationToken: {shape}); "
                "the Authorization header is not read",
            )
        # API Gateway answers this itself: the identity source is missing.
        raise Refusal(401, "Unauthorized", body=UNAUTHORIZED)
    scheme, _, rest = value.partition(" ")
    if bearer:
        if scheme != "Bearer" or not rest.strip():
            raise Refusal(401, "authorizationToken must be 'Bearer <token>'")
        return rest.strip()
    if rest:
        raise Refusal(401, "authorizationToken must hold the raw token here, without a scheme")
    return value


# -- the endpoints ------------------------------------------------------------------------


def _token(cloud: MendaCloudEmulator, incoming: Incoming, query: str, note: Any) -> Any:
    if "authorization" in incoming.headers:
        raise Refusal(
            400,
            "the token endpoint does not read the Authorization header (HTTP Basic); "
            "send client_id and client_secret in the query string",
        )
    _no_body(incoming, "the token endpoint")
    allowed = {"grant_type", "client_id", "client_secret", "scope", "refresh_token"}
    params = _query(query, allowed, ["grant_type"])
    grant_type = params["grant_type"]
    if grant_type == "client_credentials":
        _query(query, allowed - {"refresh_token"}, ["client_id", "client_secret"])
        if params.get("scope", "api/all") != "api/all":
            raise Refusal(400, "invalid scope: only 'api/all' is known")
        cloud.check_client(params["client_id"], params["client_secret"])
        token, _ = cloud.issue_access_token(params["client_id"])
        note["identity"] = params["client_id"]
        lifetime = cloud.access_token_lifetime
        return {"access_token": token, "expires_in": lifetime, "token_type": "Bearer"}
    if grant_type == "refresh_token":
        _query(query, {"grant_type", "client_id", "refresh_token"}, ["client_id", "refresh_token"])
        if not cloud.is_public_client(params["client_id"]):
            raise Refusal(401, f"unknown client_id {params['client_id']!r}")
        login, rotated = cloud.use_refresh_token(params["refresh_token"], params["client_id"])
        note["identity"] = login.name
        payload = {"id_token": login.id_token, "access_token": login.access_token}
        if rotated:
            payload["refresh_token"] = login.refresh_token
        return {**payload, "expires_in": login.expires_in, "token_type": "Bearer"}
    raise Refusal(400, f"unsupported grant_type {grant_type!r}")


def _registry(cloud: MendaCloudEmulator, incoming: Incoming, query: str, note: Any) -> Any:
    grant = cloud.authenticate(_header_token(incoming, bearer=True))
    note["identity"], note["token_kind"] = grant.identity, grant.kind
    if incoming.body:
        raise Refusal(400, "the registry endpoint takes no request body")
    _query(query, (), ())
    domain, owner, region = cloud.registry_for_exchange(grant.identity)
    minted = cloud.mint_registry_token(grant.identity, domain=domain, owner=owner, region=region)
    return {"token": minted.token}


def _discovery(cloud: MendaCloudEmulator, incoming: Incoming, query: str, note: Any) -> Any:
    _no_body(incoming, "discovery")
    _query(query, ["hostname"], ["hostname"])
    return {"app_client_id": cloud.app_client_id}


def _device_authorize(cloud: MendaCloudEmulator, incoming: Incoming, query: str, note: Any) -> Any:
    _no_body(incoming, "device authorization")
    names = ["client_id", "scope", "code_challenge", "code_challenge_method"]
    params = _query(query, names, names)
    if not cloud.is_public_client(params["client_id"]):
        raise Refusal(400, f"unknown client_id {params['client_id']!r}")
    if "openid" not in params["scope"].split():
        raise Refusal(400, "scope must include 'openid'")
    if params["code_challenge_method"] != "S256":
        raise Refusal(400, "code_challenge_method must be S256")
    if not _CHALLENGE.fullmatch(params["code_challenge"]):
        raise Refusal(400, "code_challenge must be an unpadded base64url SHA-256 (43 characters)")
    device_code = "mdc_" + secrets.token_urlsafe(32)
    letters = "".join(secrets.choice(_USER_CODE_LETTERS) for _ in range(8))
    user_code = f"{letters[:4]}-{letters[4:]}"
    lifetime = cloud.device_code_lifetime
    with cloud._lock:
        cloud._devices[device_code] = DeviceCode(
            user_code,
            params["client_id"],
            params["code_challenge"],
            cloud.now() + timedelta(seconds=lifetime),
        )
    uri = cloud.url + "/device"
    return {
        "device_code": device_code,
        "user_code": user_code,
        "verification_uri": uri,
        "verification_uri_complete": f"{uri}?user_code={user_code}",
        "expires_in": lifetime,
        "interval": cloud.device_interval,
    }


def _device_token(cloud: MendaCloudEmulator, incoming: Incoming, query: str, note: Any) -> Any:
    _query(query, (), ())
    if media_type(incoming.headers) != _JSON:
        raise Refusal(400, f"the device token endpoint takes a JSON body (Content-Type: {_JSON})")
    try:
        data = json.loads(incoming.body)
    except ValueError:
        raise Refusal(400, "the body is not valid JSON") from None
    if not isinstance(data, dict) or set(data) != _DEVICE_FIELDS:
        raise Refusal(400, f"the body must be a JSON object with exactly {sorted(_DEVICE_FIELDS)}")
    if not all(isinstance(value, str) and value for value in data.values()):
        raise Refusal(400, "every field of the body must be a non-empty string")
    if data["grant_type"] != DEVICE_GRANT:
        raise Refusal(400, f"grant_type must be {DEVICE_GRANT!r}")
    if not data["redirect_uri"].endswith(_CALLBACK):
        raise Refusal(400, f"redirect_uri must be <host>{_CALLBACK}")
    if not _VERIFIER.fullmatch(data["code_verifier"]):
        raise Refusal(400, "code_verifier must be 43 to 128 unreserved characters (RFC 7636)")
    with cloud._lock:
        device = cloud._devices.get(data["device_code"])
        if device is None:
            raise Refusal(400, "invalid device_code")
        if device.used:
            raise Refusal(400, "invalid device_code: it was already used")
        if cloud.now() >= device.expires_at:
            raise Refusal(400, "expired: the device code has expired")
        if data["client_id"] != device.client_id:
            raise Refusal(400, "client_id does not match the device code's")
        digest = hashlib.sha256(data["code_verifier"].encode("ascii")).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != device.challenge:
            raise Refusal(400, "PKCE verification failed: code_verifier does not match")
        device.polls += 1
        if device.polls <= cloud.device_pending_polls:
            raise Refusal(400, "pending")
        user = cloud.device_login_user or cloud.first_user(device.client_id)
        if user is None:
            raise Refusal(403, "access denied: no user approved this device (add a user)")
        try:
            login = cloud.login(user)
        except ValueError as exc:
            raise Refusal(403, f"access denied: {exc}") from None
        device.used = True
    note["identity"] = login.name
    return {
        "id_token": login.id_token,
        "access_token": login.access_token,
        "refresh_token": login.refresh_token,
        "expires_in": login.expires_in,
        "token_type": "Bearer",
    }


def _whoami(cloud: MendaCloudEmulator, incoming: Incoming, query: str, note: Any) -> Any:
    grant = cloud.authenticate(_header_token(incoming, bearer=False))
    note["identity"], note["token_kind"] = grant.identity, grant.kind
    _no_body(incoming, "whoami")
    _query(query, (), ())
    principal = cloud.principal(grant.identity)
    user = principal.kind == "u2m"
    return {
        "tenant_id": cloud.tenant_id,
        "username": principal.name,
        "email": principal.email if user else None,
        "user_role": "member",
        "identity_type": "user" if user else "service_principal",
    }


_Handler = Callable[["MendaCloudEmulator", Incoming, str, Any], Any]
_HANDLERS: dict[str, _Handler] = {
    "token": _token,
    "registry": _registry,
    "discovery": _discovery,
    "device_authorize": _device_authorize,
    "device_token": _device_token,
    "whoami": _whoami,
}
