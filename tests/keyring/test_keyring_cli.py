"""The real `keyring` command line, as uv and pip run it, in a subprocess."""

from __future__ import annotations

import json
import subprocess
from typing import TYPE_CHECKING

from menda.testing import console_script

if TYPE_CHECKING:
    from menda.testing import MendaCloudEmulator

HOST = "menda-private-058264169513.d.codeartifact.eu-west-1.amazonaws.com"
INDEX = f"https://{HOST}/pypi/menda-plugins/simple/"
KEYRING = console_script("keyring")


def run_keyring(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KEYRING, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_list_backends_shows_ours(env: dict[str, str]) -> None:
    result = run_keyring("--list-backends", env=env)
    assert result.returncode == 0
    assert "menda.keyring.backend.MendaCodeArtifactKeyring (priority: 9)" in result.stdout


def test_diagnose_still_works(env: dict[str, str]) -> None:
    result = run_keyring("diagnose", env=env)
    assert result.returncode == 0, result.stderr
    assert "config path" in result.stdout


def test_get_prints_the_token_and_nothing_else(
    m2m_env: dict[str, str], menda_cloud: MendaCloudEmulator
) -> None:
    result = run_keyring("get", INDEX, "aws", env=m2m_env)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert result.stdout == token + "\n"
    assert menda_cloud.validate_registry_token(
        token, domain="menda-private", owner="058264169513", region="eu-west-1"
    )
    assert result.stderr == ""


def test_second_process_makes_no_request(
    m2m_env: dict[str, str], menda_cloud: MendaCloudEmulator
) -> None:
    first = run_keyring("get", INDEX, "aws", env=m2m_env)
    second = run_keyring("get", HOST, "aws", env=m2m_env)
    assert first.stdout == second.stdout
    assert menda_cloud.count(endpoint="token") == 1
    assert menda_cloud.count(endpoint="registry") == 1


def test_creds_mode_without_username_answers_aws(m2m_env: dict[str, str]) -> None:
    result = run_keyring("get", INDEX, "--mode", "creds", env=m2m_env)
    assert result.returncode == 0, result.stderr
    username, password = result.stdout.splitlines()
    assert username == "aws"
    assert password


def test_pip_json_creds_form(m2m_env: dict[str, str]) -> None:
    result = run_keyring("--mode=creds", "--output=json", "get", INDEX, "aws", env=m2m_env)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["username"] == "aws"
    assert answer["password"]


def test_other_url_exits_1_silently_apart_from_keyring(env: dict[str, str]) -> None:
    result = run_keyring("get", "https://pypi.org/simple/", "aws", env=env)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "menda" not in result.stderr


def test_no_config_is_one_line_without_traceback(env: dict[str, str]) -> None:
    result = run_keyring("get", INDEX, "aws", env=env)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("menda-keyring: Menda config file not found")
    assert lines[0].endswith("[ConfigFileNotFoundError]")


def test_debug_level_traces_without_secrets(
    m2m_env: dict[str, str], menda_cloud: MendaCloudEmulator
) -> None:
    result = run_keyring("get", INDEX, "aws", env={**m2m_env, "MENDA_LOG_LEVEL": "debug"})
    assert result.returncode == 0
    token = result.stdout.strip()
    assert "menda-keyring:" in result.stderr
    assert "s3cr3t-client-secret" not in result.stderr
    assert token not in result.stderr
