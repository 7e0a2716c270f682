"""Parsing ``python -X importtime`` output and attributing self time to modules."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

__all__ = ["ImportEntry", "extra_modules", "parse_importtime", "self_time_us", "top_level"]

_PREFIX = "import time:"


@dataclass(frozen=True)
class ImportEntry:
    """One line of ``-X importtime``: a module imported for the first time."""

    module: str
    self_us: int
    cumulative_us: int


def parse_importtime(stderr: str) -> list[ImportEntry]:
    """The entries of ``-X importtime`` output, in the order Python printed them.

    Lines that are not import-time lines (warnings, a traceback) and the
    header line are skipped.
    """
    entries: list[ImportEntry] = []
    for line in stderr.splitlines():
        if not line.startswith(_PREFIX):
            continue
        fields = line[len(_PREFIX) :].split("|")
        if len(fields) != 3:
            continue
        self_text, cumulative_text, name = fields
        try:
            self_us = int(self_text.strip())
            cumulative_us = int(cumulative_text.strip())
        except ValueError:  # the header: "self [us] | cumulative | imported package"
            continue
        entries.append(ImportEntry(name.strip(), self_us, cumulative_us))
    return entries


def extra_modules(entries: Iterable[ImportEntry], known: Collection[str]) -> list[ImportEntry]:
    """The entries whose module is not in ``known`` (what keyring itself imports)."""
    return [entry for entry in entries if entry.module not in known]


def self_time_us(entries: Iterable[ImportEntry]) -> int:
    return sum(entry.self_us for entry in entries)


def top_level(module: str) -> str:
    return module.split(".", 1)[0]
