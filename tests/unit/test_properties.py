"""Property-based tests (hypothesis) for the signature check and the webhook parser."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

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
