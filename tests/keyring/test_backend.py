"""The backend in-process, against the emulator over real sockets."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pytest
from keyring.errors import PasswordSetError

from menda.keyring import backend as backend_module
from menda.keyring.backend import MendaCodeArtifactKeyring

if TYPE_CHECKING:
    from menda.testing import MendaCloudEmulator

HOST = "menda-private-058264169513.d.codeartifact.eu-west-1.amazonaws.com"
INDEX = f"https://{HOST}/pypi/menda-plugins/simple/"


@pytest.fixture
def kr() -> MendaCodeArtifactKeyring:
    return MendaCodeArtifactKeyring()


@pytest.fixture
def m2m_env(
    menda_home: object, menda_cloud: MendaCloudEmulator, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, str]:
    menda_cloud.add_m2m_client("ci-bot", "s3cr3t-client-secret")
    monkeypatch.setenv("MENDA_CLIENT_ID", "ci-bot")
    monkeypatch.setenv("MENDA_CLIENT_SECRET", "s3cr3t-client-secret")
    monkeypatch.setenv("MENDA_HOST", menda_cloud.url)
    return "ci-bot", "s3cr3t-client-secret"


def test_priority_is_a_constant_nine() -> None:
    assert MendaCodeArtifactKeyring.priority == 9
    assert MendaCodeArtifactKeyring.viable


@pytest.mark.parametrize(
    "service",
    [
        "https://pypi.org/simple/",
        "pypi.org",
        "python-poetry-check",
        "poetry-repository-private",
        f"https://{HOST}.evil.example/pypi/x/simple/",
        f"https://{HOST}@evil.example/",
        f"https://evil.example/?u={HOST}",
    ],
)
def test_other_services_get_none_without_touching_config_or_network(
    kr: MendaCodeArtifactKeyring,
    service: str,
    menda_home: object,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # No config, no emulator: if the backend tried anything it would log an error.
    assert kr.get_password(service, "aws") is None
    assert kr.get_credential(service, None) is None
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


def test_get_password_returns_a_token_the_emulator_minted(
    kr: MendaCodeArtifactKeyring, m2m_env: tuple[str, str], menda_cloud: MendaCloudEmulator
) -> None:
    token = kr.get_password(INDEX, "aws")
    assert token is not None
    assert menda_cloud.validate_registry_token(
        token, domain="menda-private", owner="058264169513", region="eu-west-1"
    )
    assert menda_cloud.count(endpoint="token") == 1
    assert menda_cloud.count(endpoint="registry") == 1


def test_get_credential_without_username_answers_aws(
    kr: MendaCodeArtifactKeyring, m2m_env: tuple[str, str]
) -> None:
    cred = kr.get_credential(INDEX, None)
    assert cred is not None
    assert cred.username == "aws"
    assert cred.password


def test_second_call_is_served_from_the_cache(
    kr: MendaCodeArtifactKeyring, m2m_env: tuple[str, str], menda_cloud: MendaCloudEmulator
) -> None:
    first = kr.get_password(INDEX, "aws")
    second = kr.get_password(HOST, "aws")  # the host form shares the domain's token
    assert first == second
    assert menda_cloud.count(endpoint="registry") == 1


def test_registry_body_carries_repository_and_format_from_the_url(
    kr: MendaCodeArtifactKeyring, m2m_env: tuple[str, str], menda_cloud: MendaCloudEmulator
) -> None:
    kr.get_password(INDEX, "aws")
    (req,) = [r for r in menda_cloud.requests if r.endpoint == "registry"]
    assert req.body == {
        "registry_type": "codeartifact",
        "domain": "menda-private",
        "domain_owner": "058264169513",
        "region": "eu-west-1",
        "repository": "menda-plugins",
        "format": "pypi",
    }


def test_other_username_gets_none_and_a_hint(
    kr: MendaCodeArtifactKeyring,
    m2m_env: tuple[str, str],
    menda_cloud: MendaCloudEmulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="menda"):
        assert kr.get_password(INDEX, "alice") is None
    assert "'aws'" in caplog.text
    assert menda_cloud.count() == 0


def test_failure_is_one_actionable_line_and_none(
    kr: MendaCodeArtifactKeyring, menda_home: object, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="menda"):
        assert kr.get_password(INDEX, "aws") is None
    (record,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert record.getMessage().startswith("Menda config file not found")
    assert record.getMessage().endswith("[ConfigFileNotFoundError]")
    assert record.exc_info is None


def test_denied_domain_reports_the_403(
    kr: MendaCodeArtifactKeyring,
    menda_home: object,
    menda_cloud: MendaCloudEmulator,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    menda_cloud.add_m2m_client("ci-bot", "pw", domains=["other-domain"])
    monkeypatch.setenv("MENDA_CLIENT_ID", "ci-bot")
    monkeypatch.setenv("MENDA_CLIENT_SECRET", "pw")
    monkeypatch.setenv("MENDA_HOST", menda_cloud.url)
    with caplog.at_level(logging.WARNING, logger="menda"):
        assert kr.get_password(INDEX, "aws") is None
    assert "403" in caplog.text
    assert "[MendaCloudAPIError]" in caplog.text


def test_set_and_delete_are_no_ops_for_codeartifact(
    kr: MendaCodeArtifactKeyring, menda_home: object, menda_cloud: MendaCloudEmulator
) -> None:
    kr.set_password(INDEX, "aws", "a-token-someone-tried-to-store")
    kr.delete_password(INDEX, "aws")
    assert menda_cloud.count() == 0


def test_set_for_other_services_passes_to_the_next_backend(kr: MendaCodeArtifactKeyring) -> None:
    # keyring's chainer moves on when a backend raises NotImplementedError.
    with pytest.raises(NotImplementedError):
        kr.set_password("https://pypi.org/", "me", "pw")
    with pytest.raises(PasswordSetError):
        kr.set_password("https://pypi.org/", "me", "pw")


def test_version_matches_pyproject() -> None:
    import re
    from pathlib import Path

    import menda.keyring

    pyproject = Path(__file__).resolve().parents[2] / "packages/menda-keyring/pyproject.toml"
    m = re.search(r'^version = "([^"]+)"', pyproject.read_text(), re.MULTILINE)
    assert m and m.group(1) == menda.keyring.__version__


def test_stderr_handler_is_attached_only_when_nobody_configured_logging(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(backend_module, "_handler", None)
    menda_logger = logging.getLogger("menda")
    monkeypatch.setattr(menda_logger, "handlers", [])
    backend_module._configure_logging()
    assert len(menda_logger.handlers) == 1
    handler = menda_logger.handlers[0]
    assert handler.level == logging.WARNING
    monkeypatch.setenv("MENDA_LOG_LEVEL", "debug")
    backend_module._configure_logging()
    assert len(menda_logger.handlers) == 1
    assert handler.level == logging.DEBUG
