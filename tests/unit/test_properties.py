"""Property-based tests (hypothesis) for the signature check, the webhook parser and the
redacted copy of a delivery that is stored."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inbox.redaction import stored_body
from paystack.events import MalformedWebhook, WebhookEvent, parse_webhook
from paystack.signature import is_valid_signature, sign

secrets = st.text(min_size=1, max_size=64)
bodies = st.binary(max_size=2048)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=15), children, max_size=5)
    ),
    max_leaves=25,
)
event_like = st.fixed_dictionaries(
    {},
    optional={
        "event": st.sampled_from(["charge.success", "refund.processed", ""]) | json_values,
        "data": st.fixed_dictionaries(
            {},
            optional={
                "id": json_values,
                "reference": json_values,
                "transaction_reference": json_values,
                "amount": json_values,
                "currency": json_values,
                "status": json_values,
                "paid_at": json_values,
                "paidAt": json_values,
            },
        )
        | json_values,
    },
)


@given(body=bodies, secret=secrets, data=st.data())
def test_any_change_to_a_signed_body_is_rejected(body: bytes, secret: str, data: Any) -> None:
    signature = sign(body, secret)
    assert is_valid_signature(body, signature, secret)
    if body:
        index = data.draw(st.integers(0, len(body) - 1))
        flip = data.draw(st.integers(1, 255))
        changed = body[:index] + bytes([body[index] ^ flip]) + body[index + 1 :]
        assert not is_valid_signature(changed, signature, secret)
    extra = data.draw(st.binary(min_size=1, max_size=8))
    assert not is_valid_signature(body + extra, signature, secret)
    assert not is_valid_signature(body, signature, secret + "x")


@given(body=bodies, secret=secrets, data=st.data())
def test_any_change_to_a_signature_is_rejected(body: bytes, secret: str, data: Any) -> None:
    signature = sign(body, secret)
    index = data.draw(st.integers(0, len(signature) - 1))
    replacement = data.draw(st.characters().filter(lambda c: c != signature[index]))
    changed = signature[:index] + replacement + signature[index + 1 :]
    cut = data.draw(st.integers(0, len(signature) - 1))
    assert not is_valid_signature(body, changed, secret)
    assert not is_valid_signature(body, signature[:cut], secret)
    assert not is_valid_signature(body, signature + data.draw(st.text(min_size=1)), secret)


def _parse(body: bytes) -> WebhookEvent | None:
    try:
        return parse_webhook(body)
    except MalformedWebhook:
        return None


@settings(max_examples=300)
@given(payload=event_like | json_values)
def test_json_bodies_parse_or_are_refused_with_a_reason(payload: Any) -> None:
    event = _parse(json.dumps(payload).encode())
    if event is None:
        return
    assert isinstance(event.event, str) and event.event
    assert isinstance(event.data, dict)
    assert event.reference is None or isinstance(event.reference, str)
    assert event.amount is None or (isinstance(event.amount, int) and event.amount >= 0)
    assert event.transaction_id is None or type(event.transaction_id) is int
    assert event.status is None or isinstance(event.status, str)


@given(body=bodies)
def test_any_bytes_parse_or_are_refused_with_a_reason(body: bytes) -> None:
    _parse(body)


@given(transaction_id=st.integers(min_value=-(2**70), max_value=2**70))
def test_an_id_is_taken_exactly_when_it_is_an_unsigned_64_bit_integer(
    transaction_id: int,
) -> None:
    body = json.dumps({"event": "charge.success", "data": {"id": transaction_id}}).encode()
    if 0 <= transaction_id <= 2**64 - 1:
        assert parse_webhook(body).transaction_id == transaction_id
    else:
        with pytest.raises(MalformedWebhook, match="unsigned 64-bit"):
            parse_webhook(body)


@given(
    text=st.text(min_size=1, max_size=300),
    where=st.sampled_from(["event", "reference"]),
)
def test_event_and_reference_are_short_and_free_of_nul_or_refused(text: str, where: str) -> None:
    payload: dict[str, Any] = {"event": "charge.success", "data": {}}
    if where == "event":
        payload["event"] = text
    else:
        payload["data"]["reference"] = text
    limit = 100 if where == "event" else 200
    body = json.dumps(payload).encode()
    if "\x00" in text or len(text) > limit:
        with pytest.raises(MalformedWebhook):
            parse_webhook(body)
    else:
        parse_webhook(body)


@given(depth=st.integers(min_value=1, max_value=20_000))
@settings(max_examples=30, deadline=None)
def test_any_nesting_depth_parses_or_is_refused_with_a_reason(depth: int) -> None:
    body = b'{"event": "charge.success", "data": {"x": ' + b"[" * depth + b"]" * depth + b"}}"
    try:
        parse_webhook(body)
    except MalformedWebhook as refused:
        assert str(refused)


@given(
    payload=event_like,
    card=st.fixed_dictionaries(
        {
            "authorization_code": st.from_regex(r"AUTH_[a-z0-9]{10}", fullmatch=True),
            "bin": st.from_regex(r"[0-9]{6}", fullmatch=True),
            "last4": st.from_regex(r"[0-9]{4}", fullmatch=True),
        }
    ),
    email=st.emails(),
)
def test_a_stored_body_holds_no_card_or_payer_and_parses_back_the_same(
    payload: dict[str, Any], card: dict[str, str], email: str
) -> None:
    given = payload.get("data")
    data: dict[str, Any] = given if isinstance(given, dict) else {}
    payload = {"event": "charge.success", **payload}
    payload["data"] = {**data, "authorization": card, "customer": {"email": email}}
    try:
        event = parse_webhook(json.dumps(payload).encode())
    except MalformedWebhook:
        return
    stored = stored_body(event)
    assert card["authorization_code"] not in stored and email not in stored
    again = parse_webhook(stored.encode())
    assert (again.event, again.reference, again.transaction_id, again.amount) == (
        event.event,
        event.reference,
        event.transaction_id,
        event.amount,
    )
    assert (again.currency, again.status, again.paid_at) == (
        event.currency,
        event.status,
        event.paid_at,
    )
