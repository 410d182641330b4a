"""Paystack webhook signatures: lowercase hex HMAC-SHA512 of the raw body, keyed with
the secret key."""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "x-paystack-signature"


def sign(body: bytes, secret_key: str) -> str:
    return hmac.new(secret_key.encode(), body, hashlib.sha512).hexdigest()


def is_valid_signature(body: bytes, signature: str | None, secret_key: str) -> bool:
    """Checks the raw bytes (re-serialised JSON would not match) in constant time."""
    if not signature:
        return False
    try:
        given = signature.encode("ascii")
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(given, sign(body, secret_key).encode("ascii"))
