"""The menda cloud the cases talk to: the strict emulator of ``menda.testing``, on loopback."""

from __future__ import annotations

import secrets
from typing import Protocol

from benchmarks._homes import Identities

__all__ = ["Cloud", "RequestLog"]

ENV_CLIENT_ID = "menda-bench-env"
PROFILE_CLIENT_ID = "menda-bench-profile"
USER = "bench-user"


class RequestLog(Protocol):
    """What timing a run needs of the cloud: its request counts since the last clear."""

    def clear(self) -> None: ...

    def counts(self) -> tuple[int, int]: ...


class Cloud:
    """An emulator with one identity per source: two M2M clients and a logged-in user."""

    def __init__(self) -> None:
        from menda.testing import MendaCloudEmulator

        self.emulator = MendaCloudEmulator()
        self.emulator.start()
        env_client = (ENV_CLIENT_ID, secrets.token_urlsafe(24))
        profile_client = (PROFILE_CLIENT_ID, secrets.token_urlsafe(24))
        for client_id, secret in (env_client, profile_client):
            self.emulator.add_m2m_client(client_id, secret)
        login = self.emulator.add_user(USER)
        self.identities = Identities(
            host=self.emulator.url,
            env_client=env_client,
            profile_client=profile_client,
            login=login.cache_fields(self.emulator.now()),
        )

    @property
    def url(self) -> str:
        return self.emulator.url

    def clear(self) -> None:
        self.emulator.clear_log()

    def counts(self) -> tuple[int, int]:
        """(token requests, registry requests) since the last ``clear()``."""
        return self.emulator.count("token"), self.emulator.count("registry")

    def stop(self) -> None:
        self.emulator.stop()
