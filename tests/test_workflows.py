"""The GitHub Actions workflows: schema-valid, least privilege, and shell that works.

The shell steps are run here with bash, the way Actions runs `shell: bash`
(`bash --noprofile --norc -eo pipefail <file>`), with `uv` replaced by a stub
where the real one would build or publish.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

YAML = pytest.importorskip("ruamel.yaml", reason="ruamel.yaml comes with check-jsonschema").YAML

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
CI = WORKFLOWS / "ci.yml"
RELEASE = WORKFLOWS / "release.yml"
PUBLISHED = ("menda-error", "menda-core-auth", "menda-cloud-client", "menda-keyring")
ALL_PYTHONS = ("3.10", "3.11", "3.12", "3.13")
EDGE_PYTHONS = ("3.10", "3.13")

BASH = None if sys.platform == "win32" else shutil.which("bash")
needs_bash = pytest.mark.skipif(
    BASH is None, reason="needs a POSIX bash; the release jobs run on ubuntu-latest"
)


def load(path: Path) -> dict[str, Any]:
    # YAML 1.2 (ruamel's default) keeps the key `on` a string, as Actions reads it.
    data = YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), path
    return data


def triggers(workflow: dict[str, Any]) -> dict[str, Any]:
    # A YAML 1.1 loader would read the key as the boolean True.
    assert "on" in workflow, sorted(map(str, workflow))
    on = workflow["on"]
    assert isinstance(on, dict)
    return on


def run_scripts(workflow: dict[str, Any]) -> list[tuple[str, str]]:
    """Every `run:` script as (job id, script)."""
    return [
        (job_id, step["run"])
        for job_id, job in workflow["jobs"].items()
        for step in job.get("steps", [])
        if "run" in step
    ]


def step_running(workflow: dict[str, Any], job: str, needle: str) -> dict[str, Any]:
    matches = [s for s in workflow["jobs"][job]["steps"] if needle in s.get("run", "")]
    assert len(matches) == 1, f"expected one step of job {job!r} running {needle!r}"
    step: dict[str, Any] = matches[0]
    return step


def step_with_id(workflow: dict[str, Any], job: str, step_id: str) -> dict[str, Any]:
    (step,) = [s for s in workflow["jobs"][job]["steps"] if s.get("id") == step_id]
    return dict(step)


def uses(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in job["steps"] if s.get("uses", "").split("@")[0] == action]


def os_family(runner: str) -> str:
    for family in ("ubuntu", "macos", "windows"):
        if runner.startswith(family):
            return family
    raise AssertionError(f"unexpected runner {runner!r}")


def expand_matrix(matrix: dict[str, Any]) -> list[dict[str, Any]]:
    """The job combinations, by GitHub's rules for the axes, `exclude` and `include`."""
    axes = {k: v for k, v in matrix.items() if k not in ("include", "exclude")}
    combos = [dict(zip(axes, values, strict=True)) for values in itertools.product(*axes.values())]
    combos = [
        c
        for c in combos
        if not any(all(c.get(k) == v for k, v in ex.items()) for ex in matrix.get("exclude", []))
    ]
    originals = [dict(c) for c in combos]
    for inc in matrix.get("include", []):
        fits = [
            i
            for i, orig in enumerate(originals)
            if all(orig[k] == v for k, v in inc.items() if k in axes)
        ]
        for i in fits:
            combos[i].update(inc)
        if not fits:
            combos.append(dict(inc))
    return combos


def run_bash(
    script: str, tmp_path: Path, env: dict[str, str], *, stub_uv: bool = False
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Run `script` as Actions would, in a scratch directory; return it and the uv call log."""
    assert BASH is not None
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    script_file = tmp_path / "step.sh"
    script_file.write_text(script, encoding="utf-8")
    calls = tmp_path / "uv-calls.txt"
    path = os.environ.get("PATH", "")
    if stub_uv:
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir(exist_ok=True)
        stub = bin_dir / "uv"
        stub.write_text(f'#!/bin/sh\necho "$*" >> "{calls}"\n', encoding="utf-8")
        stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
        path = f"{bin_dir}{os.pathsep}{path}"
    proc = subprocess.run(
        [BASH, "--noprofile", "--norc", "-eo", "pipefail", str(script_file)],
        cwd=work,
        env={"PATH": path, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return proc, calls


# --- (a) the vendored GitHub workflow schema ------------------------------------------------

needs_check_jsonschema = pytest.mark.skipif(
    importlib.util.find_spec("check_jsonschema") is None,
    reason="check-jsonschema is not installed (it is in the workspace dev group)",
)


def check_jsonschema(*files: Path) -> subprocess.CompletedProcess[str]:
    # The vendored schema ships inside check-jsonschema: no network needed.
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.github-workflows",
            *map(str, files),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


@needs_check_jsonschema
def test_workflows_match_the_github_workflow_schema() -> None:
    proc = check_jsonschema(CI, RELEASE)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@needs_check_jsonschema
def test_schema_check_rejects_a_misspelt_permission(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        RELEASE.read_text(encoding="utf-8").replace("id-token: write", "id-token: wrote"),
        encoding="utf-8",
    )
    assert check_jsonschema(broken).returncode != 0


# --- (b) structure ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", [CI, RELEASE], ids=["ci", "release"])
def test_top_level_permissions_are_read_only(path: Path) -> None:
    assert load(path)["permissions"] == {"contents": "read"}


@pytest.mark.parametrize("path", [CI, RELEASE], ids=["ci", "release"])
def test_run_scripts_interpolate_no_expressions(path: Path) -> None:
    # `${{ … }}` inside a script is pasted into the shell source before it runs
    # (script injection); values reach scripts through env: instead.
    for job_id, script in run_scripts(load(path)):
        assert "${{" not in script, f"{path.name}, job {job_id}: {script}"


@pytest.mark.parametrize("path", [CI, RELEASE], ids=["ci", "release"])
def test_shell_defaults_to_bash_so_scripts_run_alike_on_every_runner(path: Path) -> None:
    assert load(path)["defaults"]["run"]["shell"] == "bash"


@pytest.mark.parametrize("path", [CI, RELEASE], ids=["ci", "release"])
def test_checkouts_do_not_persist_the_token(path: Path) -> None:
    workflow = load(path)
    for job in workflow["jobs"].values():
        for step in uses(job, "actions/checkout"):
            assert step["with"]["persist-credentials"] is False


def test_ci_runs_on_pushes_to_main_and_pull_requests() -> None:
    on = triggers(load(CI))
    assert set(on) == {"push", "pull_request"}
    assert on["push"]["branches"] == ["main"]


def test_ci_jobs_ask_for_no_permissions_of_their_own() -> None:
    for job_id, job in load(CI)["jobs"].items():
        assert "permissions" not in job, job_id


def test_ci_lint_job_runs_ruff_and_mypy_once() -> None:
    workflow = load(CI)
    lint = workflow["jobs"]["lint"]
    assert "strategy" not in lint
    scripts = [s["run"] for s in lint["steps"] if "run" in s]
    assert scripts == [
        "uv sync --locked",
        "uv run ruff check .",
        "uv run ruff format --check .",
        "uv run mypy",
    ]
    assert not any("ruff" in s or "mypy" in s for job, s in run_scripts(workflow) if job != "lint")


def test_ci_matrix_covers_every_python_on_linux_and_the_edges_elsewhere() -> None:
    test = load(CI)["jobs"]["test"]
    assert test["strategy"]["fail-fast"] is False
    combos = expand_matrix(test["strategy"]["matrix"])
    # A bare 3.10 in YAML is the float 3.1.
    assert all(isinstance(c["python"], str) for c in combos), combos
    got = sorted((os_family(c["os"]), c["python"]) for c in combos)
    want = sorted(
        [("ubuntu", py) for py in ALL_PYTHONS]
        + [(family, py) for family in ("macos", "windows") for py in EDGE_PYTHONS]
    )
    assert got == want
    assert test["runs-on"] == "${{ matrix.os }}"


def test_ci_test_job_syncs_the_lock_on_the_matrix_python_and_runs_pytest() -> None:
    test = load(CI)["jobs"]["test"]
    (setup,) = uses(test, "astral-sh/setup-uv")
    assert setup["uses"] == "astral-sh/setup-uv@v6"
    assert setup["with"]["python-version"] == "${{ matrix.python }}"
    assert [s["run"] for s in test["steps"] if "run" in s] == ["uv sync --locked", "uv run pytest"]


def test_ci_packaging_job_runs_the_layout_checks() -> None:
    step = step_running(load(CI), "packaging", "tests/test_layout.py")
    assert step["run"].strip() == "uv run pytest tests/test_layout.py"


@needs_bash
def test_ci_packaging_builds_each_published_dist_without_sources(tmp_path: Path) -> None:
    step = step_running(load(CI), "packaging", "uv build")
    proc, calls = run_bash(step["run"], tmp_path, {}, stub_uv=True)
    assert proc.returncode == 0, proc.stderr
    assert calls.read_text().splitlines() == [
        f"build --package {dist} --no-sources --out-dir dist/{dist}" for dist in PUBLISHED
    ]


def test_release_triggers_on_exactly_the_published_dists_tags() -> None:
    on = triggers(load(RELEASE))
    assert set(on) == {"push"}
    assert set(on["push"]) == {"tags"}
    assert sorted(on["push"]["tags"]) == sorted(f"{dist}-v*" for dist in PUBLISHED)


def test_release_builds_and_publishes_in_separate_jobs() -> None:
    jobs = load(RELEASE)["jobs"]
    assert set(jobs) == {"build", "publish"}
    assert jobs["publish"]["needs"] == "build"
    assert not uses(jobs["build"], "pypa/gh-action-pypi-publish")
    (publish,) = uses(jobs["publish"], "pypa/gh-action-pypi-publish")
    assert publish["uses"] == "pypa/gh-action-pypi-publish@release/v1"
    # The job that can publish runs no repository code: no checkout, no scripts.
    assert not uses(jobs["publish"], "actions/checkout")
    assert not [s for s in jobs["publish"]["steps"] if "run" in s]


def test_only_the_publish_job_may_mint_an_oidc_token() -> None:
    workflow = load(RELEASE)
    jobs = workflow["jobs"]
    assert jobs["publish"]["permissions"] == {"id-token": "write"}
    assert "permissions" not in jobs["build"]
    assert "id-token" not in workflow["permissions"]


def test_release_uses_trusted_publishing_not_a_stored_token() -> None:
    text = RELEASE.read_text(encoding="utf-8")
    assert "secrets." not in text
    assert "password" not in text


def test_publish_job_uses_the_pypi_environment_with_a_project_url() -> None:
    env = load(RELEASE)["jobs"]["publish"]["environment"]
    assert env["name"] == "pypi"
    assert env["url"].startswith("https://pypi.org/project/${{ needs.build.outputs.dist }}/")


def test_dist_name_travels_from_build_to_publish_through_job_outputs() -> None:
    jobs = load(RELEASE)["jobs"]
    assert jobs["build"]["outputs"]["dist"] == "${{ steps.tag.outputs.dist }}"
    upload = uses(jobs["build"], "actions/upload-artifact")[0]["with"]
    download = uses(jobs["publish"], "actions/download-artifact")[0]["with"]
    publish = uses(jobs["publish"], "pypa/gh-action-pypi-publish")[0]["with"]
    assert upload["path"] == "dist/${{ steps.tag.outputs.dist }}/"
    assert upload["name"] == "${{ steps.tag.outputs.dist }}"
    assert download["name"] == "${{ needs.build.outputs.dist }}"
    assert download["path"] == "dist/${{ needs.build.outputs.dist }}/"
    assert publish["packages-dir"] == "dist/${{ needs.build.outputs.dist }}/"


def test_release_steps_receive_the_dist_through_env() -> None:
    build = load(RELEASE)["jobs"]["build"]
    for needle in ("uv version", "uv build"):
        step = next(s for s in build["steps"] if needle in s.get("run", ""))
        assert step["env"]["DIST"] == "${{ steps.tag.outputs.dist }}"


@needs_bash
def test_release_build_step_builds_only_the_tagged_dist_without_sources(tmp_path: Path) -> None:
    step = step_running(load(RELEASE), "build", "uv build")
    proc, calls = run_bash(step["run"], tmp_path, {"DIST": "menda-core-auth"}, stub_uv=True)
    assert proc.returncode == 0, proc.stderr
    assert calls.read_text().splitlines() == [
        "build --package menda-core-auth --no-sources --out-dir dist/menda-core-auth"
    ]


# --- the tag parsing and version check, executed ------------------------------------------


def parse_tag(tmp_path: Path, tag: str) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    step = step_with_id(load(RELEASE), "build", "tag")
    assert "env" not in step  # GITHUB_REF_NAME comes from the runner itself
    output = tmp_path / "github_output"
    output.write_text("")
    proc, _ = run_bash(
        step["run"], tmp_path, {"GITHUB_REF_NAME": tag, "GITHUB_OUTPUT": str(output)}
    )
    pairs = dict(line.split("=", 1) for line in output.read_text().splitlines())
    return proc, pairs


@needs_bash
def test_tag_parsing_outputs_dist_and_version(tmp_path: Path) -> None:
    proc, outputs = parse_tag(tmp_path, "menda-core-auth-v0.1.0")
    assert proc.returncode == 0, proc.stderr
    assert outputs == {"dist": "menda-core-auth", "version": "0.1.0"}


@needs_bash
@pytest.mark.parametrize(
    ("tag", "dist", "version"),
    [
        *((f"{dist}-v1.2.3", dist, "1.2.3") for dist in PUBLISHED),
        ("menda-keyring-v2.0.0rc1", "menda-keyring", "2.0.0rc1"),
        ("menda-error-v0.1.0.post1", "menda-error", "0.1.0.post1"),
    ],
)
def test_tag_parsing_accepts_every_published_dist(
    tmp_path: Path, tag: str, dist: str, version: str
) -> None:
    proc, outputs = parse_tag(tmp_path, tag)
    assert proc.returncode == 0, proc.stderr
    assert outputs == {"dist": dist, "version": version}


@needs_bash
@pytest.mark.parametrize(
    ("tag", "reason"),
    [
        ("menda-testing-v0.1.0", "never published"),
        ("bogus-v1", "unknown distribution 'bogus'"),
        ("menda-core-auth", "not <dist>-v<version>"),
        ("menda-core-auth-v", "no valid version"),
        ("menda-core-auth-vnext", "no valid version"),
        ("menda-core-auth-v0.1.0;id", "no valid version"),
        ("menda-core-auth-v0.1.0\nowner=x", "no valid version"),
        ("$(id)-v0.1.0", "unknown distribution"),
    ],
)
def test_tag_parsing_refuses_bad_tags_and_writes_no_outputs(
    tmp_path: Path, tag: str, reason: str
) -> None:
    proc, outputs = parse_tag(tmp_path, tag)
    assert proc.returncode != 0
    assert reason in proc.stderr
    assert outputs == {}


@pytest.fixture
def uv_on_path() -> str:
    uv = os.environ.get("UV") or shutil.which("uv")
    if not uv:
        pytest.skip("uv is not on PATH")
    return str(Path(uv).parent) + os.pathsep + os.environ.get("PATH", "")


def check_version(
    tmp_path: Path, path: str, dist: str, tag_version: str
) -> subprocess.CompletedProcess[str]:
    assert BASH is not None
    step = step_running(load(RELEASE), "build", "uv version")
    assert set(step["env"]) == {"DIST", "TAG_VERSION"}
    # Run in the workspace: the real `uv version` reads packages/<dist>/pyproject.toml.
    return subprocess.run(
        [BASH, "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
        cwd=ROOT,
        env={
            "PATH": path,
            "HOME": str(tmp_path),
            "UV_CACHE_DIR": str(tmp_path / "uv-cache"),
            "UV_OFFLINE": "1",
            "DIST": dist,
            "TAG_VERSION": tag_version,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


@needs_bash
def test_version_check_passes_when_the_tag_matches_the_project(
    tmp_path: Path, uv_on_path: str
) -> None:
    version = subprocess.run(
        ["uv", "version", "--package", "menda-core-auth", "--short"],
        cwd=ROOT,
        env={**os.environ, "PATH": uv_on_path},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    proc = check_version(tmp_path, uv_on_path, "menda-core-auth", version)
    assert proc.returncode == 0, proc.stderr


@needs_bash
def test_version_check_fails_clearly_when_the_tag_does_not_match(
    tmp_path: Path, uv_on_path: str
) -> None:
    proc = check_version(tmp_path, uv_on_path, "menda-core-auth", "99.0.0")
    assert proc.returncode != 0
    assert "tag says menda-core-auth 99.0.0" in proc.stderr
    assert "packages/menda-core-auth/pyproject.toml says" in proc.stderr
