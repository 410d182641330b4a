"""Who sent a request, when payrecon stands behind proxies.

A forwarded-for header is only the word of whoever wrote it. It is believed only when the
peer is one of our trusted proxies, and then only as far back as the chain stays inside
them: every header line is read, and the answer is the right-most address that is not a
trusted proxy (the one our own proxies saw). Anything else gets the peer's address.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Network, IPv6Network, ip_address

from starlette.requests import Request

from config import Settings

Network = IPv4Network | IPv6Network


def is_within(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(
    peer: str | None, forwarded_lines: Sequence[str], trusted: Sequence[Network]
) -> str | None:
    if peer is None or not is_within(peer, trusted):
        return peer
    chain = [hop.strip() for line in forwarded_lines for hop in line.split(",") if hop.strip()]
    for hop in reversed(chain):
        if not is_within(hop, trusted):
            return hop
    # Every hop is one of ours: the request began inside.
    return chain[0] if chain else peer


def request_client(request: Request, settings: Settings) -> str | None:
    """The address of whoever sent `request`, by the rule above and payrecon's settings."""
    peer = request.client.host if request.client else None
    header = settings.payrecon_trusted_proxy_header
    forwarded = request.headers.getlist(header) if header else []
    return client_address(peer, forwarded, settings.payrecon_trusted_proxies)


def is_loopback(address: str | None) -> bool:
    try:
        return address is not None and ip_address(address).is_loopback
    except ValueError:
        return False


def from_this_machine(
    peer: str | None, forwarded_lines: Sequence[str], trusted: Sequence[Network]
) -> bool:
    """Whether a request began on this machine. That is the socket peer's to say, never a
    header's: a peer elsewhere (a proxy of ours included) is not this machine, whatever it
    forwards; a proxy on this machine that forwards someone else's request is not either."""
    return is_loopback(peer) and is_loopback(client_address(peer, forwarded_lines, trusted))


def request_from_this_machine(request: Request, settings: Settings) -> bool:
    peer = request.client.host if request.client else None
    header = settings.payrecon_trusted_proxy_header
    forwarded = request.headers.getlist(header) if header else []
    return from_this_machine(peer, forwarded, settings.payrecon_trusted_proxies)
