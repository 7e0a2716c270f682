"""The emulator's admin JSON API, so another process can inspect and configure it.

Routes under ``{url}/_emulator``, JSON in and out:

- ``GET /requests``: the request log, ``{"requests": [...]}`` (no secrets in it);
  ``DELETE /requests`` clears it.
- ``POST /m2m``: ``{"client_id", "client_secret", "domains": null or [...]}``.
- ``POST /users``: ``{"name", "client_id", "domains"}``; answers the fresh login,
  tokens included (the caller needs them).
- ``POST /faults``: ``{"endpoint": "token", "fault": {"kind": "status", "code": 503},
  "times": 2}``; the fault's JSON form is :func:`menda.testing._faults.fault_to_dict`.
- ``POST /registries``: ``{"domain", "domain_owner", "region"}``.
- ``POST /settings``: any of ``access_token_lifetime``, ``registry_token_lifetime``,
  ``rotate_refresh_tokens``.
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

if TYPE_CHECKING:
    from menda.testing.emulator import MendaCloudEmulator

__all__ = ["handle_admin"]


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value).encode()


def _error_reply(status: int, error: str, description: str) -> Reply:
    return Reply(status, _json_bytes({"error": error, "error_description": description}))


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
                _str(data, "client_id"), _str(data, "client_secret"), domains=_domains(data)
            )
            return Reply(200, _json_bytes({"client_id": data["client_id"]}))
        if route == ("POST", "/users"):
            login = cloud.add_user(
                str(data.get("name", "alice")),
                client_id=str(data.get("client_id", "menda-cli")),
                domains=_domains(data),
            )
            body = {**login.cache_fields(), "name": login.name}
            body["expires_at"] = format_rfc3339(login.expires_at)
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
            for name in ("access_token_lifetime", "registry_token_lifetime"):
                if name in data:
                    setattr(cloud, name, int(data[name]))
            if "rotate_refresh_tokens" in data:
                cloud.rotate_refresh_tokens = bool(data["rotate_refresh_tokens"])
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
        return _error_reply(400, "invalid_request", str(exc))
    return _error_reply(404, "not_found", f"no admin route {incoming.method} {path}")


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
