"""Hostile input, property-based: config files, cache entries and server bodies.

Example counts (hypothesis ``max_examples``), reported in SECURITY.md:

- mutated config files: 400 (one breaking mutation or none, plus any benign ones)
- random bytes in both cache entries, then a fetch: 40; random JSON: 40
- random bodies from either endpoint: 150

Service names are covered in tests/keyring/test_service.py (3,300 examples).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from menda.cloud_client import MendaCloudClient, RegistryRequest
from menda.core_auth import Identity, TokenCache, load_profile
from menda.error.exceptions import InvalidConfigError, MendaCloudAPIError, MendaConfigError
from menda.testing import MendaCloudEmulator, MendaHome, Status

HOST = "https://api.example.menda.cloud"
SECRET = "s3cret%(x)s#;LEAK"
REGISTRY = RegistryRequest("menda-private", "058264169513", "eu-west-1", "menda-plugins", "pypi")
FIXTURES_OK = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


# ----------------------------------------------------------------------------- config files

BASE: list[tuple[str, str | None]] = [
    # (line, section it belongs to or opens)
    ("[DEFAULT]", "DEFAULT"),
    (f"host = {HOST}", "DEFAULT"),
    ("[default]", "default"),
    ("auth_type = m2m", "default"),
    ("client_id = ci-bot", "default"),
    (f"client_secret = {SECRET}", "default"),
    ("[dev]", "dev"),
    ("host = api.dev.menda.cloud", "dev"),
]
BAD_UTF8 = [b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x80", b"\xf8\x88\x80\x80\x80", b"\xe2\x82"]
BENIGN_LINES = st.sampled_from(
    ["", "# a comment", "; another", "unknown_{n} = whatever", "x_cli_state_{n} = 1", "   "]
)


@dataclass
class Mutated:
    lines: list[bytes]
    bom: bool = False
    crlf: bool = False
    broken: str | None = None  # the breaking mutation, if any
    bad_line: int | None = None  # 1-based line the error must name
    notes: list[str] = field(default_factory=list)

    def data(self) -> bytes:
        newline = b"\r\n" if self.crlf else b"\n"
        return (b"\xef\xbb\xbf" if self.bom else b"") + newline.join(self.lines) + newline


@st.composite
def mutated_configs(draw: st.DrawFn) -> Mutated:
    lines = [(text.encode(), section) for text, section in BASE]
    # Benign: comments, blank lines and unknown keys anywhere after the first header,
    # a huge (but not over-limit) unknown value, upper-case keys.
    for n in range(draw(st.integers(0, 4))):
        at = draw(st.integers(1, len(lines)))
        section = lines[at - 1][1]
        # Keys numbered, so that benign lines never duplicate each other.
        lines.insert(at, (draw(BENIGN_LINES).replace("{n}", str(n)).encode(), section))
    if draw(st.booleans()):
        at = draw(st.integers(1, len(lines)))
        size = draw(st.sampled_from([1_000, 100_000, 900_000]))
        lines.insert(at, (b"blob = " + b"x" * size, lines[at - 1][1]))
    if draw(st.booleans()):
        lines = [(text.replace(b"client_id", b"CLIENT_ID"), section) for text, section in lines]
    mutated = Mutated(
        [text for text, _ in lines], bom=draw(st.booleans()), crlf=draw(st.booleans())
    )
    kind = draw(
        st.sampled_from(
            [None, "dup_section", "dup_key", "missing_eq", "non_utf8", "key_first", "too_big"]
        )
    )
    headers = [i for i, text in enumerate(mutated.lines) if text.startswith(b"[")]
    if kind == "dup_section":
        name = draw(st.sampled_from(["default", "dev"]))
        first = next(i for i in headers if mutated.lines[i] == f"[{name}]".encode())
        at = draw(st.integers(first + 1, len(mutated.lines)))
        mutated.lines.insert(at, f"[{name}]".encode())
        mutated.bad_line = at + 1
    elif kind == "dup_key":
        # A key already set in [default], set again (any case) before the next header.
        key_at = next(i for i, text in enumerate(mutated.lines) if text.startswith(b"auth_type"))
        end = next((i for i in headers if i > key_at), len(mutated.lines))
        at = draw(st.integers(key_at + 1, end))
        mutated.lines.insert(at, draw(st.sampled_from([b"auth_type = u2m", b"AUTH_TYPE=m2m"])))
        mutated.bad_line = at + 1
    elif kind == "missing_eq":
        words = draw(st.text("abcdefghijklmnopqrstuvwxyz0123456789 %#;-_", min_size=1, max_size=30))
        at = draw(st.integers(headers[0] + 1, len(mutated.lines)))
        mutated.lines.insert(at, b"LEAK" + words.encode())
        mutated.bad_line = at + 1
    elif kind == "key_first":
        at = draw(st.integers(0, headers[0]))
        # Only comments or blank lines may precede it, or the error is elsewhere.
        mutated.lines[:at] = [b"# c"] * at
        mutated.lines.insert(at, b"host = LEAK.example")
        mutated.bad_line = at + 1
    elif kind == "non_utf8":
        at = draw(st.integers(0, len(mutated.lines) - 1))
        bad = draw(st.sampled_from(BAD_UTF8))
        cut = draw(st.integers(0, len(mutated.lines[at])))
        mutated.lines[at] = mutated.lines[at][:cut] + bad + mutated.lines[at][cut:]
        mutated.bad_line = at + 1
    elif kind == "too_big":
        mutated.lines.append(b"blob = " + b"y" * (1 << 20))
    mutated.broken = kind
    return mutated


@settings(max_examples=400, deadline=None, suppress_health_check=FIXTURES_OK)
@given(mutated=mutated_configs())
def test_mutated_config_loads_or_names_the_file_and_line(scratch: Path, mutated: Mutated) -> None:
    """400 examples: BOM, CRLF, duplicates, missing '=', huge values, non-UTF-8 bytes."""
    path = scratch / "mendacfg"
    path.write_bytes(mutated.data())
    try:
        profile = load_profile("default", path=path, environ={})
    except InvalidConfigError as exc:
        assert mutated.broken is not None, f"a benign file was rejected: {exc}"
        message = exc.message
        assert message.startswith(f"Menda config file {path}"), message
        if mutated.bad_line is not None:
            assert (
                f"line {mutated.bad_line} " in message or f"line {mutated.bad_line}:" in message
            ), (
                mutated.broken,
                message,
            )
        else:
            assert "larger than" in message
        assert "LEAK" not in message
        assert SECRET not in message
        assert any(hint in message for hint in ("menda auth configure", "Save the file"))
        return
    except MendaConfigError as exc:  # pragma: no cover - reported with the example
        pytest.fail(f"{mutated.broken}: unexpected {type(exc).__name__}: {exc}")
    # Only a file without a breaking mutation loads, and it loads what it says.
    assert mutated.broken is None
    assert profile.host == HOST
    assert profile.auth_type == "m2m"
    assert profile.client_id == "ci-bot"
    assert profile.client_secret == SECRET


def test_non_utf8_line_after_a_byte_order_mark_is_counted_right(scratch: Path) -> None:
    """Regression: the BOM made the reported line one too early when the bad byte followed."""
    path = scratch / "mendacfg-bom"
    path.write_bytes(b"\xef\xbb\xbf[default]\nhost = h.example\n\xffclient_secret = x\n")
    with pytest.raises(InvalidConfigError) as caught:
        load_profile("default", path=path, environ={})
    assert "line 3 is not valid UTF-8" in caught.value.message


def test_config_errors_do_not_keep_the_offending_line_in_their_context(scratch: Path) -> None:
    """The configparser or decode error (which quotes the file) is not chained, even hidden."""
    path = scratch / "mendacfg-context"
    for data in (
        f"[default]\nclient_secret {SECRET}\n".encode(),
        f"[default]\nclient_secret = {SECRET}\n".encode() + b"\xff\n",
    ):
        path.write_bytes(data)
        with pytest.raises(InvalidConfigError) as caught:
            load_profile("default", path=path, environ={})
        assert caught.value.__cause__ is None
        assert caught.value.__context__ is None


# ----------------------------------------------------------------------------- cache entries

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=12,
)
NEAR_ENTRY_FIELDS = (
    "access_token",
    "token",
    "expires_at",
    "host",
    "auth_type",
    "client_id",
    "identity",
    "domain",
    "domain_owner",
    "region",
)
NEAR_ENTRIES = st.fixed_dictionaries(
    {},
    optional={
        name: JSON_VALUES | st.sampled_from(["m2m", "2099-01-01T00:00:00Z", "hardening-bot"])
        for name in NEAR_ENTRY_FIELDS
    },
)


def _m2m_identity(cloud: MendaCloudEmulator, client: tuple[str, str]) -> Identity:
    return Identity(
        host=cloud.url,
        auth_type="m2m",
        cache_key=f"m2m-env:{client[0]}",
        source="env",
        client_id=client[0],
        client_secret=client[1],
    )


def _fetch_over_garbage(
    home: MendaHome, cloud: MendaCloudEmulator, client: tuple[str, str], raw: bytes
) -> None:
    identity = _m2m_identity(cloud, client)
    cache = TokenCache(home.cache_dir)
    key = identity.registry_key(REGISTRY.domain, REGISTRY.domain_owner, REGISTRY.region)
    cache.entries_dir.mkdir(parents=True, exist_ok=True)
    for entry in (identity.cache_key, key):
        cache.path_for(entry).write_bytes(raw)
    before = cloud.count("registry")
    with MendaCloudClient(identity, cache=cache, max_attempts=1) as api:
        credential = api.registry_token(REGISTRY)
        assert credential.from_cache is False
        assert cloud.validate_registry_token(
            credential.token,
            domain=REGISTRY.domain,
            owner=REGISTRY.domain_owner,
            region=REGISTRY.region,
        )
        # Both entries were rewritten cleanly: whole JSON objects a reader accepts.
        for entry in (identity.cache_key, key):
            parsed = json.loads(cache.path_for(entry).read_bytes())
            assert isinstance(parsed, dict)
        access = cache.load_access_token(
            identity.cache_key, host=identity.host, client_id=client[0]
        )
        assert access is not None and access.is_valid()
        again = api.registry_token(REGISTRY)
        assert again.from_cache is True
        assert again.token == credential.token
    assert cloud.count("registry") == before + 1
    assert not list(cache.entries_dir.glob(".*.tmp"))


@settings(max_examples=40, deadline=None, suppress_health_check=FIXTURES_OK)
@given(raw=st.binary(max_size=400))
def test_random_bytes_in_the_cache_are_a_miss_and_rewritten_on_the_next_fetch(
    menda_home: MendaHome, menda_cloud: MendaCloudEmulator, m2m_client: tuple[str, str], raw: bytes
) -> None:
    """40 examples: random bytes in the access and the registry entry."""
    _fetch_over_garbage(menda_home, menda_cloud, m2m_client, raw)


@settings(max_examples=40, deadline=None, suppress_health_check=FIXTURES_OK)
@given(value=JSON_VALUES | NEAR_ENTRIES)
def test_random_json_in_the_cache_is_a_miss_and_rewritten_on_the_next_fetch(
    menda_home: MendaHome, menda_cloud: MendaCloudEmulator, m2m_client: tuple[str, str], value: Any
) -> None:
    """40 examples: random JSON, and objects shaped almost like entries."""
    raw = json.dumps(value).encode()
    _fetch_over_garbage(menda_home, menda_cloud, m2m_client, raw)


# ----------------------------------------------------------------------------- server bodies

TOKEN_SHAPED = st.fixed_dictionaries(
    {},
    optional={
        "access_token": JSON_VALUES,
        "expires_in": JSON_VALUES | st.sampled_from([3600, -1, 1e308, float("nan"), 2**70]),
        "token_type": JSON_VALUES | st.just("Bearer"),
        "refresh_token": JSON_VALUES,
        "token": JSON_VALUES | st.just("caat_x"),
        "expires_at": JSON_VALUES
        | st.sampled_from(
            ["2026-11-27T18:00:00Z", "9999-12-31T23:59:59-23:59", "0000-01-01T00:00:00Z"]
        ),
        "error": JSON_VALUES,
        "error_description": JSON_VALUES,
    },
)


def _json_text(value: Any) -> str:
    return json.dumps(value, allow_nan=True)


BODIES = st.one_of(
    (JSON_VALUES | TOKEN_SHAPED).map(_json_text),
    (TOKEN_SHAPED)
    .map(_json_text)
    .flatmap(lambda text: st.integers(0, len(text)).map(lambda n: text[:n])),
    st.text(max_size=200),
    st.sampled_from(["", " ", "null", "<html><body>502</body></html>", "{" * 5000, "[" * 100000]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=FIXTURES_OK)
@given(
    endpoint=st.sampled_from(["token", "registry"]),
    status=st.sampled_from([200, 201, 204, 299, 302, 400, 401, 403, 404, 418, 429, 500, 502, 503]),
    body=BODIES,
    content_type=st.sampled_from(
        [
            "application/json",
            "text/html; charset=utf-8",
            "text/plain",
            "",
            "application/json; charset=latin-1",
        ]
    ),
)
def test_any_body_from_either_endpoint_is_a_token_or_a_menda_cloud_api_error(
    *,
    menda_home: MendaHome,
    menda_cloud: MendaCloudEmulator,
    m2m_client: tuple[str, str],
    endpoint: str,
    status: int,
    body: str,
    content_type: str,
) -> None:
    """150 examples: random JSON, truncated JSON and non-JSON, any status, both endpoints."""
    client_secret = m2m_client[1]
    identity = _m2m_identity(menda_cloud, m2m_client)
    cache = TokenCache(menda_home.cache_dir)
    for path in cache.entries_dir.glob("*.json"):
        # A remembered failure would answer for the server: every example asks it.
        if endpoint == "token" or not path.name.startswith("m2m-"):
            path.unlink()
    menda_cloud.clear_faults()
    menda_cloud.inject(endpoint, Status(status, body=body, content_type=content_type))
    with MendaCloudClient(identity, cache=cache, max_attempts=1) as api:
        try:
            credential = api.registry_token(REGISTRY)
        except MendaCloudAPIError as exc:
            assert str(exc)
            assert exc.status_code is None or 100 <= exc.status_code <= 599
            assert client_secret not in str(exc)
        else:
            assert credential.token
