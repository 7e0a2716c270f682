"""HTTP client for menda cloud: OAuth2 tokens and CodeArtifact registry-token exchange.

Importing this package does not import `requests`; the first request does.
"""

from __future__ import annotations

from menda.cloud_client._client import MendaCloudClient, WhoAmI
from menda.cloud_client._models import RegistryCredential, RegistryRequest
from menda.cloud_client._version import __version__

__all__ = ["MendaCloudClient", "RegistryCredential", "RegistryRequest", "WhoAmI", "__version__"]
