"""``menda-demo`` end to end: real uv, the emulator, the fake CodeArtifact, nothing secret shown."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from menda.testing.demo import CLIENT_SECRET, HOST, STEPS

# Anything shaped like a token the emulator mints (access, id, refresh, device code, client
# secret) or a CodeArtifact token (five base64url parts).
TOKEN_RE = re.compile(
    r"\b(?:mat|mit|mrt|mdc|mcs)_[A-Za-z0-9_\-]{8,}|\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-.]{8,}"
)


def _clean_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MENDA_", "PIP_", "UV_"))}
    env.update(overrides)
    return env


def _demo(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "menda.testing", "demo", *args],
        env=_clean_env() if env is None else env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def uv_available() -> None:
    if not (os.environ.get("UV") or shutil.which("uv")):
        pytest.skip("uv is not installed")


@pytest.fixture(scope="module")
def demo_run(uv_available: None) -> subprocess.CompletedProcess[str]:
    return _demo()


@pytest.mark.e2e
def test_demo_runs_every_step_and_exits_zero(
    demo_run: subprocess.CompletedProcess[str],
) -> None:
    assert demo_run.returncode == 0, demo_run.stdout + demo_run.stderr
    for n in range(1, STEPS + 1):
        assert f"[{n}/{STEPS}] " in demo_run.stdout


@pytest.mark.e2e
def test_demo_installs_the_private_package_through_the_keyring(
    demo_run: subprocess.CompletedProcess[str],
) -> None:
    out = demo_run.stdout
    assert f"--index-url https://aws@{HOST}/pypi/menda-plugins/simple/" in out
    assert "installed: menda-hello 1.0.0 + public-dep 1.2.0" in out
    assert "grant_type=client_credentials" in out
    assert "endpoint=registry status=200" in out


@pytest.mark.e2e
def test_demo_shows_cache_files_private_and_warm_install_without_requests(
    demo_run: subprocess.CompletedProcess[str],
) -> None:
    out = demo_run.stdout
    entry = r"menda-keyring/m2m-profile%3Adefault\.json\s+mode 0600\s+m2m access token"
    assert re.search(entry, out)
    assert re.search(r"menda-keyring/registry-[0-9a-f]{32}\.json\s+mode 0600\s+registry token", out)
    assert "new requests to menda cloud: 0" in out
    assert "warm install made 0 request(s) to menda cloud" in out


@pytest.mark.e2e
def test_demo_shows_the_user_path_login_then_install_without_signing_in_again(
    demo_run: subprocess.CompletedProcess[str],
) -> None:
    out = demo_run.stdout
    assert "menda-keyring login --host http://127.0.0.1:" in out
    assert re.search(r"\.token\s+mode 0600\s+the Menda CLI's logins: me", out)
    assert "requests to menda cloud: 0 token, 1 registry exchange" in out


@pytest.mark.e2e
def test_demo_prints_commands_a_user_can_copy_and_labels_servers_truthfully(
    demo_run: subprocess.CompletedProcess[str],
) -> None:
    out = demo_run.stdout
    # Each command carries the environment it needs to reach the demo's servers.
    command = r"\$ HOME=\S+ HTTPS_PROXY=http://127\.0\.0\.1:\d+ .*SSL_CERT_FILE=\S+ .*uv pip"
    assert re.search(command, out)
    assert "CodeArtifact proxy (TLS) http://" not in out
    assert "HTTPS proxy (a forward proxy at http://127.0.0.1:" in out


@pytest.mark.e2e
def test_demo_shows_the_users_one_line_for_a_missing_profile(
    demo_run: subprocess.CompletedProcess[str],
) -> None:
    assert "menda-keyring: No profile 'nope'" in demo_run.stdout


@pytest.mark.e2e
def test_demo_output_holds_no_secret_or_token(
    demo_run: subprocess.CompletedProcess[str],
) -> None:
    text = demo_run.stdout + demo_run.stderr
    assert CLIENT_SECRET not in text
    assert "client_secret = ********" in text
    assert TOKEN_RE.findall(text) == []


@pytest.mark.e2e
def test_demo_removes_its_temporary_directory(
    demo_run: subprocess.CompletedProcess[str],
) -> None:
    match = re.search(r"removed (\S+menda-demo-\S+)", demo_run.stdout)
    assert match is not None, demo_run.stdout
    assert not Path(match.group(1)).exists()


@pytest.mark.e2e
def test_demo_keep_leaves_the_home_with_config_and_cache(uv_available: None) -> None:
    result = _demo("--keep", "--quiet", "--no-failure")
    assert result.returncode == 0, result.stdout + result.stderr
    match = re.search(r"kept the temporary directory: (\S+)", result.stdout)
    assert match is not None, result.stdout
    tmp = Path(match.group(1))
    try:
        home = tmp / "home" / ".menda"
        assert (home / "mendacfg").is_file()
        entries = home / "tokens" / "cache" / "menda-keyring"
        assert (entries / "m2m-profile%3Adefault.json").is_file()
        # --quiet keeps to the step lines and the summary.
        assert "client_secret" not in result.stdout
        assert "[9/10] Failure example skipped" in result.stdout
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_demo_without_uv_exits_non_zero_with_a_clear_message(tmp_path: Path) -> None:
    bindir = str(Path(sys.executable).parent)
    if shutil.which("uv", path=bindir):
        pytest.skip("uv sits next to the interpreter; cannot hide it")
    env = _clean_env(PATH=bindir, HOME=str(tmp_path), USERPROFILE=str(tmp_path))
    env.pop("UV", None)
    result = _demo(env=env)
    assert result.returncode != 0
    assert "uv was not found" in result.stdout
