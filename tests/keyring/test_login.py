"""`menda-keyring login` / `logout`, the device flow under them, and the profile they add.

Against the emulator, which approves a device login by itself after the first
poll (``device_pending_polls``), or never (a large value). The files are read
back by hand (``configparser``, raw bytes), never with menda.core_auth's reader,
and the published ``menda auth whoami`` (menda-cli 0.5.0) must accept the login.
"""

from __future__ import annotations

import configparser
import io
import json
import secrets
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from menda.cloud_client import DeviceAuthorization, DeviceLogin, MendaCloudClient
from menda.cloud_client._device import DEVICE_GRANT_TYPE, pkce_pair
from menda.core_auth import Identity, add_u2m_profile, load_profile
from menda.error import InvalidConfigError, MendaAuthError, MendaCloudAPIError
from menda.keyring.__main__ import main
from menda.keyring._prompt import Countdown
from menda.testing import CLI_TOKEN_KEYS, Malformed, MendaCloudEmulator, Status

if TYPE_CHECKING:
    from collections.abc import Iterator

    from menda.testing import MendaHome
    from menda.testing.published import PublishedClients

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX modes and signals")
NEVER = 10**6  # device_pending_polls: the emulator never approves

# ------------------------------------------------------------------------------- helpers


@pytest.fixture
def cloud() -> Iterator[MendaCloudEmulator]:
    # An interval of 0: each poll follows the last at once, so a login takes milliseconds.
    with MendaCloudEmulator(device_interval=0) as emulator:
        emulator.add_user("alice")
        emulator.clear_log()
        yield emulator


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse
        code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def sections(path: Path) -> dict[str, dict[str, str]]:
    parser = configparser.ConfigParser(interpolation=None, default_section="\0")
    parser.read_string(path.read_text(encoding="utf-8"))
    return {name: dict(parser[name]) for name in parser.sections()}


def endpoints(cloud: MendaCloudEmulator) -> list[tuple[str, int | None]]:
    return [(r.endpoint, r.status) for r in cloud.requests]


def assert_no_secret(home: MendaHome, *outputs: str) -> None:
    found = home.cached_secrets()
    text = "".join(outputs)
    for secret in found:
        assert secret not in text
    assert "mdc_" not in text  # a device code


def u2m_identity(cloud: MendaCloudEmulator, profile: str = "default") -> Identity:
    return Identity(
        host=cloud.url,
        auth_type="u2m",
        cache_key=f"u2m-profile:{profile}",
        source=f"profile:{profile}",
        profile=profile,
    )


def registry_entry(home: MendaHome, key: str, identity: str) -> Path:
    return home.write_cache_entry(
        key,
        {
            "token": "eyJ2ZXIiOjF9." + secrets.token_hex(8),
            "expires_at": "2099-01-01T00:00:00Z",
            "host": "https://api.example.menda.cloud",
            "identity": identity,
            "domain": "menda-private",
            "domain_owner": "058264169513",
            "region": "eu-west-1",
        },
    )


# ---------------------------------------------------------------------------------- login


@posix_only
def test_login_with_host_creates_the_profile_and_writes_the_cli_login(
    menda_home: MendaHome, cloud: MendaCloudEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    before = time.time()
    code, out, err = run(capsys, "login", "--host", cloud.url + "/", "--no-browser")

    assert code == 0, err
    config = menda_home.config_path
    assert config.read_text(encoding="utf-8") == (
        f"[default]\nauth_type = u2m\nhost = {cloud.url}\n"
    )
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert stat.S_IMODE(config.parent.stat().st_mode) == 0o700
    # The CLI's exact format: its six keys in its order, str() values, a blank line after.
    token_file = menda_home.token_file
    text = token_file.read_text(encoding="utf-8")
    assert text.startswith("[default]\nid_token = mit_") and text.endswith("\n\n")
    login = sections(token_file)["default"]
    assert tuple(login) == CLI_TOKEN_KEYS
    assert login["token_type"] == "Bearer"
    assert login["expires_in"] == "3600"
    assert before <= float(login["cached_at"]) <= time.time()
    assert login["cached_at"] == str(float(login["cached_at"]))
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600

    assert endpoints(cloud) == [
        ("discovery", 200),
        ("device_authorize", 200),
        ("device_token", 400),  # {"detail": "pending"}
        ("device_token", 200),
    ]
    authorize, poll = cloud.requests[1], cloud.requests[3]
    assert authorize.params is not None
    assert authorize.params["client_id"] == "menda-cli"
    assert authorize.params["scope"] == "openid"
    assert authorize.params["code_challenge_method"] == "S256"
    assert (poll.grant_type, poll.content_type) == (DEVICE_GRANT_TYPE, "application/json")

    assert f"{cloud.url}/device?user_code=" in err
    assert "approve the code" in err
    assert "Created profile 'default'" in err
    assert out.startswith("Logged in with profile 'default'")
    assert_no_secret(menda_home, out, err)


def test_the_login_is_used_by_the_client_and_the_cli_whoami_format(
    menda_home: MendaHome, cloud: MendaCloudEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "login", "--host", cloud.url, "--no-browser")
    assert code == 0, err
    cloud.clear_log()

    with MendaCloudClient(u2m_identity(cloud)) as client:
        assert client.whoami().username == "alice"
    assert endpoints(cloud) == [("whoami", 200)]  # the login was valid: no refresh


def test_profile_comes_from_menda_profile_id_and_an_existing_profile_needs_no_host(
    menda_home: MendaHome,
    cloud: MendaCloudEmulator,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = menda_home.write_config({"dev": {"host": cloud.url, "auth_type": "u2m"}})
    before = config.read_bytes()
    monkeypatch.setenv("MENDA_PROFILE_ID", "dev")

    code, out, err = run(capsys, "login", "--no-browser")

    assert code == 0, err
    assert config.read_bytes() == before
    assert list(sections(menda_home.token_file)) == ["dev"]
    assert "Created profile" not in err
    assert "profile 'dev'" in out


def test_host_appends_the_profile_keeping_comments_other_sections_and_logins(
    menda_home: MendaHome, cloud: MendaCloudEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    original = (
        "# my Menda profiles\n"
        "[ci]\n"
        "auth_type = m2m\n"
        "; the secret holds a '%'\n"
        "host = https://api.example.menda.cloud\n"
        "client_id = ci-bot\n"
        "client_secret = s3cr%t#1;x"  # no final newline
    )
    config = menda_home.config_path
    config.parent.mkdir(parents=True)
    config.write_text(original, encoding="utf-8")
    menda_home.write_cached_login("other", access_token="mat_other", cached_at=1.5)
    other_before = sections(menda_home.token_file)["other"]

    code, _, err = run(capsys, "login", "--profile", "dev", "--host", cloud.url, "--no-browser")

    assert code == 0, err
    assert config.read_text(encoding="utf-8") == (
        original + f"\n\n[dev]\nauth_type = u2m\nhost = {cloud.url}\n"
    )
    assert load_profile("dev", path=config).auth_type == "u2m"
    logins = sections(menda_home.token_file)
    assert list(logins) == ["other", "dev"]
    assert logins["other"] == other_before


def test_a_new_login_forgets_the_profiles_cached_registry_tokens(
    menda_home: MendaHome, cloud: MendaCloudEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    # Another user may log in with the same profile: the old user's tokens must go.
    menda_home.add_u2m_profile(cloud, user="bob")
    mine = registry_entry(menda_home, "registry-" + "a" * 32, "u2m-profile:default")
    other = registry_entry(menda_home, "registry-" + "b" * 32, "u2m-profile:other")

    code, _, err = run(capsys, "login", "--no-browser")

    assert code == 0, err
    assert not mine.exists()
    assert other.exists()


def test_an_m2m_profile_is_refused_without_a_request(
    menda_home: MendaHome, cloud: MendaCloudEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    menda_home.add_m2m_profile(cloud, "ci-bot", "s3cret")

    code, out, err = run(capsys, "login", "--no-browser")

    assert code == 1
    assert out == ""
    assert err.startswith("menda-keyring: Profile 'default' in ")
    assert "M2M profile (auth_type = m2m)" in err
    assert err.count("\n") == 1
    assert cloud.requests == []
    assert not menda_home.token_file.exists()


@pytest.mark.parametrize("config_exists", [False, True])
def test_a_missing_profile_without_host_says_to_pass_host(
    menda_home: MendaHome,
    cloud: MendaCloudEmulator,
    capsys: pytest.CaptureFixture[str],
    config_exists: bool,
) -> None:
    if config_exists:
        menda_home.write_config({"dev": {"host": cloud.url, "auth_type": "u2m"}})

    code, _, err = run(capsys, "login", "--no-browser")

    assert code == 1
    assert err.startswith("menda-keyring: ")
    assert "--host URL" in err
    assert err.count("\n") == 1
    assert cloud.requests == []
    assert menda_home.config_path.exists() is config_exists
    assert not menda_home.token_file.exists()


def test_an_existing_profile_with_another_host_is_left_alone(
    menda_home: MendaHome, cloud: MendaCloudEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    config = menda_home.write_config(
        {"default": {"host": "https://api.example.menda.cloud", "auth_type": "u2m"}}
    )
    before = config.read_bytes()

    code, _, err = run(capsys, "login", "--host", cloud.url, "--no-browser")

    assert code == 1
    assert "has host https://api.example.menda.cloud, not " + cloud.url in err
    assert config.read_bytes() == before
    assert cloud.requests == []


def test_m2m_credentials_in_the_environment_are_refused(
    menda_home: MendaHome,
    cloud: MendaCloudEmulator,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in (("ID", "ci"), ("SECRET", "s3cret"), ("HOST", cloud.url)):
        monkeypatch.setenv(f"MENDA_CLIENT_{name}" if name != "HOST" else "MENDA_HOST", value)

    code, _, err = run(capsys, "login", "--host", cloud.url, "--no-browser")

    assert code == 1
    assert "are set: installers use that M2M identity" in err
    assert cloud.requests == []


def test_an_unparseable_token_file_is_found_out_before_the_user_approves(
    menda_home: MendaHome, cloud: MendaCloudEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    menda_home.cache_dir.mkdir(parents=True)
    menda_home.token_file.write_text("[default]\naccess_token = x\n[default]\n", encoding="utf-8")
    before = menda_home.token_file.read_bytes()

    code, _, err = run(capsys, "login", "--host", cloud.url, "--no-browser")

    assert code == 1
    assert "is not a valid INI file" in err
    assert cloud.requests == []
    assert menda_home.token_file.read_bytes() == before
    assert not menda_home.config_path.exists()


def test_a_refused_login_is_one_line_and_writes_nothing(
    menda_home: MendaHome, capsys: pytest.CaptureFixture[str]
) -> None:
    with MendaCloudEmulator(device_interval=0) as empty:  # no user to approve it: 403
        code, out, err = run(capsys, "login", "--host", empty.url, "--no-browser")

    assert code == 1
    assert out == ""
    last = err.splitlines()[-1]
    assert last.startswith("menda-keyring: POST /api/v1/auth/device/token at ")
    assert "HTTP 403" in last
    assert not menda_home.config_path.exists()
    assert not menda_home.token_file.exists()


@pytest.mark.parametrize(
    "case",
    [
        ({"DISPLAY": ":0"}, "linux", [], True),
        ({"WAYLAND_DISPLAY": "wayland-0"}, "linux", [], True),
        ({"BROWSER": "firefox"}, "linux", [], True),
        ({}, "linux", [], False),  # no display: a text browser would take the terminal
        ({}, "darwin", [], True),
        ({"DISPLAY": ":0"}, "linux", ["--no-browser"], False),
    ],
)
def test_the_browser_opens_unless_no_browser_or_no_display(
    menda_home: MendaHome,
    cloud: MendaCloudEmulator,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    case: tuple[dict[str, str], str, list[str], bool],
) -> None:
    environ, platform, flag, opened = case
    import webbrowser

    urls: list[str] = []
    monkeypatch.setattr(webbrowser, "open", lambda url, *a, **k: urls.append(url) or True)
    monkeypatch.setattr(sys, "platform", platform)
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)

    code, _, err = run(capsys, "login", "--host", cloud.url, *flag)

    assert code == 0, err
    assert len(urls) == int(opened)
    if opened:
        assert urls[0].startswith(cloud.url + "/device?user_code=")
        assert "(Opened it in your browser.)" in err
    else:
        assert "browser." not in err


def test_an_empty_profile_name_is_a_usage_error(
    menda_home: MendaHome, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "login", "--profile", " ")
    assert code == 2
    assert "must not be empty" in err


# ---------------------------------------------------------------------------------- Ctrl-C


def _spawn(home: MendaHome, *argv: str) -> subprocess.Popen[str]:
    env = home.env(PYTHONPATH=None, BROWSER=None, DISPLAY=None, WAYLAND_DISPLAY=None)
    return subprocess.Popen(
        [sys.executable, "-m", "menda.keyring", *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _snapshot(directory: Path) -> dict[str, bytes]:
    if not directory.exists():
        return {}
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()
    }


@posix_only
@pytest.mark.parametrize("profile_exists", [False, True])
def test_ctrl_c_while_waiting_leaves_every_file_as_it_was(
    menda_home: MendaHome, capsys: pytest.CaptureFixture[str], profile_exists: bool
) -> None:
    with MendaCloudEmulator(device_interval=1, device_pending_polls=NEVER) as slow:
        slow.add_user("alice")
        if profile_exists:
            menda_home.add_u2m_profile(slow, profile="default", user="bob")
        menda_home.write_cached_login("other", access_token="mat_other")
        before = _snapshot(menda_home.home)

        process = _spawn(menda_home, "login", "--host", slow.url, "--no-browser")
        try:
            deadline = time.monotonic() + 30
            while slow.count("device_token") < 1 and process.poll() is None:
                assert time.monotonic() < deadline, "no poll within 30 s"
                time.sleep(0.05)
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()

    assert process.returncode == 130, err
    assert err.splitlines()[-1] == "menda-keyring: login cancelled; nothing was written."
    assert "Traceback" not in err
    assert out == ""
    assert _snapshot(menda_home.home) == before  # no new file, no temporary file either
    assert_no_secret(menda_home, out, err)


# ------------------------------------------------------------------------------- countdown


def test_the_countdown_rewrites_one_line_on_a_terminal() -> None:
    stream = io.StringIO()
    countdown = Countdown(stream, tty=True)
    for left in (600.0, 599.6, 599.0, 9.0):
        countdown(left)
    countdown.close()

    text = stream.getvalue()
    assert "\n" not in text
    shown = [part for part in text.split("\r") if part.strip()]
    assert [part.split(":", 1)[1].split(" left")[0].strip() for part in shown] == [
        "10:00",
        "9:59",
        "0:09",
    ]
    assert text.endswith("\r")


def test_the_countdown_prints_a_line_every_30_seconds_without_a_terminal() -> None:
    stream = io.StringIO()
    countdown = Countdown(stream, tty=False)
    for left in range(600, 500, -1):
        countdown(float(left))
    countdown.close()

    assert stream.getvalue().splitlines() == [
        "Waiting for approval: 10:00 left (Ctrl-C to cancel)",
        "Waiting for approval: 9:30 left (Ctrl-C to cancel)",
        "Waiting for approval: 9:00 left (Ctrl-C to cancel)",
        "Waiting for approval: 8:30 left (Ctrl-C to cancel)",
    ]


# ------------------------------------------------------------------------- the device flow


class FakeTime:
    """``sleep`` moves ``monotonic``: a poll loop that takes no real time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def flow(cloud: MendaCloudEmulator, clock: FakeTime) -> DeviceLogin:
    return DeviceLogin(u2m_identity(cloud), sleep=clock.sleep, monotonic=clock.monotonic)


def test_pkce_pair_is_an_s256_pair() -> None:
    import base64
    import hashlib

    verifier, challenge = pkce_pair()
    assert 43 <= len(verifier) <= 128
    digest = hashlib.sha256(verifier.encode()).digest()
    assert challenge == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert pkce_pair()[0] != verifier
    with pytest.raises(ValueError, match="43 to 128"):
        pkce_pair(42)


def test_the_authorization_repr_shows_no_device_code_or_verifier(
    menda_home: MendaHome, cloud: MendaCloudEmulator
) -> None:
    with flow(cloud, FakeTime()) as device:
        authorization = device.start()
    assert authorization.device_code.startswith("mdc_")
    assert authorization.device_code not in repr(authorization)
    assert authorization.code_verifier not in repr(authorization)
    assert authorization.user_code in repr(authorization)


def test_polls_every_interval_and_slow_down_adds_five_seconds(
    menda_home: MendaHome, cloud: MendaCloudEmulator
) -> None:
    cloud.device_interval = 2
    cloud.inject("device_token", Status(400, error="slow_down"))
    clock = FakeTime()
    ticks: list[float] = []
    with flow(cloud, clock) as device:
        authorization = device.start()
        login = device.wait(authorization, on_tick=ticks.append)

    assert login.id_token.startswith("mit_")
    # slow_down, then pending, then approved: 2 s, then 7 s twice, in slices of 1 s.
    assert sum(clock.slept) == pytest.approx(2 + 7 + 7)
    assert max(clock.slept) <= 1.0
    assert ticks[0] == pytest.approx(600)
    assert endpoints(cloud)[-3:] == [
        ("device_token", 400),
        ("device_token", 400),
        ("device_token", 200),
    ]


def test_a_few_failed_polls_are_retried_by_the_next_poll(
    menda_home: MendaHome, cloud: MendaCloudEmulator
) -> None:
    cloud.inject("device_token", Status(503), times=3)
    with flow(cloud, FakeTime()) as device:
        login = device.wait(device.start())
    assert login.access_token.startswith("mat_")
    # Each poll is one attempt: three 503s, the pending answer, the login.
    assert [status for _, status in endpoints(cloud)[2:]] == [503, 503, 503, 400, 200]


def test_four_failed_polls_in_a_row_end_the_login(
    menda_home: MendaHome, cloud: MendaCloudEmulator
) -> None:
    cloud.inject("device_token", Status(503), times=4)
    with flow(cloud, FakeTime()) as device, pytest.raises(MendaCloudAPIError, match="HTTP 503"):
        device.wait(device.start())


def test_a_code_not_approved_in_time_ends_the_login(
    menda_home: MendaHome, cloud: MendaCloudEmulator
) -> None:
    cloud.device_pending_polls = NEVER
    cloud.device_code_lifetime = 60
    cloud.device_interval = 5
    clock = FakeTime()
    with flow(cloud, clock) as device, pytest.raises(MendaAuthError, match="within 1 min"):
        device.wait(device.start())
    assert clock.now == pytest.approx(1060)
    assert cloud.count("device_token") == 11  # at 5, 10, ..., 55 s


@pytest.mark.parametrize(
    ("error", "message"),
    [("access_denied", "denied in the browser"), ("expired_token", "expired before")],
)
def test_rfc_8628_refusals_end_the_login_with_a_clear_message(
    menda_home: MendaHome, cloud: MendaCloudEmulator, error: str, message: str
) -> None:
    cloud.inject("device_token", Status(400, error=error))
    with flow(cloud, FakeTime()) as device, pytest.raises(MendaAuthError, match=message):
        device.wait(device.start())


def _authorize_answer(**fields: object) -> dict[str, object]:
    answer: dict[str, object] = {
        "device_code": "mdc_" + secrets.token_urlsafe(8),
        "user_code": "ABCD-EFGH",
        "verification_uri": "/device",
        "verification_uri_complete": "/device?user_code=ABCD-EFGH",
        "expires_in": 600,
        "interval": 1,
    }
    answer.update(fields)
    return {k: v for k, v in answer.items() if v is not None}


def test_relative_verification_urls_are_joined_to_the_host_as_the_cli_does(
    menda_home: MendaHome,
) -> None:
    with MendaCloudEmulator(path_prefix="/menda") as prefixed:
        prefixed.inject("device_authorize", Malformed(body=_authorize_answer()))
        with flow(prefixed, FakeTime()) as device:
            authorization = device.start()
        origin = prefixed.origin
    # urljoin keeps scheme, host and port and drops the host's path prefix.
    assert authorization.url == origin + "/device?user_code=ABCD-EFGH"
    assert authorization.verification_uri == origin + "/device"


def test_without_a_complete_url_the_user_enters_the_code(
    menda_home: MendaHome, cloud: MendaCloudEmulator
) -> None:
    cloud.inject(
        "device_authorize",
        Malformed(body=_authorize_answer(verification_uri_complete=None, interval=None)),
    )
    with flow(cloud, FakeTime()) as device:
        authorization = device.start()
    assert authorization.url == cloud.url + "/device"
    assert authorization.interval == 5  # RFC 8628's default


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"verification_uri_complete": "javascript:alert(1)"}, "not an http"),
        ({"verification_uri": "file:///etc/passwd"}, "not an http"),
        ({"user_code": "AB\x1b[2JCD"}, "short printable code"),
        ({"expires_in": 0}, "between 1 s and a day"),
        ({"interval": "5"}, "whole number"),
        ({"device_code": "has space"}, "characters a token cannot have"),
    ],
)
def test_an_authorization_we_cannot_show_safely_is_refused(
    menda_home: MendaHome, cloud: MendaCloudEmulator, fields: dict[str, object], why: str
) -> None:
    cloud.inject("device_authorize", Malformed(body=_authorize_answer(**fields)))
    with flow(cloud, FakeTime()) as device, pytest.raises(MendaCloudAPIError, match=why):
        device.start()


def test_device_authorization_is_exported() -> None:
    import menda.cloud_client

    assert menda.cloud_client.DeviceAuthorization is DeviceAuthorization
    assert {"DeviceAuthorization", "DeviceLogin"} <= set(menda.cloud_client.__all__)


# --------------------------------------------------------------------------------- logout


def test_logout_removes_only_that_profiles_login_and_its_registry_tokens(
    menda_home: MendaHome, cloud: MendaCloudEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    menda_home.write_cached_login("dev", access_token="mat_dev", cached_at=1.25)
    code, _, err = run(capsys, "login", "--host", cloud.url, "--no-browser")
    assert code == 0, err
    menda_home.write_cached_login("ci", access_token="mat_ci", cached_at=2.5)
    before = sections(menda_home.token_file)
    mine = [registry_entry(menda_home, "registry-" + c * 32, "u2m-profile:default") for c in "ab"]
    kept = [
        registry_entry(menda_home, "registry-" + "c" * 32, "u2m-profile:dev"),
        registry_entry(menda_home, "registry-" + "d" * 32, "m2m-profile:default"),
    ]
    access = menda_home.write_cache_entry("m2m-profile:default", {"access_token": "mat_m2m"})

    code, out, err = run(capsys, "logout")

    assert (code, err) == (0, "")
    assert out == (
        f"Logged out of profile 'default': removed its login from {menda_home.token_file}; "
        "deleted 2 cached CodeArtifact tokens.\n"
    )
    after = sections(menda_home.token_file)
    assert list(after) == ["dev", "ci"]
    assert after == {name: before[name] for name in ("dev", "ci")}
    assert not any(p.exists() for p in mine)
    assert all(p.exists() for p in [*kept, access])
    assert menda_home.config_path.exists()  # the profile stays


def test_logout_without_a_login_is_fine(
    menda_home: MendaHome, capsys: pytest.CaptureFixture[str]
) -> None:
    menda_home.write_cached_login("dev", access_token="mat_dev")
    before = menda_home.token_file.read_bytes()

    code, out, _ = run(capsys, "logout", "--profile", "default")

    assert code == 0
    assert out.startswith("No login for profile 'default' in ")
    assert menda_home.token_file.read_bytes() == before


def test_logout_leaves_an_unparseable_token_file_alone(
    menda_home: MendaHome, capsys: pytest.CaptureFixture[str]
) -> None:
    menda_home.cache_dir.mkdir(parents=True)
    menda_home.token_file.write_text("[default]\naccess_token = x\n[default]\n", encoding="utf-8")
    before = menda_home.token_file.read_bytes()

    code, out, err = run(capsys, "logout")

    assert code == 1
    assert out == ""
    assert err.startswith("menda-keyring: Cannot log out of profile 'default'")
    assert err.count("\n") == 1
    assert menda_home.token_file.read_bytes() == before


# ------------------------------------------------------------------------ add_u2m_profile


@pytest.mark.parametrize(
    ("original", "expected_tail"),
    [
        (b"", b"[new]\nauth_type = u2m\nhost = https://api.example.menda.cloud\n"),
        (b"[a]\nhost = h\n", b"[a]\nhost = h\n\n[new]\nauth_type = u2m\n"),
        (b"[a]\r\nhost = h\r\n", b"[a]\r\nhost = h\r\n\r\n[new]\r\nauth_type = u2m\r\n"),
        (b"\xef\xbb\xbf[a]\nhost = h", b"\xef\xbb\xbf[a]\nhost = h\n\n[new]\n"),
    ],
)
def test_add_u2m_profile_appends_to_the_bytes_already_there(
    tmp_path: Path, original: bytes, expected_tail: bytes
) -> None:
    path = tmp_path / "mendacfg"
    if original:
        path.write_bytes(original)

    profile = add_u2m_profile("new", "API.example.menda.cloud/", path=path)

    assert profile.host == "https://api.example.menda.cloud"
    assert profile.auth_type == "u2m"
    data = path.read_bytes()
    assert data.startswith(original)
    assert expected_tail in data


@posix_only
def test_add_u2m_profile_writes_through_a_symbolic_link(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "mendacfg"
    real.parent.mkdir()
    real.write_text("[a]\nhost = https://a.example\n", encoding="utf-8")
    link = tmp_path / "mendacfg"
    link.symlink_to(real)

    add_u2m_profile("new", "https://b.example", path=link)

    assert link.is_symlink()
    assert "[new]" in real.read_text(encoding="utf-8")


@posix_only
def test_add_u2m_profile_creates_private_directories_and_file(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "mendacfg"
    add_u2m_profile("default", "https://api.example.menda.cloud", path=path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o700


@pytest.mark.parametrize(
    ("text", "name", "host", "match"),
    [
        ("[dev]\nhost = https://x.example\n", "dev", "https://y.example", "already exists"),
        ("[dev]\nhost = a\n[dev]\nhost = b\n", "x", "https://y.example", "cannot be parsed"),
        ("", "DEFAULT", "https://y.example", "DEFAULT"),
        ("", "a]b", "https://y.example", r"'\['"),
        ("", "50%", "https://y.example", r"'%'"),
        ("", " dev", "https://y.example", "space"),
        ("", "dev", "http://api.example.menda.cloud", "https"),
    ],
)
def test_add_u2m_profile_refuses_and_leaves_the_file_alone(
    tmp_path: Path, text: str, name: str, host: str, match: str
) -> None:
    path = tmp_path / "mendacfg"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidConfigError, match=match):
        add_u2m_profile(name, host, path=path)
    assert path.read_text(encoding="utf-8") == text


def test_add_u2m_profile_dry_run_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "mendacfg"
    profile = add_u2m_profile("dev", "https://api.example.menda.cloud", path=path, dry_run=True)
    assert (profile.name, profile.path) == ("dev", path)
    assert not path.exists()


def test_add_u2m_profile_uses_menda_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "elsewhere.ini"
    monkeypatch.setenv("MENDA_CONFIG_FILE", str(path))
    assert add_u2m_profile("dev", "https://api.example.menda.cloud").path == path
    assert path.exists()


# ------------------------------------------------------------------- the published CLI


@pytest.fixture
def menda_cli(published_clients: PublishedClients) -> str:
    """The published CLI's `menda` command (the shared, version-pinned environment)."""
    return published_clients.menda


@pytest.mark.slow
@pytest.mark.skipif(sys.version_info < (3, 11), reason="menda-cli 0.5.0 requires Python 3.11")
def test_the_published_menda_auth_whoami_accepts_our_login(
    menda_home: MendaHome,
    cloud: MendaCloudEmulator,
    capsys: pytest.CaptureFixture[str],
    menda_cli: str,
) -> None:
    # Another profile's login, written by the CLI's own format, must stay readable too.
    menda_home.write_cached_login("other", access_token="mat_other")
    code, _, err = run(capsys, "login", "--host", cloud.url, "--no-browser")
    assert code == 0, err
    cloud.clear_log()
    env = menda_home.env(NO_COLOR="1", COLUMNS="200", VIRTUAL_ENV=None, PYTHONPATH=None)

    result = subprocess.run(
        [menda_cli, "auth", "whoami"], env=env, capture_output=True, text=True, timeout=60
    )

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Username: alice" in output
    assert "Type:     user" in output
    assert endpoints(cloud) == [("whoami", 200)]
    assert cloud.requests[0].token_kind == "id_token"
    listed = json.dumps(sections(menda_home.token_file))
    assert '"other"' in listed
