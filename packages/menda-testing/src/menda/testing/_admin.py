"""The emulator's admin JSON API, so another process can inspect and configure it.

Routes under ``{url}/_emulator``, JSON in and out, errors as ``{"detail": ...}``:

- ``GET /requests``: the request log, ``{"requests": [...]}`` (no secrets in it);
  ``DELETE /requests`` clears it.
- ``POST /m2m``: ``{"client_id", "client_secret", "domains": null or [...],
  "registry": null or [domain, owner, region]}``.
- ``POST /users``: ``{"name", "client_id", "domains", "registry", "email"}``; answers
  the fresh login, tokens included (the caller needs them), with ``expires_at``
  and ``issued_at`` in RFC 3339 and ``expires_in``.
- ``POST /faults``: ``{"endpoint": "token", "fault": {"kind": "status", "code": 503},
  "times": 2}``; the fault's JSON form is :func:`menda.testing._faults.fault_to_dict`.
- ``POST /registries``: ``{"domain", "domain_owner", "region"}`` (see ``add_registry``).
- ``POST /settings``: any of ``access_token_lifetime``, ``registry_token_lifetime``,
  ``rotate_refresh_tokens``, ``device_interval``, ``device_pending_polls``,
  ``device_code_lifetime``, ``device_login_user``, ``app_client_id``, ``tenant_id``,
  ``registry`` ([domain, owner, region]).
- ``POST /registry-tokens/validate``: ``{"token", "domain", "domain_owner", "region"}``
  answers ``{"valid": true or false}``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from menda.testing._faults import fault_from_dict
from menda.testing._http import Incoming, Reply
from menda.testing._records import format_rfc3339
from menda.testing._tokens import registry_tuple

if TYPE_CHECKING:
    from menda.testing.emulator import MendaCloudEmulator

__all__ = ["handle_admin"]

_INT_SETTINGS = (
    "access_token_lifetime",
    "registry_token_lifetime",
    "device_interval",
    "device_pending_polls",
    "device_code_lifetime",
)


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value).encode()


def _error_reply(status: int, detail: str) -> Reply:
    return Reply(status, _json_bytes({"detail": detail}))


def handle_admin(cloud: MendaCloudEmulator, incoming: Incoming, path: str) -> Reply:
    """Answer one request under ``{url}/_emulator``; never recorded in the log."""
    route = (incoming.method, path.rstrip("/"))
    try:
        if route == ("GET", "/requests"):
            return Reply(200, _json_bytes({"requests": [r.to_json() for r in cloud.requests]}))
        if route == ("DELETE", "/requests"):
            cloud.clear_log()
            return Reply(200, b"{}")
        data = _admin_body(incoming)
        if route == ("POST", "/m2m"):
            cloud.add_m2m_client(
                _str(data, "client_id"),
                _str(data, "client_secret"),
                domains=_domains(data),
                registry=_registry(data),
            )
            return Reply(200, _json_bytes({"client_id": data["client_id"]}))
        if route == ("POST", "/users"):
            client_id = data.get("client_id")
            email = data.get("email")
            login = cloud.add_user(
                str(data.get("name", "alice")),
                client_id=None if client_id is None else str(client_id),
                domains=_domains(data),
                registry=_registry(data),
                email=None if email is None else str(email),
            )
            body = {
                "name": login.name,
                "client_id": login.client_id,
                "id_token": login.id_token,
                "access_token": login.access_token,
                "refresh_token": login.refresh_token,
                "expires_in": login.expires_in,
                "expires_at": format_rfc3339(login.expires_at),
                "issued_at": format_rfc3339(login.issued_at),
            }
            return Reply(200, _json_bytes(body))
        if route == ("POST", "/faults"):
            fault = data.get("fault")
            if not isinstance(fault, dict):
                raise ValueError("'fault' must be an object with a 'kind'")
            times = data.get("times", 1)
            if not isinstance(times, int):
                raise ValueError("'times' must be an integer")
            cloud.inject(_str(data, "endpoint"), fault_from_dict(fault), times)
            return Reply(200, b"{}")
        if route == ("POST", "/registries"):
            cloud.add_registry(
                _str(data, "domain"), _str(data, "domain_owner"), _str(data, "region")
            )
            return Reply(200, b"{}")
        if route == ("POST", "/settings"):
            _apply_settings(cloud, data)
            return Reply(200, b"{}")
        if route == ("POST", "/registry-tokens/validate"):
            valid = cloud.validate_registry_token(
                _str(data, "token"),
                domain=_str(data, "domain"),
                owner=_str(data, "domain_owner"),
                region=_str(data, "region"),
            )
            return Reply(200, _json_bytes({"valid": valid}))
    except (ValueError, TypeError) as exc:
        return _error_reply(400, str(exc))
    return _error_reply(404, f"no admin route {incoming.method} {path}")


def _apply_settings(cloud: MendaCloudEmulator, data: Mapping[str, Any]) -> None:
    for name in _INT_SETTINGS:
        if name in data:
            setattr(cloud, name, int(data[name]))
    if "rotate_refresh_tokens" in data:
        cloud.rotate_refresh_tokens = bool(data["rotate_refresh_tokens"])
    for name in ("app_client_id", "tenant_id"):
        if name in data:
            setattr(cloud, name, _str(data, name))
    if "device_login_user" in data:
        user = data["device_login_user"]
        cloud.device_login_user = None if user is None else str(user)
    registry = _registry(data)
    if registry is not None:
        cloud.registry = registry


def _admin_body(incoming: Incoming) -> dict[str, Any]:
    if not incoming.body:
        return {}
    try:
        data = json.loads(incoming.body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    return data


def _str(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise ValueError(f"{name!r} must be a string")
    return value


def _domains(data: Mapping[str, Any]) -> list[str] | None:
    domains = data.get("domains")
    if domains is None:
        return None
    if not isinstance(domains, list) or not all(isinstance(d, str) for d in domains):
        raise ValueError("'domains' must be a list of strings or null")
    return domains


def _registry(data: Mapping[str, Any]) -> tuple[str, str, str] | None:
    registry = data.get("registry")
    if registry is not None and not isinstance(registry, list):
        raise ValueError("'registry' must be [domain, owner, region] or null")
    return registry_tuple(registry)
