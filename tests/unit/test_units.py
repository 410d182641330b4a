"""Unit tests: signature checking, webhook parsing, verify-result reconciliation, settings."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from config import DEV_PAYSTACK_SECRET_KEY, ApiKey, Settings
from domain.verification import Outcome, Verification, judge
from paystack.events import MalformedWebhook, parse_webhook
from paystack.signature import is_valid_signature, sign

SECRET = "sk_test_unit_0123456789"
BODY = json.dumps({"event": "charge.success", "data": {"reference": "inv-1", "id": 7}}).encode()


class TestSignature:
    def test_paystack_signature_is_lowercase_hex_hmac_sha512(self) -> None:
        signature = sign(BODY, SECRET)
        assert len(signature) == 128 and signature == signature.lower()
        assert is_valid_signature(BODY, signature, SECRET)

    @pytest.mark.parametrize(
        "signature",
        [None, "", "0" * 128, "not-hex", "é", sign(BODY, SECRET)[:-1], sign(BODY, SECRET).upper()],
    )
    def test_rejects_missing_wrong_truncated_or_uppercase(self, signature: str | None) -> None:
        assert not is_valid_signature(BODY, signature, SECRET)

    def test_rejects_other_key_and_changed_body(self) -> None:
        signature = sign(BODY, SECRET)
        assert not is_valid_signature(BODY, signature, SECRET + "x")
        assert not is_valid_signature(BODY + b" ", signature, SECRET)

    def test_reserialised_json_does_not_match(self) -> None:
        pretty = json.dumps(json.loads(BODY), indent=2).encode()
        assert not is_valid_signature(pretty, sign(BODY, SECRET), SECRET)


class TestWebhookParsing:
    def test_charge_success(self) -> None:
        body = json.dumps(
            {
                "event": "charge.success",
                "data": {
                    "id": 302961,
                    "reference": "qTPrJoy9Bx",
                    "amount": 10000,
                    "currency": "NGN",
                    "status": "success",
                    "paid_at": "2016-09-30T21:10:19.000Z",
                },
            }
        ).encode()
        event = parse_webhook(body)
        assert event.event == "charge.success"
        assert event.reference == "qTPrJoy9Bx"
        assert event.transaction_id == 302961
        assert event.amount == 10000
        assert event.paid_at == datetime(2016, 9, 30, 21, 10, 19, tzinfo=UTC)
        assert event.status == "success" and event.currency == "NGN"

    def test_refund_event_with_string_amount_and_transaction_reference(self) -> None:
        body = json.dumps(
            {
                "event": "refund.processed",
                "data": {"transaction_reference": "T1", "amount": "5000", "status": "processed"},
            }
        ).encode()
        event = parse_webhook(body)
        assert event.reference == "T1" and event.amount == 5000

    def test_timestamp_without_zone_is_utc(self) -> None:
        body = b'{"event": "charge.success", "data": {"paid_at": "2024-08-22T09:15:02"}}'
        assert parse_webhook(body).paid_at == datetime(2024, 8, 22, 9, 15, 2, tzinfo=UTC)

    def test_paid_at_camel_case(self) -> None:
        body = b'{"event": "charge.success", "data": {"paidAt": "2024-08-22T09:15:02.000Z"}}'
        assert parse_webhook(body).paid_at == datetime(2024, 8, 22, 9, 15, 2, tzinfo=UTC)

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            (b"{", "not valid JSON"),
            (b"\xff\xfe", "not valid JSON"),
            (b"[]", "JSON object"),
            (b"42", "JSON object"),
            (b'{"data": {}}', "'event'"),
            (b'{"event": "", "data": {}}', "'event'"),
            (b'{"event": "charge.success"}', "'data'"),
            (b'{"event": "charge.success", "data": [1]}', "'data'"),
        ],
    )
    def test_malformed_bodies_say_what_is_wrong(self, body: bytes, message: str) -> None:
        with pytest.raises(MalformedWebhook, match=message):
            parse_webhook(body)

    def test_odd_field_types_are_dropped_not_trusted(self) -> None:
        body = b'{"event": "charge.success", "data": {"id": true, "amount": 1.5, "reference": 3}}'
        event = parse_webhook(body)
        assert event.transaction_id is None and event.amount is None and event.reference is None


def _verified(**fields: object) -> Verification:
    values: dict[str, Any] = {
        "reference": "inv-1",
        "found": True,
        "status": "success",
        "amount": 250000,
        "requested_amount": 250000,
        "currency": "NGN",
    }
    values.update(fields)
    return Verification(**values)


class TestReconcile:
    def test_success_with_matching_amount_and_currency_is_paid(self) -> None:
        assert judge(250000, "NGN", _verified()) is Outcome.PAID

    def test_customer_borne_fees_still_paid(self) -> None:
        assert judge(250000, "NGN", _verified(amount=253750)) is Outcome.PAID

    def test_partial_debit_is_a_mismatch(self) -> None:
        assert judge(250000, "NGN", _verified(amount=200000)) is Outcome.AMOUNT_MISMATCH

    def test_other_requested_amount_is_a_mismatch(self) -> None:
        verification = _verified(amount=300000, requested_amount=300000)
        assert judge(250000, "NGN", verification) is Outcome.AMOUNT_MISMATCH

    def test_without_requested_amount_the_amount_must_match(self) -> None:
        assert judge(250000, "NGN", _verified(requested_amount=None)) is Outcome.PAID
        verification = _verified(requested_amount=None, amount=250001)
        assert judge(250000, "NGN", verification) is Outcome.AMOUNT_MISMATCH

    def test_currency_mismatch(self) -> None:
        assert judge(250000, "NGN", _verified(currency="USD")) is Outcome.CURRENCY_MISMATCH

    @pytest.mark.parametrize(
        "status",
        ["abandoned", "failed", "ongoing", "pending", "processing", "queued", "reversed", None],
    )
    def test_anything_but_success_is_not_paid(self, status: str | None) -> None:
        assert judge(250000, "NGN", _verified(status=status)) is Outcome.NOT_PAID

    def test_unknown_reference_is_not_paid(self) -> None:
        assert judge(250000, "NGN", Verification("inv-1", found=False)) is Outcome.NOT_PAID


class TestSettings:
    def test_comma_separated_lists(self) -> None:
        settings = Settings.model_validate(
            {"payrecon_poll_schedule": "1, 2.5,30", "payrecon_api_keys": "a,b"}
        )
        assert settings.payrecon_poll_schedule == [1.0, 2.5, 30.0]
        assert [key.key.get_secret_value() for key in settings.payrecon_api_keys] == ["a", "b"]

    def test_api_keys_are_named_and_may_operate(self) -> None:
        settings = Settings.model_validate(
            {"payrecon_api_keys": "bare, shop:k1, shop:k2, ops:k3:operator"}
        )
        assert [
            (key.caller, key.key.get_secret_value(), key.operator)
            for key in settings.payrecon_api_keys
        ] == [
            ("default", "bare", False),
            ("shop", "k1", False),
            ("shop", "k2", False),
            ("ops", "k3", True),
        ]
        assert settings.payrecon_api_keys[3].as_setting() == "ops:k3:operator"
        assert settings.operator_callers == {"ops"}

    def test_reserved_names_and_mixed_roles_are_refused_at_start_up(self) -> None:
        # Operator events are stored under "operators": no key may be called so.
        with pytest.raises(ValidationError, match="reserved") as refused:
            Settings.model_validate({"payrecon_api_keys": "operators:k1"})
        assert "k1" not in str(refused.value)
        with pytest.raises(ValidationError, match="operator on every key or on none"):
            Settings.model_validate({"payrecon_api_keys": "ops:k1:operator, ops:k2"})

    @pytest.mark.parametrize(
        ("entry", "reason"),
        [
            ("shop:k1:admin", "name:key:operator"),
            ("a:b:c:d", "name:key:operator"),
            ("sh op:k1", "caller's name"),
            (":k1", "caller's name"),
        ],
    )
    def test_a_malformed_api_key_is_refused_without_echoing_it(
        self, entry: str, reason: str
    ) -> None:
        with pytest.raises(ValidationError, match=reason) as refused:
            Settings.model_validate({"payrecon_api_keys": entry})
        assert "k1" not in str(refused.value) and "admin" not in str(refused.value)

    @pytest.mark.parametrize("schedule", ["", "0", "5,-1", "x"])
    def test_bad_poll_schedule_refused(self, schedule: str) -> None:
        with pytest.raises(ValidationError):
            Settings.model_validate({"payrecon_poll_schedule": schedule})

    def test_dev_secret_refused_against_real_paystack(self) -> None:
        with pytest.raises(ValidationError, match="PAYSTACK_SECRET_KEY"):
            Settings(
                paystack_base_url="https://api.paystack.co",
                paystack_secret_key=SecretStr(DEV_PAYSTACK_SECRET_KEY),
            )

    def test_secrets_hidden_in_repr(self) -> None:
        settings = Settings(
            paystack_secret_key=SecretStr("sk_live_secret123"),
            payrecon_api_keys=[ApiKey.parse("shop:k1")],
        )
        assert "sk_live_secret123" not in repr(settings)
        assert "k1" not in str(settings.payrecon_api_keys)


class TestSecretsFailClosed:
    """Outside development mode, payrecon refuses the published keys, short API keys and a
    live key over plain HTTP; against api.paystack.co, the dev keys always."""

    REAL_API_KEY = "k" * 40

    def production(self, **values: Any) -> Settings:
        return Settings.model_validate(
            {
                "payrecon_development_mode": False,
                "paystack_secret_key": "sk_test_" + "9" * 40,
                "payrecon_api_keys": self.REAL_API_KEY,
                "payrecon_codec_keys": "k1:" + "a" * 43 + "=",  # 32 bytes of base64
                **values,
            }
        )

    def test_real_looking_secrets_start(self) -> None:
        self.production()
        self.production(
            paystack_secret_key="sk_live_" + "1" * 40, paystack_base_url="https://api.paystack.co"
        )

    @pytest.mark.parametrize(
        ("values", "reason"),
        [
            ({"paystack_secret_key": DEV_PAYSTACK_SECRET_KEY}, "published dev key"),
            ({"payrecon_api_keys": "dev-api-key-change-me"}, "published dev key"),
            ({"payrecon_api_keys": "x"}, "32 characters or more (one has 1)"),
            ({"payrecon_api_keys": f"{'k' * 40},short-key"}, "(one has 9)"),
            (
                {"paystack_secret_key": "sk_live_" + "1" * 40, "paystack_base_url": "http://x"},
                "only sent over https",
            ),
        ],
    )
    def test_unsafe_secrets_refuse_to_start(self, values: dict[str, Any], reason: str) -> None:
        with pytest.raises(ValidationError, match="refusing to start with unsafe secrets") as no:
            self.production(**values)
        assert reason in str(no.value)
        assert "PAYRECON_DEVELOPMENT_MODE" in str(no.value)

    def test_development_mode_accepts_the_dev_keys(self) -> None:
        Settings.model_validate({"payrecon_development_mode": True})

    @pytest.mark.parametrize(
        "url",
        [
            "https://api.paystack.co",
            "https://api.paystack.co:443",
            "HTTPS://API.PAYSTACK.CO/",
            " https://api.paystack.co ",
        ],
    )
    def test_the_dev_key_is_refused_by_real_paystack_however_it_is_written(self, url: str) -> None:
        with pytest.raises(ValidationError, match=r"real key for api\.paystack\.co"):
            Settings.model_validate(
                {
                    "payrecon_development_mode": True,
                    "paystack_base_url": url,
                    "paystack_secret_key": DEV_PAYSTACK_SECRET_KEY,
                }
            )
