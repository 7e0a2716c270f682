"""``--check``: live calls to menda cloud, each request listed with its status and time.

Three steps, as an installer would need them: the token to present (from the
cache when valid, which may mean a client-credentials grant or refreshing an
expired login), ``whoami``, and a registry exchange that is always live: the
cached registry token is neither used nor replaced. Nothing printed is a token.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from menda.core_auth import format_time
from menda.keyring.diagnose.capture import requests_in
from menda.keyring.diagnose.common import duration, error_fact

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from menda.cloud_client import MendaCloudClient
    from menda.core_auth import Identity, TokenCache
    from menda.keyring.diagnose.capture import Collector

__all__ = ["live_check"]

_SKIPPED = {"ok": False, "skipped": "no token to present (see above)"}


def _expires(expires_at: datetime | None, now: datetime) -> dict[str, Any]:
    if expires_at is None:
        return {"expires_at": None, "expires": "expiry unknown (menda-keyring would not cache it)"}
    return {
        "expires_at": format_time(expires_at),
        "expires": f"expires at {format_time(expires_at)} (in {duration(expires_at - now)})",
    }


def _bearer_step(
    client: MendaCloudClient, cache: TokenCache, made_requests: Callable[[], bool]
) -> tuple[str | None, dict[str, Any]]:
    """The token to present, and where it came from (the cache, a grant, a refresh)."""
    from menda.core_auth import utcnow

    identity = client.identity
    try:
        bearer = client.access_token()
    except Exception as exc:  # reported, and the steps after it skipped
        return None, {"ok": False, "error": error_fact(exc)}
    now = utcnow()
    fetched = made_requests()
    step: dict[str, Any] = {"ok": True, "from_cache": not fetched}
    if identity.auth_type == "m2m":
        step["presents"] = "M2M access token"
        cached, _ = cache.check_access_token(
            identity.cache_key, host=identity.host, client_id=identity.client_id or ""
        )
        held = cached is not None and cached.access_token == bearer
        if fetched:
            step["source"] = "new from menda cloud (client credentials grant)"
            step["stored"] = held
            if not held:
                step["note"] = f"could not be cached in {cache.entries_dir}"
        else:
            step["source"] = "from the token cache"
        if held:
            assert cached is not None  # noqa: S101 - narrowed by held
            step.update(_expires(cached.expires_at, now))
        return bearer, step
    login = cache.logins.load(identity.profile or "")
    held = login is not None and login.bearer == bearer
    step["presents"] = "id token" if login is not None and login.id_token else "access token"
    if fetched:
        # access_token() refreshed an expired login: that is what an installer would do.
        step["source"] = "the login had expired: refreshed through menda cloud"
        step["refreshed"] = True
        step["stored"] = held
        step["note"] = (
            f"written back to {cache.logins.path}"
            if held
            else f"could not be written back to {cache.logins.path} (it was kept as it was)"
        )
    else:
        step["source"] = f"the Menda CLI's login in {cache.logins.path}"
        step["refreshed"] = False
    if held and login is not None and login.expires_at is not None:
        step.update(_expires(login.expires_at, now))
    return bearer, step


def _whoami_step(client: MendaCloudClient) -> dict[str, Any]:
    try:
        me = client.whoami()
    except Exception as exc:  # reported as this step's failure
        return {"ok": False, "error": error_fact(exc)}
    return {
        "ok": True,
        "tenant_id": me.tenant_id,
        "username": me.username,
        "identity_type": me.identity_type,
        "user_role": me.user_role,
    }


def _exchange_step(client: MendaCloudClient, bearer: str) -> dict[str, Any]:
    from menda.core_auth import utcnow

    try:
        credential = client.exchange(bearer)
    except Exception as exc:  # reported as this step's failure
        return {"ok": False, "live": True, "error": error_fact(exc)}
    step: dict[str, Any] = {
        "ok": True,
        "live": True,
        "token": "present",  # a state, never the token
        "username": credential.username,
    }
    step.update(_expires(credential.expires_at, utcnow()))
    return step


def live_check(identity: Identity, cache: TokenCache, collector: Collector) -> dict[str, Any]:
    """Present a token, ask ``whoami``, exchange it live; every request made, in order."""
    from menda.cloud_client import MendaCloudClient
    from menda.keyring.backend import _user_agent

    first = len(collector.records)

    def made_requests() -> bool:
        return bool(requests_in(collector.records[first:]))

    report: dict[str, Any] = {}
    start = time.monotonic()
    with MendaCloudClient(identity, cache=cache, user_agent_extra=_user_agent()) as client:
        bearer, report["bearer"] = _bearer_step(client, cache, made_requests)
        if bearer is None:
            report["whoami"] = dict(_SKIPPED)
            report["exchange"] = dict(_SKIPPED)
        elif report["bearer"].get("refreshed") and not report["bearer"]["stored"]:
            # whoami would read the old login again and refresh it a second time, with a
            # refresh token that may have been rotated: that can revoke the whole login.
            report["whoami"] = {
                "ok": True,
                "skipped": "the refreshed login could not be written back; asking again "
                "would refresh it a second time",
            }
            report["exchange"] = _exchange_step(client, bearer)
        else:
            report["whoami"] = _whoami_step(client)
            report["exchange"] = _exchange_step(client, bearer)
    report["elapsed_ms"] = round((time.monotonic() - start) * 1000)
    report["requests"] = requests_in(collector.records[first:])
    report["ok"] = all(report[s]["ok"] for s in ("bearer", "whoami", "exchange"))
    return report
