"""The real `uv publish` uploads to the fake CodeArtifact with a token from our backend.

uv asks keyring only when it knows the username (docs/installers.md): with
``--username aws`` (or ``UV_PUBLISH_USERNAME``) and ``--keyring-provider
subprocess`` it runs ``keyring get <upload url> aws``, the workspace's keyring
on PATH. Without a username it never asks and fails with "Missing credentials".
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from tests.e2e.conftest import (
    E2E,
    assert_no_outbound_attempt,
    assert_no_secret,
    assert_one_token_and_one_exchange,
    our_failure_lines,
    output_of,
)

from menda.testing.wheels import build_wheel

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PROJECT, VERSION = "menda-uploaded", "0.1.0"


def wheel_of(e2e: E2E) -> Path:
    return build_wheel(e2e.tmp / "dist", PROJECT, VERSION)


def upload_url(e2e: E2E) -> str:
    return e2e.repo.repository(e2e.index_url).upload_url


def uv_publish(
    e2e: E2E, *args: str | Path, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return e2e.run(e2e.uv, "publish", "--no-progress", *args, cwd=cwd)


def upload_posts(e2e: E2E, status: int) -> int:
    repository = e2e.repo.repository(e2e.index_url)
    return e2e.repo.count(
        host=repository.host, method="POST", path=f"/pypi/{repository.name}/", status=status
    )


def assert_uploaded_with_one_token(
    e2e: E2E, result: subprocess.CompletedProcess[str], wheel: Path
) -> None:
    output = output_of(result)
    assert result.returncode == 0, output
    assert "menda-keyring:" not in output
    assert e2e.repo.files(e2e.index_url, PROJECT) == [wheel.name]
    assert upload_posts(e2e, 200) == 1
    assert upload_posts(e2e, 401) == 0
    assert_one_token_and_one_exchange(e2e)
    assert_no_outbound_attempt(e2e)
    assert_no_secret(e2e, output)


def test_uv_publish_with_username_aws_uploads_with_a_token_from_keyring(e2e: E2E) -> None:
    e2e.use_env_m2m()
    wheel = wheel_of(e2e)

    result = uv_publish(
        e2e,
        "--publish-url",
        upload_url(e2e),
        "--username",
        "aws",
        "--keyring-provider",
        "subprocess",
        wheel,
    )

    assert_uploaded_with_one_token(e2e, result, wheel)


def test_uv_publish_to_a_named_index_whose_url_names_aws(e2e: E2E) -> None:
    # `--index` takes the index's publish-url; the username in its `url` (the form
    # uv needs for installs) is enough, with no --username.
    e2e.use_env_m2m()
    wheel = wheel_of(e2e)
    project = e2e.tmp / "app"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        f"""\
[project]
name = "demo-app"
version = "0.1.0"
requires-python = ">=3.10"

[tool.uv]
keyring-provider = "subprocess"

[[tool.uv.index]]
name = "menda-private"
url = "{e2e.aws_index_url}"
publish-url = "{upload_url(e2e)}"
explicit = true
""",
        encoding="utf-8",
    )

    result = uv_publish(e2e, "--index", "menda-private", wheel, cwd=project)

    assert_uploaded_with_one_token(e2e, result, wheel)


def test_uv_publish_without_a_username_never_asks_keyring(e2e: E2E) -> None:
    e2e.use_env_m2m()
    wheel = wheel_of(e2e)

    result = uv_publish(
        e2e, "--publish-url", upload_url(e2e), "--keyring-provider", "subprocess", wheel
    )

    output = output_of(result)
    assert result.returncode != 0, output
    assert "Missing credentials" in output, output
    assert e2e.cloud.count() == 0
    assert e2e.repo.files(e2e.index_url, PROJECT) == []
    assert upload_posts(e2e, 200) == 0


def test_uv_publish_without_an_identity_shows_our_line(e2e: E2E) -> None:
    wheel = wheel_of(e2e)

    result = uv_publish(
        e2e,
        "--publish-url",
        upload_url(e2e),
        "--username",
        "aws",
        "--keyring-provider",
        "subprocess",
        wheel,
    )

    output = output_of(result)
    assert result.returncode != 0, output
    # uv may start keyring more than once (URL, then host): one distinct line.
    lines = our_failure_lines(result, "ConfigFileNotFoundError")
    assert lines, output
    assert len(set(lines)) == 1
    assert lines[0].startswith("menda-keyring: Menda config file not found"), output
    assert "Traceback" not in output
    assert e2e.cloud.count() == 0
    assert e2e.repo.files(e2e.index_url, PROJECT) == []
    assert upload_posts(e2e, 200) == 0
