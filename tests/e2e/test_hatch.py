"""The real hatch (1.18.2), in its own environment with keyring and our backend beside it.

``hatch publish`` asks keyring in its own process, once and only for the
password: ``get_password(<upload url>, <user>)``. The user is ``-u`` (or
``HATCH_INDEX_USER``), the repository's config, ``~/.pypirc`` or the one it
remembers; with none of them it prompts, offering ``__token__`` (PyPI's), and
with ``-n`` it stops. It never asks keyring for a username.

Two things of this test world stand in for the network, both in the hatch
process (``RUNNER``): host names other than loopback are not resolved, each
lookup is recorded (so a direct connection fails here and shows up), and, when
asked, hatch's HTTP transport is given ``HTTPS_PROXY``. hatch 1.18.2 ignores the
proxy variables when it publishes (pypa/hatch#1908): without that, it would
reach for the genuine CodeArtifact host itself, past the fake repository.
``hatch build`` installs hatchling into its build environment with uv: from a
local wheelhouse, offline.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from tests.e2e.conftest import (
    E2E,
    TOOL_ENV_ROOT,
    ToolEnvironment,
    ToolUnavailable,
    assert_no_outbound_attempt,
    assert_no_secret,
    assert_one_token_and_one_exchange,
    build_tool_environment,
    our_failure_lines,
    output_of,
    tool_env,
    write_library,
)

from menda.testing import build_wheel

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

HATCH = ("hatch==1.18.2", "keyring==25.7.0")
# What `hatch build` installs into its build environment (the version beside hatch).
HATCHLING = "hatchling==1.33.0"
UPLOADED, VERSION = "menda-uploaded", "0.1.0"
WHEEL, SDIST = f"menda_uploaded-{VERSION}-py3-none-any.whl", f"menda_uploaded-{VERSION}.tar.gz"

# hatch's own entry point, in a process where only loopback names resolve.
RUNNER = """\
import os, socket, sys

_getaddrinfo = socket.getaddrinfo


def _loopback_only(host, *args, **kwargs):
    name = host.decode() if isinstance(host, bytes) else str(host)
    if name not in ("127.0.0.1", "localhost", "::1"):
        with open(os.environ["E2E_HATCH_LOOKUPS"], "a", encoding="utf-8") as log:
            log.write(name + "\\n")
        raise socket.gaierror(socket.EAI_NONAME, "not resolved in the test world: " + name)
    return _getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = _loopback_only

if os.environ.get("E2E_HATCH_VIA_PROXY"):
    import httpx2

    _init = httpx2.HTTPTransport.__init__

    def _via_proxy(self, *args, **kwargs):
        kwargs.setdefault("proxy", os.environ["HTTPS_PROXY"])
        _init(self, *args, **kwargs)

    httpx2.HTTPTransport.__init__ = _via_proxy

from hatch.cli import main

main()
"""


@pytest.fixture(scope="module")
def hatch_tool() -> ToolEnvironment:
    try:
        return build_tool_environment(HATCH)
    except ToolUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def wheelhouse() -> Path:
    """hatchling and its dependencies as wheels, downloaded once, for offline builds."""
    python = f"py{sys.version_info.major}.{sys.version_info.minor}"
    final = TOOL_ENV_ROOT / f"wheelhouse-{HATCHLING.replace('==', '-')}-{python}"
    if (final / ".complete").exists():
        return final
    TOOL_ENV_ROOT.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=".building-", dir=TOOL_ENV_ROOT))
    argv = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:"]
    try:
        result = subprocess.run(
            [*argv, "--dest", str(building), HATCHLING],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if result.returncode != 0:
            pytest.skip(f"could not download {HATCHLING}: {result.stderr.strip()[-500:]}")
        (building / ".complete").touch()
        try:
            building.rename(final)
        except OSError:  # another session got there first
            if not (final / ".complete").exists():
                raise
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"could not download {HATCHLING}: {exc}")
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return final


def hatch(
    e2e: E2E,
    tool: ToolEnvironment,
    *args: str | Path,
    cwd: Path,
    via_proxy: bool = False,
    stdin: str = "",
    **env: str | None,
) -> subprocess.CompletedProcess[str]:
    """Run hatch with its config, data and cache in the test's directory; stdin is ``stdin``."""
    config = e2e.tmp / "hatch" / "config.toml"
    config.parent.mkdir(exist_ok=True)
    config.touch()
    own: dict[str, str | None] = {
        **{name: None for name in os.environ if name.startswith("HATCH_")},
        "HATCH_CONFIG": str(config),
        "HATCH_DATA_DIR": str(e2e.tmp / "hatch" / "data"),
        "HATCH_CACHE_DIR": str(e2e.tmp / "hatch" / "cache"),
        "NO_COLOR": "1",
        "E2E_HATCH_LOOKUPS": str(lookups_log(e2e)),
        "E2E_HATCH_VIA_PROXY": "1" if via_proxy else None,
    }
    environment = tool_env(e2e, **{**own, **env})
    return subprocess.run(
        [str(tool.script("python")), "-c", RUNNER, *map(str, args)],
        env=environment,
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def lookups_log(e2e: E2E) -> Path:
    return e2e.tmp / "hatch" / "lookups.log"


def lookups(e2e: E2E) -> list[str]:
    """The host names hatch tried to resolve itself (none is resolved)."""
    path = lookups_log(e2e)
    return path.read_text(encoding="utf-8").split() if path.exists() else []


def upload_url(e2e: E2E) -> str:
    return e2e.repo.repository(e2e.index_url).upload_url


def upload_posts(e2e: E2E, status: int) -> int:
    repository = e2e.repo.repository(e2e.index_url)
    return e2e.repo.count(
        host=repository.host, method="POST", path=f"/pypi/{repository.name}/", status=status
    )


def assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    output = output_of(result)
    assert result.returncode == 0, output
    assert "menda-keyring:" not in output
    assert "Traceback" not in output


@pytest.mark.parametrize("user_from", ["option", "env"], ids=["-u aws", "HATCH_INDEX_USER"])
def test_hatch_build_and_publish_as_aws_upload_with_a_token_from_keyring(
    e2e: E2E, hatch_tool: ToolEnvironment, wheelhouse: Path, user_from: str
) -> None:
    e2e.use_env_m2m()
    project = write_library(
        e2e.tmp / "lib",
        UPLOADED,
        VERSION,
        requires="hatchling",
        backend="hatchling.build",
        src=True,
    )

    built = hatch(
        e2e,
        hatch_tool,
        "build",
        cwd=project,
        UV_FIND_LINKS=str(wheelhouse),
        UV_OFFLINE="1",
    )
    assert_ok(built)
    assert sorted(p.name for p in (project / "dist").iterdir()) == [WHEEL, SDIST]

    user = ["-u", "aws"] if user_from == "option" else []
    published = hatch(
        e2e,
        hatch_tool,
        "publish",
        "-n",
        "-r",
        upload_url(e2e),
        *user,
        cwd=project,
        via_proxy=True,
        HATCH_INDEX_USER="aws" if user_from == "env" else None,
    )

    assert_ok(published)
    output = output_of(published)
    assert f"{Path('dist', WHEEL)} ... success" in output, output
    assert f"{Path('dist', SDIST)} ... success" in output, output
    assert e2e.repo.files(e2e.index_url, UPLOADED) == [WHEEL, SDIST]
    assert upload_posts(e2e, 200) == 2
    assert upload_posts(e2e, 401) == 0
    # One get_password: one access token, one registry token, on both uploads.
    assert_one_token_and_one_exchange(e2e)
    assert lookups(e2e) == []
    assert_no_outbound_attempt(e2e)
    assert_no_secret(e2e, output_of(built), output)


@pytest.mark.parametrize(
    ("flags", "stdin"),
    [(["-n"], ""), ([], "\n__token__\n")],
    ids=["no-prompt", "prompted-then-__token__"],
)
def test_hatch_publish_without_a_user_never_gets_a_token(
    e2e: E2E, hatch_tool: ToolEnvironment, flags: list[str], stdin: str
) -> None:
    e2e.use_env_m2m()
    wheel = build_wheel(e2e.tmp / "dist", UPLOADED, VERSION)

    result = hatch(
        e2e,
        hatch_tool,
        "publish",
        *flags,
        "-r",
        upload_url(e2e),
        wheel,
        cwd=e2e.tmp,
        via_proxy=True,
        stdin=stdin,
    )

    output = output_of(result)
    assert result.returncode != 0, output
    if flags:
        assert "Missing required option: user" in output, output
    else:
        # `[__token__]` is no default: Enter asks again. With `__token__` typed,
        # keyring is asked for its password, we answer None without a word, and
        # hatch prompts for one; stdin is closed.
        prompt = f"Username for '{upload_url(e2e)}' [__token__]:"
        assert output.count(prompt) == 2, output
        assert "Password / Token:" in output, output
        assert "Aborted!" in output, output
    assert "menda-keyring:" not in output
    assert "Traceback" not in output
    assert e2e.cloud.count() == 0
    assert e2e.repo.files(e2e.index_url, UPLOADED) == []
    assert upload_posts(e2e, 200) == 0


def test_hatch_publish_without_an_identity_shows_our_line_once(
    e2e: E2E, hatch_tool: ToolEnvironment
) -> None:
    wheel = build_wheel(e2e.tmp / "dist", UPLOADED, VERSION)

    result = hatch(
        e2e,
        hatch_tool,
        "publish",
        "-n",
        "-r",
        upload_url(e2e),
        "-u",
        "aws",
        wheel,
        cwd=e2e.tmp,
        via_proxy=True,
    )

    output = output_of(result)
    assert result.returncode != 0, output
    (line,) = our_failure_lines(result, "ConfigFileNotFoundError")
    assert line.startswith("menda-keyring: Menda config file not found"), output
    assert line in result.stderr
    assert "Missing required option: auth" in output, output
    assert "Traceback" not in output
    assert e2e.cloud.count() == 0
    assert e2e.repo.files(e2e.index_url, UPLOADED) == []
    assert upload_posts(e2e, 200) == 0


def test_hatch_publish_ignores_https_proxy(e2e: E2E, hatch_tool: ToolEnvironment) -> None:
    # Without the test's help, hatch connects to the upload host itself: behind a
    # proxy that is the only way out, `hatch publish` cannot reach CodeArtifact.
    e2e.use_env_m2m()
    wheel = build_wheel(e2e.tmp / "dist", UPLOADED, VERSION)
    host = e2e.repo.repository(e2e.index_url).host

    result = hatch(
        e2e, hatch_tool, "publish", "-n", "-r", upload_url(e2e), "-u", "aws", wheel, cwd=e2e.tmp
    )

    output = output_of(result)
    assert result.returncode != 0, output
    assert f"Error uploading to repository: {upload_url(e2e)}" in output, output
    assert host in lookups(e2e)
    assert e2e.repo.count(host=host) == 0  # the proxy never saw it
    # The token was fetched before the connection failed, and is not shown.
    assert e2e.cloud.count("registry", status=200, identity="ci-bot") == 1
    assert "Traceback" not in output
    assert_no_secret(e2e, output)
