"""The layering between distributions, read from the syntax trees of their sources.

error <- core_auth <- cloud_client <- keyring, with testing on top of them all:
every import between distributions points down, none reaches into another
distribution's private modules, and no published distribution imports the
test tools. Tests use only the public names of menda.testing.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# What each distribution (by its leaf package) may import of the others.
ALLOWED = {
    "error": set(),
    "core_auth": {"error"},
    "cloud_client": {"error", "core_auth"},
    "keyring": {"error", "core_auth", "cloud_client"},
    "testing": {"error", "core_auth", "cloud_client", "keyring"},
}
PUBLISHED = {"error", "core_auth", "cloud_client", "keyring"}


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every absolute module an import statement in ``path`` names, with its line."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            # `from menda.x import _private` names a private module or name too.
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def _leaf(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "menda" else None


def _leaf_of(path: Path) -> str:
    # packages/<dist>/src/menda/<leaf>/...
    return path.relative_to(ROOT).parts[4]


SOURCES = sorted((ROOT / "packages").glob("*/src/menda/*/**/*.py"))


def test_every_distribution_is_covered() -> None:
    assert {_leaf_of(p) for p in SOURCES} == set(ALLOWED)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_between_distributions_point_down_and_stay_public(path: Path) -> None:
    own = _leaf_of(path)
    problems = []
    for line, module in _imports(path):
        leaf = _leaf(module)
        if leaf is None or leaf == own:
            continue
        where = f"{path.relative_to(ROOT)}:{line} imports {module}"
        if leaf not in ALLOWED[own]:
            problems.append(f"{where}: menda.{own} may not depend on menda.{leaf}")
        elif _private(module):
            problems.append(f"{where}: a private name of another distribution")
    assert not problems, "\n".join(problems)


def test_no_published_distribution_imports_the_test_tools() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in SOURCES
        if _leaf_of(path) in PUBLISHED
        for line, module in _imports(path)
        if _leaf(module) == "testing"
    ]
    assert not offenders


def _private(module: str) -> bool:
    return any(p.startswith("_") and not p.endswith("__") for p in module.split(".")[2:])


def test_tests_use_only_public_names_of_menda_testing() -> None:
    # tests/testing/ tests menda.testing itself, internals included; every other
    # test is a user of it and sees only what it exports.
    offenders = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in sorted((ROOT / "tests").rglob("*.py"))
        if path.relative_to(ROOT).parts[1] != "testing"
        for line, module in _imports(path)
        if _leaf(module) == "testing" and _private(module)
    ]
    assert not offenders, "\n".join(offenders)
