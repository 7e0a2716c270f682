"""A login whose token no HTTP header could carry is no login, not a failing request."""

from __future__ import annotations

import pytest

from menda.core_auth._login import login_from_section

GOOD = {
    "id_token": "eyJ.id",
    "access_token": "eyJ.access",
    "refresh_token": "rt-1",
    "expires_in": "3600",
    "token_type": "Bearer",
    "cached_at": "1764540000.5",
}


def test_a_login_as_the_cli_writes_it_is_read() -> None:
    login = login_from_section(GOOD)
    assert login is not None
    assert login.bearer == "eyJ.id"


@pytest.mark.parametrize("key", ["id_token", "access_token", "refresh_token"])
@pytest.mark.parametrize("bad", ["tok en", "tok\x1ben", "tök", "x" * (16 * 1024 + 1)])
def test_a_token_value_no_header_can_carry_is_no_login(key: str, bad: str) -> None:
    assert login_from_section({**GOOD, key: bad}) is None
