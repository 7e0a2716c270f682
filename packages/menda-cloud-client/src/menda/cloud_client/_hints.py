"""menda cloud's paths, and what an error status of each means for the user."""

from __future__ import annotations

from menda.core_auth import ENV_CLIENT_ID, ENV_CLIENT_SECRET, ENV_HOST

__all__ = [
    "CLIENT_HINTS",
    "DISCOVERY_PATH",
    "PLAIN_HINTS",
    "REGISTRY_HINTS",
    "REGISTRY_PATH",
    "TOKEN_PATH",
    "WHOAMI_PATH",
]

API = "/api/v1"
TOKEN_PATH = API + "/auth/oauth2/token"
REGISTRY_PATH = API + "/auth/registry/token"
DISCOVERY_PATH = API + "/auth/discovery"
WHOAMI_PATH = API + "/auth/whoami"

_NOT_FOUND = (
    f"Check the host setting ({ENV_HOST} or the profile's host): it must be menda cloud's "
    "API base URL"
)
_CREDENTIALS = (
    f"Check the client id and secret ({ENV_CLIENT_ID} / {ENV_CLIENT_SECRET}, or the "
    "profile's client_id / client_secret)"
)
#: The token endpoint with client credentials.
CLIENT_HINTS = {400: _CREDENTIALS, 401: _CREDENTIALS, 404: _NOT_FOUND}
#: The registry exchange.
REGISTRY_HINTS = {
    401: "menda cloud rejected a fresh token too: run 'menda auth login', or check the M2M client",
    403: "Your Menda identity may not use the CodeArtifact registry: ask your Menda "
    "administrator for access",
    404: _NOT_FOUND,
}
#: Every other endpoint.
PLAIN_HINTS = {404: _NOT_FOUND}
