"""64 real `keyring get` processes at once, on a mix of cold and warm keys, one emulator.

4 M2M identities x 2 CodeArtifact domains = 8 registry keys, 8 processes each.
Warm before the start: the registry entries of (a, d1), (a, d2), (b, d1), (c, d1),
so half the processes are on warm keys; the access entry of c is then removed.
Expected: one token request per identity with no valid access token (c, d) and one
registry request per cold registry key ((b, d2), (c, d2), (d, d1), (d, d2)).

menda cloud picks the registry from the identity, not the request (each identity
here has its own), so a token is checked against its identity's registry.
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from typing import Any

import pytest

from menda.cloud_client import MendaCloudClient, RegistryRequest
from menda.core_auth import TokenCache, resolve_identity
from menda.testing import MendaCloudEmulator, MendaHome

OWNER, REGION = "058264169513", "eu-west-1"
IDENTITIES = ("load-a", "load-b", "load-c", "load-d")
DOMAINS = ("menda-private", "menda-plugins")
PER_KEY = 8
WARM = {("load-a", "menda-private"), ("load-a", "menda-plugins"), ("load-b", "menda-private")}
WARM_REGISTRY_COLD_ACCESS = ("load-c", "menda-private")


def secret_of(client_id: str) -> str:
    return f"SECRET-{client_id}-7f1e"


def index(domain: str) -> str:
    return f"https://{domain}-{OWNER}.d.codeartifact.{REGION}.amazonaws.com/pypi/repo/simple/"


@pytest.mark.slow
def test_64_processes_on_cold_and_warm_keys_make_one_request_per_key(
    menda_home: MendaHome, menda_cloud: MendaCloudEmulator, keyring_cli: Any
) -> None:
    cache_dir = menda_home.home / "shared-cache"
    cache = TokenCache(cache_dir)
    for client_id in IDENTITIES:
        menda_cloud.add_m2m_client(
            client_id, secret_of(client_id), registry=(f"tenant-of-{client_id}", OWNER, REGION)
        )

    def env_of(client_id: str) -> dict[str, str]:
        return menda_home.env(
            MENDA_CLIENT_ID=client_id,
            MENDA_CLIENT_SECRET=secret_of(client_id),
            MENDA_HOST=menda_cloud.url,
            MENDA_TOKEN_CACHE_DIR=str(cache_dir),
        )

    warm_tokens: dict[tuple[str, str], str] = {}
    for client_id, domain in (*WARM, WARM_REGISTRY_COLD_ACCESS):
        identity = resolve_identity(env_of(client_id))
        with MendaCloudClient(identity, cache=cache) as client:
            credential = client.registry_token(
                RegistryRequest(domain, OWNER, REGION, "repo", "pypi")
            )
        warm_tokens[client_id, domain] = credential.token
    cache.delete("m2m-env:load-c")  # c: registry (c, d1) warm, but no access token
    menda_cloud.clear_log()

    keys = [(client_id, domain) for client_id in IDENTITIES for domain in DOMAINS]
    jobs: list[tuple[tuple[str, str], subprocess.Popen[str]]] = []
    for round_ in range(PER_KEY):
        for key in keys if round_ % 2 == 0 else reversed(keys):
            client_id, domain = key
            env = env_of(client_id)
            proc = subprocess.Popen(
                [keyring_cli.path, "get", index(domain), "aws"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            jobs.append((key, proc))
    assert len(jobs) == 64

    answers: dict[tuple[str, str], set[str]] = {key: set() for key in keys}
    failures = []
    for key, proc in jobs:
        out, err = proc.communicate(timeout=180)
        if proc.returncode != 0 or err:
            failures.append((key, proc.returncode, err))
        answers[key].add(out.strip())
    assert failures == []

    # Every process got a token menda cloud minted for its identity; one token per key.
    minted = {t.token: t.identity for t in menda_cloud.minted_registry_tokens}
    for (client_id, domain), tokens in answers.items():
        (token,) = tokens
        assert minted.get(token) == client_id, (client_id, domain)
        assert menda_cloud.validate_registry_token(
            token, domain=f"tenant-of-{client_id}", owner=OWNER, region=REGION
        )
        if (client_id, domain) in warm_tokens:
            assert token == warm_tokens[client_id, domain]
    assert len({token for tokens in answers.values() for token in tokens}) == len(keys)

    token_requests = Counter(r.client_id for r in menda_cloud.requests if r.endpoint == "token")
    assert token_requests == {"load-c": 1, "load-d": 1}
    # One registry request per cold key: (b, d2), (c, d2), (d, d1), (d, d2).
    registry_requests = Counter(
        r.identity for r in menda_cloud.requests if r.endpoint == "registry"
    )
    assert registry_requests == {"load-b": 1, "load-c": 1, "load-d": 2}

    # No corrupt or half-written file afterwards: every entry is a whole JSON object.
    entries = sorted(cache.entries_dir.glob("*.json"))
    assert len(entries) == len(IDENTITIES) + len(keys)
    for path in entries:
        entry = json.loads(path.read_bytes())
        assert isinstance(entry, dict)
        assert entry.get("access_token") or entry.get("token")
    assert [p.name for p in cache.entries_dir.iterdir() if p.name.endswith(".tmp")] == []
