from __future__ import annotations

import pytest

from menda.core_auth import normalize_host
from menda.error.exceptions import InvalidConfigError


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://API.Example.menda.cloud/", "https://api.example.menda.cloud"),
        ("api.example.menda.cloud", "https://api.example.menda.cloud"),
        ("https://api.example.menda.cloud:443", "https://api.example.menda.cloud"),
        ("https://gw.corp.example/menda/", "https://gw.corp.example/menda"),
        ("https://gw.corp.example/Menda/v1//", "https://gw.corp.example/Menda/v1"),
        ("http://127.0.0.1:8123", "http://127.0.0.1:8123"),
        ("http://127.1.2.3:8123/", "http://127.1.2.3:8123"),
        ("http://localhost:8080", "http://localhost:8080"),
        ("http://LOCALHOST:80/", "http://localhost"),
        ("http://[::1]:9000/", "http://[::1]:9000"),
        ("https://api.example.menda.cloud:8443", "https://api.example.menda.cloud:8443"),
        ("HTTPS://api.example.menda.cloud", "https://api.example.menda.cloud"),
        ("  https://api.example.menda.cloud  ", "https://api.example.menda.cloud"),
        ("localhost:8443", "https://localhost:8443"),
    ],
)
def test_normalize_host_follows_the_api_table(value: str, expected: str) -> None:
    assert normalize_host(value, setting="MENDA_HOST") == expected


def test_plain_http_to_a_remote_host_is_rejected_naming_the_setting() -> None:
    with pytest.raises(InvalidConfigError) as info:
        normalize_host("http://api.example.menda.cloud", setting="MENDA_HOST")
    assert info.value.message.startswith(
        "MENDA_HOST 'http://api.example.menda.cloud' must use https"
    )


@pytest.mark.parametrize(
    "value",
    [
        "http://10.0.0.1",
        "http://128.0.0.1",
        "http://localhost.evil.example",
        "http://[::2]",
    ],
)
def test_plain_http_is_only_for_loopback(value: str) -> None:
    with pytest.raises(InvalidConfigError, match="must use https"):
        normalize_host(value, setting="MENDA_HOST")


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("https://api.example.menda.cloud/?x=1", "query"),
        ("https://api.example.menda.cloud?", "query"),
        ("https://api.example.menda.cloud/#frag", "fragment"),
        ("https://user:hunter2@api.example.menda.cloud", "userinfo"),
        ("https://", "no host"),
        ("https:///path", "no host"),
        ("", "empty"),
        ("   ", "empty"),
        ("ftp://api.example.menda.cloud", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("https://api.example.menda.cloud:notaport", "port"),
        ("https://api.example.menda.cloud:0", "port"),
        ("https://api.example.menda.cloud:70000", "port"),
        ("https://exa mple.com", "whitespace"),
        ("https://exa\x00mple.com", "control"),
        ("https://[::1", "valid"),
        ("https://[zz::1]", "valid"),
        ("https://ex$ample.com", "host name"),
        ("https://example.com\\foo", "backslash"),
    ],
)
def test_bad_hosts_are_rejected_with_invalid_config_error(value: str, why: str) -> None:
    with pytest.raises(InvalidConfigError) as info:
        normalize_host(value, setting="host of profile 'dev' in /x/mendacfg")
    message = info.value.message
    assert message.startswith("host of profile 'dev' in /x/mendacfg")
    assert why in message


def test_userinfo_password_never_appears_in_the_message() -> None:
    with pytest.raises(InvalidConfigError) as info:
        normalize_host("https://user:s3cr3t-pw@api.example.menda.cloud", setting="MENDA_HOST")
    assert "s3cr3t-pw" not in str(info.value)


def test_query_value_never_appears_in_the_message() -> None:
    with pytest.raises(InvalidConfigError) as info:
        normalize_host("https://api.example.menda.cloud/?token=abc123secret", setting="MENDA_HOST")
    assert "abc123secret" not in str(info.value)


def test_normalisation_is_idempotent() -> None:
    once = normalize_host("HTTPS://Gw.Corp.Example:443/menda/", setting="MENDA_HOST")
    assert normalize_host(once, setting="MENDA_HOST") == once
