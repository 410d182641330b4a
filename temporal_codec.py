"""Invoice data encrypted in Temporal: a payload codec, as in Temporal's `encryption` sample.

Every payload a payrecon process sends to Temporal (workflow inputs and results, activity
arguments, updates, signals, queries, summaries, failure messages) is AES-256-GCM encrypted
before it leaves the process and decrypted when it comes back, so Temporal's store and
every workflow history hold ciphertext. Search attributes are not payloads: see
PAYRECON_CUSTOMER_EMAIL_SEARCH_ATTRIBUTE.

Each encrypted payload names its key (metadata `encryption-key-id`), so keys rotate: the
first of PAYRECON_CODEC_KEYS encrypts, every one of them decrypts. A payload that is not
`binary/encrypted` is refused: from 0.1.0 on payrecon writes none, so one was written by
something else (a workflow started from the Temporal UI or CLI with plaintext input), and
nothing of it reaches payrecon's code. The format (12-byte nonce, then ciphertext and tag)
is the one Temporal's samples use in every language.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import temporalio.converter
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter, PayloadCodec

from config import CodecKey, Settings

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12


class CodecError(ValueError):
    """An encrypted payload this codec cannot read."""


class PlaintextPayloadError(CodecError):
    """A payload that is not encrypted: not written by payrecon."""


class UnknownKeyError(CodecError):
    """The payload was encrypted under a key that PAYRECON_CODEC_KEYS no longer holds."""


class EncryptionCodec(PayloadCodec):
    def __init__(self, keys: Sequence[CodecKey]) -> None:
        if not keys:
            raise ValueError("the codec needs at least one key")
        self.key_id = keys[0].key_id
        self._ciphers = {key.key_id: AESGCM(key.key) for key in keys}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(payload) for payload in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self.key_id].encrypt(nonce, payload.SerializeToString(), None)
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID: self.key_id.encode()},
            data=nonce + sealed,
        )

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            encoding = payload.metadata.get("encoding", b"").decode(errors="replace")
            raise PlaintextPayloadError(
                f"a payload is not encrypted (encoding {encoding!r}): payrecon encrypts every "
                "payload it writes, so this one came from elsewhere and is refused"
            )
        key_id = payload.metadata.get(KEY_ID, b"").decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise UnknownKeyError(
                f"a payload is encrypted under key id {key_id!r}, which PAYRECON_CODEC_KEYS "
                f"does not hold (it holds {', '.join(sorted(self._ciphers))}); add that key "
                "back, after the one that encrypts"
            )
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        try:
            return Payload.FromString(cipher.decrypt(nonce, sealed, None))
        except (InvalidTag, ValueError, DecodeError):
            raise CodecError(
                f"a payload under key id {key_id!r} does not decrypt: it was altered, or "
                "encrypted with another key of that id"
            ) from None


async def decode_for_display(codec: PayloadCodec, payloads: Sequence[Payload]) -> list[Payload]:
    """What the Temporal UI shows (the codec endpoint): encrypted payloads decrypted, any
    other as Temporal holds it. Only for showing: payrecon's own code never reads these."""
    encrypted = [payload for payload in payloads if payload.metadata.get("encoding") == ENCODING]
    decrypted = iter(await codec.decode(encrypted))
    return [
        next(decrypted) if payload.metadata.get("encoding") == ENCODING else payload
        for payload in payloads
    ]


def payrecon_data_converter(settings: Settings) -> DataConverter:
    """The SDK's default converter with the codec, for every client, worker and replayer.
    Failures' messages and stack traces go into an encoded (so encrypted) payload too."""
    return dataclasses.replace(
        temporalio.converter.default(),
        payload_codec=EncryptionCodec(settings.codec_keys),
        failure_converter_class=temporalio.converter.DefaultFailureConverterWithEncodedAttributes,
    )
