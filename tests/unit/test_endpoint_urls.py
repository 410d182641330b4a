"""Where endpoints may point (outbound/urls.py), and their sealed signing secrets
(outbound/secrets.py)."""

from __future__ import annotations

import asyncio
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from config import CodecKey
from outbound.secrets import SealedSecretError, new_secret, seal, unseal
from outbound.urls import (
    MAX_URL_LENGTH,
    UnsafeDestination,
    check_endpoint_url,
    public_destination,
)

REFUSED_IN_PRODUCTION = [
    ("http://93.184.215.14/hook", "must use https"),
    ("https://127.0.0.1/hook", "loopback"),
    ("https://localhost/hook", "loopback"),
    ("https://10.0.0.1/hook", "private"),
    ("https://192.168.1.20:8443/hook", "private"),
    ("https://169.254.169.254/latest/meta-data/", "link-local"),
    ("https://[::1]/hook", "loopback"),
    ("https://[::ffff:127.0.0.1]/hook", "loopback"),
    ("https://[::ffff:169.254.169.254]/hook", "link-local"),
    ("https://[fe80::1]/hook", "link-local"),
    ("https://[fd00::1]/hook", "private"),
    # Deprecated site-local (fec0::/10), yet still routed inside some networks: `ipaddress`
    # calls it global.
    ("https://[fec0::1]/hook", "site-local"),
    ("https://100.64.0.1/hook", "shared"),
    ("https://0.0.0.0/hook", "unspecified"),
    ("https://224.0.0.1/hook", "multicast"),
    ("https://240.0.0.1/hook", "reserved"),
    # The same loopback address, written as one number: resolved, so refused all the same.
    ("https://2130706433/hook", "loopback"),
    ("https://payrecon-endpoint.invalid/hook", "does not resolve"),
]


@pytest.mark.parametrize(("url", "reason"), REFUSED_IN_PRODUCTION)
async def test_production_refuses_what_is_not_https_to_a_public_address(
    url: str, reason: str
) -> None:
    with pytest.raises(ValueError, match=reason):
        await check_endpoint_url(url, development_mode=False)


@pytest.mark.parametrize(("url", "reason"), REFUSED_IN_PRODUCTION)
async def test_a_delivery_is_refused_the_same_destinations(url: str, reason: str) -> None:
    with pytest.raises(UnsafeDestination, match=reason):
        await public_destination(url, development_mode=False)


async def test_a_refusal_never_says_what_a_name_resolved_to() -> None:
    with pytest.raises(ValueError, match="localhost resolves to a loopback address") as refused:
        await check_endpoint_url("https://localhost/hook", development_mode=False)
    assert "127.0.0.1" not in str(refused.value) and "::1" not in str(refused.value)


async def test_a_public_address_is_allowed_and_is_what_the_delivery_connects_to() -> None:
    url = "https://93.184.215.14/payrecon/events?shop=12"
    assert await check_endpoint_url(url, development_mode=False) == url
    assert await check_endpoint_url("HTTPS://93.184.215.14", development_mode=False) == (
        "https://93.184.215.14/"
    )
    destination = await public_destination(
        "https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]:8443/hook", development_mode=False
    )
    assert destination.address == "2606:2800:21f:cb07:6820:80da:af6b:8b2c"
    assert str(destination.url) == "https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]:8443/hook"
    # The URL's own Host; an address is no name to send as SNI.
    assert destination.request_options() == {
        "headers": {"Host": "[2606:2800:21f:cb07:6820:80da:af6b:8b2c]:8443"}
    }


async def test_development_mode_allows_this_machine_over_http() -> None:
    url = "http://127.0.0.1:9999/hook"
    assert await check_endpoint_url(url, development_mode=True) == url
    assert await check_endpoint_url("http://localhost:9999/hook", development_mode=True)
    # The check before each delivery stands aside too: the URL as it is.
    for written in (url, "http://[::1]:9999/hook", "http://localhost:9999/hook"):
        destination = await public_destination(written, development_mode=True)
        assert str(destination.url) == written and destination.request_options() == {}


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/hook", "https://"),
        ("example.com/hook", "https://"),
        ("http://user:secret@127.0.0.1:9999/hook", "user name or password"),
        ("http://127.0.0.1:9999/hook#part", "fragment"),
        ("http://127.0.0.1:99999/hook", "port"),
        ("http:///hook", "host"),
        ("http://exa mple.com/hook", "spaces"),
        ("http://127.0.0.1:9999/\nhook", "control"),
        ("http://-bad-.example/hook", "host name"),
        ("http://127.0.0.1/" + "a" * MAX_URL_LENGTH, str(MAX_URL_LENGTH)),
    ],
)
async def test_development_mode_still_wants_a_plain_http_url(url: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        await check_endpoint_url(url, development_mode=True)


PREFIXES = ["http://", "https://", "HTTP://", "https://[", "https://a@", ""]


@given(st.sampled_from(PREFIXES), st.text())
def test_any_text_is_a_url_or_a_value_error(prefix: str, rest: str) -> None:
    """Never another exception (the API would answer 500); and a normalised URL is its own
    normal form, so checking it again changes nothing."""
    try:
        normalised = asyncio.run(check_endpoint_url(prefix + rest, development_mode=True))
    except ValueError:
        return
    assert asyncio.run(check_endpoint_url(normalised, development_mode=True)) == normalised


def _key(key_id: str) -> CodecKey:
    return CodecKey(key_id, os.urandom(32))


def test_a_sealed_secret_opens_with_its_key_only() -> None:
    key = _key("k1")
    secret = new_secret()
    sealed = seal([key], secret)

    assert sealed.startswith("k1:") and secret not in sealed
    assert secret.removeprefix("whsec_") not in sealed
    assert unseal([key], sealed) == secret
    # The same id, other key material: the tag does not match.
    with pytest.raises(SealedSecretError, match="does not open"):
        unseal([_key("k1")], sealed)
    with pytest.raises(SealedSecretError, match="not in PAYRECON_CODEC_KEYS"):
        unseal([_key("k2")], sealed)
    # Sealed twice, two ciphertexts: nothing tells that two endpoints share a secret.
    assert seal([key], secret) != sealed


def test_after_a_codec_key_rotation_old_secrets_still_open() -> None:
    old, new = _key("2026-01"), _key("2026-11")
    secret = new_secret()
    sealed_before = seal([old], secret)

    rotated = [new, old]  # the new key first: it seals; both open
    assert unseal(rotated, sealed_before) == secret
    sealed_after = seal(rotated, secret)
    assert sealed_after.startswith("2026-11:")
    assert unseal(rotated, sealed_after) == secret
    with pytest.raises(SealedSecretError):
        unseal([old], sealed_after)
