"""str() of a Menda error is safe to print, whatever a path or a server put in it."""

from __future__ import annotations

import pytest

from menda.error import InvalidConfigError, MendaCloudAPIError, MendaError
from menda.error.exceptions import printable


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain text, unchanged: é ü 日本", "plain text, unchanged: é ü 日本"),
        ("an \x1b[31mANSI\x1b[0m escape", "an \\x1b[31mANSI\\x1b[0m escape"),
        ("a NUL\x00 and DEL\x7f", "a NUL\\x00 and DEL\\x7f"),
        ("a C1 CSI \x9b2J", "a C1 CSI \\x9b2J"),
        ("bidi \u202eevil\u202c", "bidi \\u202eevil\\u202c"),
        (
            "isolate \u2066x\u2069 and zero width \u200b",
            "isolate \\u2066x\\u2069 and zero width \\u200b",
        ),
        ("two\nlines", "two\\x0alines"),
        ("lone surrogate \ud800", "lone surrogate \\ud800"),
    ],
)
def test_control_and_bidi_characters_are_shown_as_escapes(raw: str, shown: str) -> None:
    assert printable(raw) == shown
    assert (
        str(InvalidConfigError(f"Menda config file /home/{raw}"))
        == f"Menda config file /home/{shown}"
    )


def test_the_message_property_keeps_what_the_raiser_built() -> None:
    error = MendaCloudAPIError("detail \u202e", status_code=400)
    assert error.message == "detail \u202e"
    assert str(error) == "detail \\u202e"
    assert isinstance(error, MendaError)
