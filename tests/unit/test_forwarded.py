"""Who sent a request behind proxies: the forwarded header is believed only from our own
proxies, every line of it is read, and the right-most address that is not ours wins."""

from __future__ import annotations

from ipaddress import ip_network

import pytest

from api.forwarded import client_address, from_this_machine

PROXIES = [ip_network("10.0.0.0/8"), ip_network("192.168.1.0/24")]


@pytest.mark.parametrize(
    ("peer", "lines", "expected"),
    [
        # A peer that is no proxy of ours: its header is only its word.
        ("203.0.113.9", ["52.31.139.75"], "203.0.113.9"),
        # Our proxy: the address it saw (the right-most one that is not ours).
        ("10.0.0.5", ["52.31.139.75"], "52.31.139.75"),
        ("10.0.0.5", ["1.2.3.4, 52.31.139.75"], "52.31.139.75"),
        ("10.0.0.5", ["52.31.139.75, 10.0.0.7"], "52.31.139.75"),
        # What the caller wrote first does not count past what our proxies appended.
        ("10.0.0.5", ["52.31.139.75, 203.0.113.9"], "203.0.113.9"),
        # Every line is read: a line of the caller's own cannot stand first.
        ("10.0.0.5", ["52.31.139.75", "203.0.113.9"], "203.0.113.9"),
        ("10.0.0.5", ["52.31.139.75", "203.0.113.9, 192.168.1.2"], "203.0.113.9"),
        # Garbage is no address of ours: it is the answer, and no allowlist holds it.
        ("10.0.0.5", ["not-an-address"], "not-an-address"),
        # Nothing forwarded, or only our own hops.
        ("10.0.0.5", [], "10.0.0.5"),
        ("10.0.0.5", ["10.0.0.9, 10.0.0.8"], "10.0.0.9"),
        (None, ["52.31.139.75"], None),
    ],
)
def test_the_client_address(peer: str | None, lines: list[str], expected: str | None) -> None:
    assert client_address(peer, lines, PROXIES) == expected


def test_no_trusted_proxies_means_no_header_is_believed() -> None:
    assert client_address("10.0.0.5", ["52.31.139.75"], []) == "10.0.0.5"


@pytest.mark.parametrize(
    ("peer", "lines", "local"),
    [
        # A host in the trusted range claiming to forward for this machine: not local.
        ("10.1.2.3", ["127.0.0.1"], False),
        ("10.1.2.3", [], False),
        ("203.0.113.9", ["127.0.0.1"], False),
        # This machine, directly.
        ("127.0.0.1", [], True),
        ("::1", [], True),
        # A peer on this machine that is no proxy of ours: its header is only its word.
        ("127.0.0.1", ["203.0.113.9"], True),
    ],
)
def test_this_machine_is_the_socket_peers_to_say(peer: str, lines: list[str], local: bool) -> None:
    assert from_this_machine(peer, lines, PROXIES) is local


def test_a_local_proxy_forwarding_another_client_is_not_this_machine() -> None:
    trusted = [*PROXIES, ip_network("127.0.0.0/8")]
    assert not from_this_machine("127.0.0.1", ["203.0.113.9"], trusted)
    assert from_this_machine("127.0.0.1", ["127.0.0.1"], trusted)
