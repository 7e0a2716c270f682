"""Normalisation of the menda cloud host (base URL), as in docs/cloud-api.md."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from menda.error.exceptions import InvalidConfigError

__all__ = ["normalize_host"]

_DEFAULT_PORTS = {"https": 443, "http": 80}
_HOSTNAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-._")


def _is_loopback(hostname: str) -> bool:
    if hostname in ("localhost", "localhost."):
        return True
    # ipaddress costs a little to import; only plain-http hosts get here.
    import ipaddress

    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def normalize_host(value: str, *, setting: str) -> str:
    """Return the canonical form of a menda cloud host, or raise ``InvalidConfigError``.

    ``setting`` names where the value came from (``"MENDA_HOST"``, or
    ``"host of profile 'dev' in /home/u/.menda/mendacfg"``) and starts every message.
    Lower-cases the host, drops the default port and trailing slashes, keeps a path
    prefix, adds ``https://`` when there is no scheme, and allows plain ``http`` only
    for loopback hosts.
    """
    from urllib.parse import urlsplit

    def fail(why: str, shown: str | None = None) -> InvalidConfigError:
        # Imported only to fail: a good host (every warm lookup) never needs it.
        from menda.error.exceptions import InvalidConfigError

        shown_part = f" {shown!r}" if shown is not None else ""
        return InvalidConfigError(
            f"{setting}{shown_part} {why}. Set it to the menda cloud base URL, "
            "e.g. https://api.example.menda.cloud"
        )

    if not isinstance(value, str):
        raise fail("is not a string")
    text = value.strip()
    if not text:
        raise fail("is empty")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
        raise fail("contains whitespace or control characters")
    if "://" not in text:
        text = "https://" + text
    try:
        parts = urlsplit(text)
    except ValueError:
        raise fail("is not a valid URL") from None
    scheme = parts.scheme.lower()
    # A value with '@', '?' or '#' may carry a password or token: never echo it.
    if "@" in text:
        raise fail("must not contain a user name or password (userinfo); value not shown")
    if "?" in text:
        raise fail("must not contain a query string; value not shown")
    if "#" in text:
        raise fail("must not contain a fragment; value not shown")
    if scheme not in _DEFAULT_PORTS:
        raise fail(f"has scheme '{scheme}'; only https is allowed", text)
    if "\\" in text:
        raise fail("must not contain a backslash", text)

    netloc = parts.netloc
    if netloc.startswith("["):
        end = netloc.find("]")
        if end < 0:
            raise fail("has an unterminated IPv6 address", text)
        host_text = netloc[1:end]
        rest = netloc[end + 1 :]
        import ipaddress

        try:
            hostname = ipaddress.IPv6Address(host_text).compressed
        except ValueError:
            raise fail("has an invalid IPv6 address", text) from None
        host_out = f"[{hostname}]"
    else:
        host_text, sep, port_part = netloc.partition(":")
        rest = sep + port_part
        hostname = host_text.lower()
        if not hostname:
            raise fail("has no host name", text)
        if not set(hostname) <= _HOSTNAME_CHARS or hostname.startswith((".", "-")):
            raise fail("has an invalid host name", text)
        host_out = hostname

    port: int | None = None
    if rest:
        digits = rest[1:] if rest.startswith(":") else None
        if not digits or not digits.isdigit() or not digits.isascii():
            raise fail("has an invalid port", text)
        port = int(digits)
        if not 0 < port < 65536:
            raise fail("has a port outside 1-65535", text)

    if scheme == "http" and not _is_loopback(hostname):
        raise fail(
            "must use https (plain http is allowed only for localhost, 127.0.0.0/8 and ::1, "
            "because credentials must never travel in clear text)",
            text,
        )

    path = parts.path.rstrip("/")
    port_out = "" if port is None or port == _DEFAULT_PORTS[scheme] else f":{port}"
    return f"{scheme}://{host_out}{port_out}{path}"
