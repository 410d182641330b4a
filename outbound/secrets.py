"""Endpoint signing secrets: made here, shown once, stored encrypted under the payload
codec's keys (PAYRECON_CODEC_KEYS), so a copy of the database signs nothing.

A sealed secret is `<key id>:<base64 of nonce, ciphertext and tag>`: the key id finds the
right key after a rotation, as the codec's payloads do.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from config import CodecKey

PREFIX = "whsec_"
SECRET_BYTES = 24
NONCE_BYTES = 12
# Bound to its purpose: a sealed secret cannot be passed off as a codec payload.
ASSOCIATED_DATA = b"payrecon webhook endpoint secret"


class SealedSecretError(ValueError):
    """A stored secret that none of the configured keys opens."""


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and base64 of 24 random bytes."""
    return PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def seal(keys: Sequence[CodecKey], secret: str) -> str:
    key = keys[0]
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(key.key).encrypt(nonce, secret.encode(), ASSOCIATED_DATA)
    return f"{key.key_id}:{base64.b64encode(nonce + sealed).decode()}"


def unseal(keys: Sequence[CodecKey], sealed: str) -> str:
    key_id, _, encoded = sealed.partition(":")
    key = next((key for key in keys if key.key_id == key_id), None)
    if key is None:
        raise SealedSecretError(f"sealed under key {key_id!r}, not in PAYRECON_CODEC_KEYS")
    raw = base64.b64decode(encoded)
    try:
        plain = AESGCM(key.key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], ASSOCIATED_DATA)
    except InvalidTag:
        raise SealedSecretError(f"key {key_id!r} does not open this secret") from None
    return plain.decode()
