"""Where merchants' endpoints may point. payrecon POSTs to these URLs from inside our own
network, next to Temporal, the metrics and the cloud's metadata service: outside development
mode an endpoint must be https and every address its host resolves to must be public.

Checked twice: when the endpoint is made or changed (`check_endpoint_url`, the API's 422),
and right before each delivery (`public_destination`), since the name's DNS answer may
have changed since. A delivery connects to the very address that was vetted (the name is
resolved once, asynchronously, with a timeout), with the URL's host for TLS (SNI and the
certificate) and `Host`: a name that answers a public address first and an internal one
next cannot move the connection inside. Deliveries follow no redirects
(outbound/deliverer.py), so a public URL cannot send us on to a private one. No refusal
says what a name resolved to.
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network
from typing import Any

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


@dataclass(frozen=True)
class Destination:
    """Where a delivery goes: `url` to connect to (the vetted address in place of the
    name, outside development mode), the URL's own `netloc` (its `Host` header) and
    `hostname` (for SNI and the certificate), and `address`, the one address the
    connection may reach (None in development mode)."""

    url: httpx.URL
    netloc: str
    hostname: str
    address: str | None

    def request_options(self) -> dict[str, Any]:
        """What a request to `url` needs to be a request to the endpoint's own URL."""
        if self.address is None:
            return {}
        options: dict[str, Any] = {"headers": {"Host": self.netloc}}
        if not _is_address(self.hostname):
            options["extensions"] = {"sni_hostname": self.hostname}
        return options


async def check_endpoint_url(url: str, *, development_mode: bool) -> str:
    """The URL, normalised, if an endpoint may have it; otherwise a ValueError saying why.
    Outside development mode this resolves the host (asynchronously, with a timeout)."""
    parsed = _parse(url, development_mode=development_mode)
    if not development_mode:
        await _vetted_address(parsed)
    return str(parsed)


async def public_destination(url: str, *, development_mode: bool) -> Destination:
    """Where to POST `url` right now, or UnsafeDestination. In development mode, where
    endpoints on this machine are the point, the URL as it is."""
    try:
        parsed = _parse(url, development_mode=development_mode)
        netloc, hostname = parsed.netloc.decode("ascii"), parsed.raw_host.decode("ascii")
        if development_mode:
            return Destination(parsed, netloc, hostname, None)
        address = await _vetted_address(parsed)
    except UnsafeDestination:
        raise
    except ValueError as refused:
        raise UnsafeDestination(str(refused)) from None
    connect_to = f"[{address}]" if ":" in address else address
    return Destination(parsed.copy_with(host=connect_to), netloc, hostname, address)


async def _vetted_address(parsed: httpx.URL) -> str:
    """The host's first address, once every address it resolves to is public."""
    host, port = _host_and_port(parsed)
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
            found = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
    except (OSError, UnicodeError, TimeoutError):
        raise ValueError(_unresolved(host)) from None
    addresses = [str(info[4][0]).split("%", 1)[0] for info in found]
    _require_public(host, addresses)
    return addresses[0]


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
            # What a name resolved to is never said: that would map the network inside.
            shown = f"{host} is" if host == str(address) else f"{host} resolves to"
            raise ValueError(
                f"{shown} a {kind} address; webhook endpoints must be on the public internet"
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
