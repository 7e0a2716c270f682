"""RFC 3339 times in our cache entries: ``format_time``, ``parse_time`` and the freshness check."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from menda.core_auth import format_time, parse_time
from menda.core_auth._time import is_fresh

NOW = datetime(2026, 11, 27, 6, 0, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-27T18:00:00Z", datetime(2026, 11, 27, 18, tzinfo=timezone.utc)),
        ("2026-11-27t18:00:00z", datetime(2026, 11, 27, 18, tzinfo=timezone.utc)),
        ("2026-11-27T19:30:00+01:30", datetime(2026, 11, 27, 18, tzinfo=timezone.utc)),
        ("2026-11-27T13:00:00-05:00", datetime(2026, 11, 27, 18, tzinfo=timezone.utc)),
        ("2026-11-27T18:00:00.5Z", datetime(2026, 11, 27, 18, 0, 0, 500000, tzinfo=timezone.utc)),
        (
            "2026-11-27T18:00:00.1234567+00:00",
            datetime(2026, 11, 27, 18, 0, 0, 123456, tzinfo=timezone.utc),
        ),
        ("2026-11-27 18:00:00Z", datetime(2026, 11, 27, 18, tzinfo=timezone.utc)),
        ("2026-12-31T23:59:60Z", datetime(2026, 12, 31, 23, 59, 59, tzinfo=timezone.utc)),
    ],
)
def test_parse_time_accepts_rfc3339_with_z_or_offset(text: str, expected: datetime) -> None:
    parsed = parse_time(text)
    assert parsed == expected
    assert parsed is not None
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-27T18:00:00",
        "2026-11-27",
        "2026-11-27T25:00:00Z",
        "2026-02-30T10:00:00Z",
        "2026-11-27T18:00:00+24:00",
        "9999-12-31T23:59:59-01:00",
        "0001-01-01T00:00:00+01:00",
        "0000-01-01T00:00:00Z",
        "",
        "\uff11\uff12\uff13\uff14-11-27T18:00:00Z",
        "2026-11-27T18:00:00Z" + " " * 60,
    ],
)
def test_parse_time_rejects_invalid(text: str) -> None:
    assert parse_time(text) is None


@pytest.mark.parametrize("value", [None, 1795762800, 1795762800.0, b"2026-11-27T18:00:00Z", ["x"]])
def test_parse_time_rejects_non_strings(value: Any) -> None:
    assert parse_time(value) is None


def test_format_time_is_utc_with_z_rounded_down() -> None:
    local = datetime(2026, 11, 27, 19, 0, 0, 999999, tzinfo=timezone(timedelta(hours=1)))
    assert format_time(local) == "2026-11-27T18:00:00Z"
    assert parse_time(format_time(local)) == datetime(2026, 11, 27, 18, tzinfo=timezone.utc)
    assert format_time(datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05Z"  # naive is UTC


def test_is_fresh_needs_more_than_the_margin_and_at_most_the_horizon() -> None:
    margin, ahead = timedelta(seconds=60), timedelta(hours=1)
    assert is_fresh(NOW + timedelta(seconds=61), NOW, margin, ahead)
    assert not is_fresh(NOW + timedelta(seconds=60), NOW, margin, ahead)
    assert is_fresh(NOW + ahead, NOW, margin, ahead)
    assert not is_fresh(NOW + ahead + timedelta(seconds=1), NOW, margin, ahead)
    assert not is_fresh(NOW - timedelta(hours=1), NOW, margin, ahead)


def test_is_fresh_near_the_end_of_time_is_false_not_an_error() -> None:
    end = datetime.max.replace(tzinfo=timezone.utc)
    assert not is_fresh(end, end - timedelta(seconds=1), timedelta(hours=1), timedelta(days=1))
