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
    kr: MendaCodeArtifactKeyring, m2m_env: dict[str, str], menda_cloud: MendaCloudEmulator
) -> None:
    token = kr.get_password(INDEX, "aws")
    assert token is not None
    assert menda_cloud.validate_registry_token(
        token, domain="menda-private", owner="058264169513", region="eu-west-1"
    )
    assert menda_cloud.count(endpoint="token") == 1
    assert menda_cloud.count(endpoint="registry") == 1


def test_get_credential_without_username_answers_aws(
    kr: MendaCodeArtifactKeyring, m2m_env: dict[str, str]
) -> None:
    cred = kr.get_credential(INDEX, None)
    assert cred is not None
    assert cred.username == "aws"
    assert cred.password


def test_second_call_is_served_from_the_cache(
    kr: MendaCodeArtifactKeyring, m2m_env: dict[str, str], menda_cloud: MendaCloudEmulator
) -> None:
    first = kr.get_password(INDEX, "aws")
    second = kr.get_password(HOST, "aws")  # the host form shares the domain's token
    assert first == second
    assert menda_cloud.count(endpoint="registry") == 1


def test_registry_exchange_is_authorization_token_and_no_body(
    kr: MendaCodeArtifactKeyring, m2m_env: dict[str, str], menda_cloud: MendaCloudEmulator
) -> None:
    kr.get_password(INDEX, "aws")
    (token,) = [r for r in menda_cloud.requests if r.endpoint == "token"]
    assert token.grant_type == "client_credentials"
    assert token.client_id == "ci-bot"
    (req,) = [r for r in menda_cloud.requests if r.endpoint == "registry"]
    assert req.body is None
    assert (req.token_header, req.token_scheme) == ("authorizationToken", "Bearer")


def test_other_username_gets_none_and_one_hint_on_stderr(
    kr: MendaCodeArtifactKeyring,
    m2m_env: dict[str, str],
    menda_cloud: MendaCloudEmulator,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert kr.get_password(INDEX, "alice") is None
    assert kr.get_password(HOST, "alice") is None
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert line.startswith("menda-keyring: AWS CodeArtifact expects the username 'aws'")
    assert menda_cloud.count() == 0


def test_token_probe_username_gets_none_silently(
    kr: MendaCodeArtifactKeyring,
    m2m_env: dict[str, str],
    menda_cloud: MendaCloudEmulator,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # PDM probes get_password(url, "__token__"); that is not the user's choice.
    assert kr.get_password(INDEX, "__token__") is None
    assert capsys.readouterr().err == ""
    assert menda_cloud.count() == 0


def test_plain_http_service_gets_no_token(
    kr: MendaCodeArtifactKeyring,
    m2m_env: dict[str, str],
    menda_cloud: MendaCloudEmulator,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert kr.get_password(INDEX.replace("https://", "http://"), "aws") is None
    assert capsys.readouterr().err == ""
    assert menda_cloud.count() == 0


def test_failure_is_one_actionable_line_once_per_process_and_none(
    kr: MendaCodeArtifactKeyring,
    menda_home: object,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG, logger="menda"):
        assert kr.get_password(INDEX, "aws") is None
        assert kr.get_password(HOST, "aws") is None  # uv asks again with the host
        assert kr.get_credential(INDEX, None) is None
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("menda-keyring: Menda config file not found")
    assert line.endswith("[ConfigFileNotFoundError]")
    # The same text reaches the logger at DEBUG, for applications that want it.
    said = [r for r in caplog.records if r.name == "menda.keyring" and "config file" in r.message]
    assert said and all(r.levelno == logging.DEBUG for r in said)


def test_failure_reaches_stderr_when_the_application_filters_other_loggers(
    kr: MendaCodeArtifactKeyring,
    menda_home: object,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Poetry drops every record not from its own loggers.
    class OnlyPoetry(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return record.name.startswith("poetry")

    handler = logging.StreamHandler()
    handler.addFilter(OnlyPoetry())
    monkeypatch.setattr(logging.getLogger(), "handlers", [handler])
    assert kr.get_password(INDEX, "aws") is None
    assert "menda-keyring: Menda config file not found" in capsys.readouterr().err


def test_denied_domain_reports_the_403(
    kr: MendaCodeArtifactKeyring,
    menda_home: object,
    menda_cloud: MendaCloudEmulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    menda_cloud.add_m2m_client("ci-bot", "pw", domains=["other-domain"])
    monkeypatch.setenv("MENDA_CLIENT_ID", "ci-bot")
    monkeypatch.setenv("MENDA_CLIENT_SECRET", "pw")
    monkeypatch.setenv("MENDA_HOST", menda_cloud.url)
    assert kr.get_password(INDEX, "aws") is None
    err = capsys.readouterr().err
    assert "HTTP 403" in err
    assert err.rstrip().endswith("[MendaCloudAPIError]")


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


def test_library_warnings_reach_stderr_once_and_debug_adds_a_trace(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    backend_module._configure_logging()
    library = logging.getLogger("menda.core_auth")
    library.warning("Ignoring the M2M environment variables: %s", "MENDA_HOST is not set")
    library.warning("Ignoring the M2M environment variables: %s", "MENDA_HOST is not set")
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["menda-keyring: Ignoring the M2M environment variables: MENDA_HOST is not set"]

    monkeypatch.setattr(backend_module, "_configured", False)
    monkeypatch.setattr(logging.getLogger("menda"), "handlers", [])
    monkeypatch.setenv("MENDA_LOG_LEVEL", "debug")
    backend_module._configure_logging()
    logging.getLogger("menda.cloud_client").debug("a trace line")
    assert "a trace line" in capsys.readouterr().err
