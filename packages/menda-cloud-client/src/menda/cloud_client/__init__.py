"""HTTP client for menda cloud: OAuth2 tokens, device logins, CodeArtifact registry tokens.

Importing this package does not import `requests`; the first request does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from menda.cloud_client._client import MendaCloudClient, WhoAmI
from menda.cloud_client._models import RegistryCredential, RegistryRequest
from menda.cloud_client._version import __version__

if TYPE_CHECKING:
    from menda.cloud_client._device import DeviceAuthorization, DeviceLogin

__all__ = [
    "DeviceAuthorization",
    "DeviceLogin",
    "MendaCloudClient",
    "RegistryCredential",
    "RegistryRequest",
    "WhoAmI",
    "__version__",
]


def __getattr__(name: str) -> Any:
    # The device login is loaded on first use: the keyring backend imports this package
    # on every install and never logs anyone in.
    if name in ("DeviceAuthorization", "DeviceLogin"):
        from menda.cloud_client import _device

        value = getattr(_device, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
