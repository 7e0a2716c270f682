"""M2M access tokens: from the token cache, else the token endpoint, one process per key.

The M2M half of ``MendaCloudClient``, as ``_user.py`` is its user-login half.
Loaded on the first access token a call needs: a lookup answered from the
registry-token cache never needs one, and keyring pays for every module it loads.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from menda.cloud_client._hints import CLIENT_HINTS, TOKEN_PATH

if TYPE_CHECKING:
    from menda.cloud_client._client import MendaCloudClient
    from menda.core_auth import AccessToken

__all__ = ["client_credentials", "m2m_token"]

# The client's records, whichever of its modules writes them.
log = logging.getLogger("menda.cloud_client._client")


def _load(client: MendaCloudClient) -> AccessToken | None:
    identity = client.identity
    return client.cache.load_access_token(
        identity.cache_key, host=identity.host, client_id=identity.client_id or ""
    )


def m2m_token(client: MendaCloudClient, rejected: str | None) -> AccessToken:
    """A valid access token other than ``rejected``: cached, else new (and cached)."""
    key = client.identity.cache_key
    token = _load(client)
    if token is not None and token.access_token != rejected and token.is_valid():
        log.debug("access token cache hit for %r", key)
        return token
    log.debug("access token cache miss for %r", key)
    lock = client.cache.lock(key, timeout=client._lock_wait())
    with lock as held:
        if not held:
            log.debug("went on without the lock on access token %r", key)
        token = _load(client)
        if token is not None and token.access_token != rejected and token.is_valid():
            log.debug("access token for %r written by another process", key)
            return token
        client._after_lock_wait(lock, "access token")
        token = client.client_credentials()
        if not client.cache.store_access_token(key, token):
            log.debug("could not cache the access token for %r", key)
        return token


def client_credentials(client: MendaCloudClient) -> AccessToken:
    """A new access token for the M2M identity from the token endpoint (not cached)."""
    identity = client.identity
    client_id = identity.client_id or ""
    with client._one_call():
        body = client._request(
            "POST",
            TOKEN_PATH,
            params={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": identity.client_secret or "",
            },
            hints=CLIENT_HINTS,
        )
    from menda.cloud_client._parse import m2m_token_from_body

    what = f"POST {TOKEN_PATH} at {identity.host}"
    return m2m_token_from_body(body, what, host=identity.host, client_id=client_id)
