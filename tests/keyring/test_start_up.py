"""Structure that keeps `keyring` fast: what importing and answering costs.

Wall-clock figures live in benchmarks/run.py; these tests pin the structure
behind them, each in a fresh interpreter so nothing is already imported.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from menda.testing import MendaCloudEmulator, MendaHome

HOST = "menda-private-058264169513.d.codeartifact.eu-west-1.amazonaws.com"
INDEX = f"https://{HOST}/pypi/menda-plugins/simple/"
HEAVY = ("requests", "urllib3", "filelock", "charset_normalizer", "idna", "certifi")

PROBE = r"""
import json, sys
import keyring.backend  # keyring's own cost is not ours
opened = []
importing = [True]
def hook(event, args):
    if event == "open" and importing[0]:
        opened.append(str(args[0]))
sys.addaudithook(hook)
import menda.keyring.backend as backend
importing[0] = False
after_import = sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)
answer = None
if len(sys.argv) > 1:
    answer = backend.MendaCodeArtifactKeyring().get_password(sys.argv[1], "aws")
after_answer = sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)
print(json.dumps({"opened": opened, "after_import": after_import,
                  "after_answer": after_answer, "answer": answer}))
""".replace("HEAVY", repr(HEAVY))


def probe(env: dict[str, str], *args: str) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        env={**env, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_importing_the_backend_reads_only_its_own_modules(m2m_env: dict[str, str]) -> None:
    seen = probe(m2m_env)
    # Opening our own .py/.pyc files is importing; anything else (config,
    # cache, metadata) would be I/O on every keyring run.
    others = [p for p in seen["opened"] if not p.endswith((".py", ".pyc"))]  # type: ignore[attr-defined]
    assert others == []
    assert all("menda" in p for p in seen["opened"]), seen["opened"]  # type: ignore[attr-defined]
    assert seen["after_import"] == []


def test_other_urls_import_nothing_heavy(m2m_env: dict[str, str]) -> None:
    seen = probe(m2m_env, "https://pypi.org/simple/")
    assert seen["answer"] is None
    assert seen["after_answer"] == []


def test_request_counts_cold_access_cached_and_warm(
    m2m_env: dict[str, str], menda_cloud: MendaCloudEmulator, menda_home: MendaHome
) -> None:
    cold = probe(m2m_env, INDEX)
    assert cold["answer"]
    assert (menda_cloud.count(endpoint="token"), menda_cloud.count(endpoint="registry")) == (1, 1)

    # Only the access token cached: one exchange, no token request.
    for entry in (menda_home.cache_dir / "menda-keyring").glob("registry-*.json"):
        entry.unlink()
    menda_cloud.clear_log()
    access_only = probe(m2m_env, INDEX)
    assert access_only["answer"]
    assert (menda_cloud.count(endpoint="token"), menda_cloud.count(endpoint="registry")) == (0, 1)

    menda_cloud.clear_log()
    warm = probe(m2m_env, INDEX)
    assert warm["answer"] == access_only["answer"]
    assert menda_cloud.count() == 0
    # The warm answer came from the cache without loading the HTTP stack.
    assert warm["after_answer"] == []
