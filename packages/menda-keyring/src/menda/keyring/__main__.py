"""``menda-keyring`` command line (placeholder)."""

from __future__ import annotations


def main() -> int:
    return 0
