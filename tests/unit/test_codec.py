"""The payload codec (temporal_codec.py) and its settings: what Temporal stores is
ciphertext, keys rotate, and payrecon refuses to start without real keys."""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.exceptions import ApplicationError

from config import DEV_CODEC_KEY, DEV_CODEC_KEY_ID, CodecKey, Settings
from domain.invoice import InvoiceRequest
from temporal_codec import (
    ENCODING,
    KEY_ID,
    CodecError,
    EncryptionCodec,
    PlaintextPayloadError,
    UnknownKeyError,
    payrecon_data_converter,
)
from workflows.types import CUSTOMER_EMAIL, INVOICE_STATUS, initial_search_attributes

EMAIL = b"ada@example.com"


def key_entry(key_id: str) -> str:
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"


def codec(*entries: str) -> EncryptionCodec:
    return EncryptionCodec([CodecKey.parse(entry) for entry in entries])


def plain(data: bytes = b'{"customer_email": "ada@example.com"}') -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=data)


class TestEncryptionCodec:
    async def test_round_trip_leaves_nothing_in_clear(self) -> None:
        old = key_entry("2026-01")
        sealed = await codec(old).encode([plain(), plain(b"")])

        assert all(p.metadata["encoding"] == ENCODING for p in sealed)
        assert all(p.metadata[KEY_ID] == b"2026-01" for p in sealed)
        assert EMAIL not in sealed[0].SerializeToString()
        assert await codec(old).decode(sealed) == [plain(), plain(b"")]
        # A fresh nonce each time: one value never encrypts to the same bytes twice.
        again = await codec(old).encode([plain()])
        assert again[0].data != sealed[0].data

    async def test_a_rotated_key_still_decrypts_what_it_encrypted(self) -> None:
        old, new = key_entry("2026-01"), key_entry("2026-07")
        before = await codec(old).encode([plain()])

        rotated = codec(new, old)
        after = await rotated.encode([plain()])

        assert after[0].metadata[KEY_ID] == b"2026-07"
        assert await rotated.decode(before + after) == [plain(), plain()]

    async def test_an_unknown_key_id_is_a_clear_error(self) -> None:
        sealed = await codec(key_entry("retired")).encode([plain()])

        with pytest.raises(UnknownKeyError, match=r"key id 'retired'.*holds current"):
            await codec(key_entry("current")).decode(sealed)

    @pytest.mark.parametrize(
        "unencrypted",
        [plain(), Payload(metadata={"encoding": b"binary/null"}), Payload()],
        ids=["json", "null", "empty"],
    )
    async def test_a_plaintext_payload_is_refused(self, unencrypted: Payload) -> None:
        with pytest.raises(PlaintextPayloadError, match="not encrypted"):
            await codec(key_entry("k")).decode([unencrypted])

    @pytest.mark.parametrize(
        "tamper",
        [
            lambda data: data[:-1] + bytes([data[-1] ^ 1]),  # the tag
            lambda data: data[:20] + bytes([data[20] ^ 1]) + data[21:],  # the ciphertext
            lambda data: data[:10],  # shorter than a nonce and a tag
            lambda data: b"",
        ],
    )
    async def test_altered_ciphertext_is_refused(self, tamper: Any) -> None:
        key = key_entry("k")
        [sealed] = await codec(key).encode([plain()])
        sealed.data = tamper(sealed.data)

        with pytest.raises(CodecError, match="does not decrypt: it was altered"):
            await codec(key).decode([sealed])

    async def test_another_key_under_the_same_id_is_refused(self) -> None:
        sealed = await codec(key_entry("k")).encode([plain()])

        with pytest.raises(CodecError, match="another key of that id"):
            await codec(key_entry("k")).decode(sealed)


class TestDataConverter:
    async def test_values_and_failure_messages_are_encrypted(self) -> None:
        converter = payrecon_data_converter(Settings(payrecon_development_mode=True))
        request = {"customer_email": EMAIL.decode(), "metadata": {"order": "1042"}}

        [payload] = await converter.encode([request])
        assert payload.metadata["encoding"] == ENCODING
        assert EMAIL not in payload.SerializeToString()
        assert await converter.decode([payload]) == [request]

        failure = Failure()
        error = ApplicationError(f"Paystack refused {EMAIL.decode()}", type="PaystackRejected")
        await converter.encode_failure(error, failure)
        assert EMAIL not in failure.SerializeToString()
        decoded = await converter.decode_failure(failure)
        assert isinstance(decoded, ApplicationError)
        assert decoded.message == f"Paystack refused {EMAIL.decode()}"


def production(**values: Any) -> Settings:
    return Settings.model_validate(
        {
            "payrecon_development_mode": False,
            "paystack_secret_key": "sk_test_" + "9" * 40,
            "payrecon_api_keys": "k" * 40,
            "payrecon_codec_keys": key_entry("2026-07"),
            **values,
        }
    )


class TestCodecSettings:
    def test_development_mode_encrypts_with_the_published_dev_key(self) -> None:
        [key] = Settings(payrecon_development_mode=True).codec_keys
        assert key == CodecKey.parse(DEV_CODEC_KEY) and key.key_id == DEV_CODEC_KEY_ID

    def test_the_first_key_encrypts_and_all_decrypt(self) -> None:
        settings = production(payrecon_codec_keys=f"{key_entry('new')}, {key_entry('old')}")
        assert [key.key_id for key in settings.codec_keys] == ["new", "old"]
        assert EncryptionCodec(settings.codec_keys).key_id == "new"

    @pytest.mark.parametrize(
        ("values", "reason"),
        [
            ({"payrecon_codec_keys": ""}, "PAYRECON_CODEC_KEYS is required"),
            ({"payrecon_codec_keys": DEV_CODEC_KEY}, "holds the published dev key"),
            (
                {"payrecon_codec_keys": f"{key_entry('new')},{DEV_CODEC_KEY}"},
                "holds the published dev key",
            ),
            ({"payrecon_codec_tokens": "short"}, "every token needs 32 characters"),
        ],
    )
    def test_no_real_keys_refuse_to_start(self, values: dict[str, Any], reason: str) -> None:
        with pytest.raises(ValidationError, match="refusing to start with unsafe secrets") as no:
            production(**values)
        assert reason in str(no.value)

    def test_the_dev_key_is_refused_by_real_paystack_even_in_development_mode(self) -> None:
        with pytest.raises(ValidationError, match="PAYRECON_CODEC_KEYS must be set to real"):
            Settings.model_validate(
                {
                    "payrecon_development_mode": True,
                    "paystack_base_url": "https://api.paystack.co",
                    "paystack_secret_key": "sk_live_" + "1" * 40,
                    "payrecon_api_keys": "k" * 40,
                }
            )

    @pytest.mark.parametrize(
        ("keys", "reason"),
        [
            ("no-separator", "key_id:base64-of-32-bytes"),
            (":" + base64.b64encode(b"x" * 32).decode(), "key_id:base64-of-32-bytes"),
            ("a b:" + base64.b64encode(b"x" * 32).decode(), "key_id:base64-of-32-bytes"),
            ("k:not base64!", "key 'k' is not base64"),
            ("k:" + base64.b64encode(b"x" * 16).decode(), "key 'k' is 16 bytes, not 32"),
            (f"{key_entry('same')},{key_entry('same')}", "each key id may appear once"),
        ],
    )
    def test_malformed_keys_are_refused_without_quoting_them(self, keys: str, reason: str) -> None:
        with pytest.raises(ValidationError, match=reason) as no:
            production(payrecon_codec_keys=keys)
        assert keys.partition(":")[2] not in str(no.value) or not keys.partition(":")[2]

    def test_the_key_is_not_in_its_repr(self) -> None:
        entry = key_entry("k")
        assert entry.partition(":")[2] not in repr(CodecKey.parse(entry))
        assert entry.partition(":")[2] not in repr(production(payrecon_codec_keys=entry))


class TestUiOriginAndSearchAttributeSettings:
    def test_defaults_follow_development_mode(self) -> None:
        dev = Settings(payrecon_development_mode=True)
        assert dev.temporal_ui_origin == "http://localhost:8233"
        assert dev.customer_email_search_attribute is True
        prod = production()
        assert prod.temporal_ui_origin is None
        assert prod.customer_email_search_attribute is False

    def test_set_values_win(self) -> None:
        settings = production(
            payrecon_temporal_ui_origin="https://temporal.example.com/",
            payrecon_customer_email_search_attribute=True,
        )
        assert settings.temporal_ui_origin == "https://temporal.example.com"
        assert settings.customer_email_search_attribute is True
        off = Settings(payrecon_development_mode=True, payrecon_temporal_ui_origin="")
        assert off.temporal_ui_origin is None

    @pytest.mark.parametrize("origin", ["localhost:8233", "https://x.example/ui", "ftp://x"])
    def test_an_origin_is_scheme_host_and_port(self, origin: str) -> None:
        with pytest.raises(ValidationError, match="an origin is scheme://host"):
            production(payrecon_temporal_ui_origin=origin)


REQUEST = InvoiceRequest(
    invoice_id="inv-000000000000000000000001",
    customer_email=EMAIL.decode(),
    amount=250000,
    currency="NGN",
    due_at=datetime(2026, 11, 24, tzinfo=UTC),
    fingerprint="body",
)


@pytest.mark.parametrize("searchable", [True, False])
def test_customer_email_is_a_search_attribute_only_when_set(searchable: bool) -> None:
    attributes = initial_search_attributes(REQUEST, customer_email=searchable)
    assert attributes.get(INVOICE_STATUS) == "pending"
    assert (attributes.get(CUSTOMER_EMAIL) is not None) is searchable
