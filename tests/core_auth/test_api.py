"""The public API: what ``menda.core_auth`` exports is what its README documents."""

from __future__ import annotations

import re
from pathlib import Path

import menda.core_auth

README = Path(__file__).resolve().parents[2] / "packages" / "menda-core-auth" / "README.md"


def _api_table_names() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## API\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([A-Za-z_][A-Za-z0-9_]*)", section, flags=re.MULTILINE)


def test_every_exported_name_exists() -> None:
    for name in menda.core_auth.__all__:
        assert hasattr(menda.core_auth, name), name


def test_readme_api_section_lists_every_exported_name_once() -> None:
    documented = _api_table_names()
    assert sorted(documented) == sorted(menda.core_auth.__all__)
    assert len(documented) == len(set(documented))
