"""Where merchants' endpoints may point. payrecon POSTs to these URLs from inside our own
network, next to Temporal, the metrics and the cloud's metadata service: outside development
mode an endpoint must be https and every address its host resolves to must be public.

Checked twice: when the endpoint is made or changed (`check_endpoint_url`, the API's 422),
and right before each delivery (`ensure_public_destination`), since the name's DNS answer
may have changed since. Deliveries follow no redirects (outbound/deliverer.py), so a public
URL cannot send us on to a private one.
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network

import httpx

MAX_URL_LENGTH = 2048
# A name's resolution before a delivery: past this, the attempt fails (and is retried).
RESOLVE_TIMEOUT_SECONDS = 5.0
SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}
# Carrier-grade NAT: neither private nor global to `ipaddress`, and inside some clouds.
SHARED = ip_network("100.64.0.0/10")
HOST_NAME = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)(\.(?!-)[a-z0-9_-]{1,63}(?<!-))*\.?")

Address = IPv4Address | IPv6Address


class UnsafeDestination(ValueError):
    """An endpoint's URL that payrecon must not POST to (now)."""


def check_endpoint_url(url: str, *, development_mode: bool) -> str:
    """The URL, normalised, if an endpoint may have it; otherwise a ValueError saying why.
    Outside development mode this resolves the host (blocking: call it off the event loop)."""
    parsed = _parse(url, development_mode=development_mode)
    if not development_mode:
        host, port = _host_and_port(parsed)
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):
            raise ValueError(_unresolved(host)) from None
        _require_public(host, (info[4][0] for info in found))
    return str(parsed)


async def ensure_public_destination(url: str, *, development_mode: bool) -> None:
    """Raises UnsafeDestination unless `url` is one payrecon may POST to right now. Does
    nothing in development mode, where endpoints on this machine are the point."""
    if development_mode:
        return
    try:
        parsed = _parse(url, development_mode=False)
        host, port = _host_and_port(parsed)
        try:
            async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
                found = await asyncio.get_running_loop().getaddrinfo(
                    host, port, type=socket.SOCK_STREAM
                )
        except (socket.gaierror, UnicodeError, TimeoutError):
            raise ValueError(_unresolved(host)) from None
        _require_public(host, (info[4][0] for info in found))
    except UnsafeDestination:
        raise
    except ValueError as refused:
        raise UnsafeDestination(str(refused)) from None


def _parse(url: str, *, development_mode: bool) -> httpx.URL:
    """Parsed as the delivery's HTTP client parses it, so the host checked is the host
    connected to."""
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"the URL must be at most {MAX_URL_LENGTH} characters")
    if any(char.isspace() or ord(char) < 0x20 or ord(char) == 0x7F for char in url):
        raise ValueError("the URL must not contain spaces or control characters")
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as invalid:
        raise ValueError(f"not a valid URL: {invalid}") from None
    if parsed.scheme not in SCHEMES:
        raise ValueError("the URL must start with https:// (or http:// in development mode)")
    if parsed.scheme != "https" and not development_mode:
        raise ValueError("the URL must use https")
    if parsed.userinfo:
        raise ValueError("the URL must not contain a user name or password")
    if parsed.fragment:
        raise ValueError("the URL must not have a #fragment (it is never sent)")
    host = parsed.raw_host.decode("ascii").lower()
    if not host:
        raise ValueError("the URL must name a host")
    if not (_is_address(host) or HOST_NAME.fullmatch(host)):
        raise ValueError(f"{host!r} is not a valid host name")
    if parsed.port is not None and not 1 <= parsed.port <= 65535:
        raise ValueError("the URL's port must be between 1 and 65535")
    normalised = parsed.copy_with(path=parsed.path or "/")
    if len(str(normalised)) > MAX_URL_LENGTH:
        raise ValueError(f"the URL must be at most {MAX_URL_LENGTH} characters once encoded")
    return normalised


def _is_address(host: str) -> bool:
    try:
        ip_address(host)
    except ValueError:
        return False
    return True


def _host_and_port(parsed: httpx.URL) -> tuple[str, int]:
    return parsed.raw_host.decode("ascii"), parsed.port or DEFAULT_PORTS[parsed.scheme]


def _unresolved(host: str) -> str:
    return f"{host} does not resolve to any address"


def _require_public(host: str, addresses: Iterable[str | int]) -> None:
    seen = False
    for raw in addresses:
        # An IPv6 link-local answer may carry its interface: fe80::1%eth0.
        address = ip_address(str(raw).split("%", 1)[0])
        seen = True
        if (kind := _not_public(address)) is not None:
            shown = host if host == str(address) else f"{host} resolves to {address}, which"
            raise ValueError(
                f"{shown} is a {kind} address; webhook endpoints must be on the public internet"
            )
    if not seen:
        raise ValueError(_unresolved(host))


def _not_public(address: Address) -> str | None:
    """What kind of non-public address this is, or None if it is public."""
    if isinstance(address, IPv6Address):
        # An IPv4 address inside an IPv6 one reaches that IPv4 host: judge it by it.
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            return _not_public(embedded)
    checks = (
        ("loopback", address.is_loopback),
        ("unspecified", address.is_unspecified),
        ("link-local", address.is_link_local),
        ("site-local", isinstance(address, IPv6Address) and address.is_site_local),
        ("shared (carrier-grade NAT)", isinstance(address, IPv4Address) and address in SHARED),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
    )
    kind = next((name for name, matches in checks if matches), None)
    if kind is None and not address.is_global:
        kind = "non-public"
    return kind
