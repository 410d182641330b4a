"""Paying in the sandbox over real HTTP: the signed webhook that follows, resends, the
checkout page, and state that survives a restart. Each test starts from an empty sandbox.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from fastapi import FastAPI

from paystack.signature import SIGNATURE_HEADER, is_valid_signature
from sandbox.app import create_app
from tests.sandbox.support import (
    SECRET,
    TIMESTAMP,
    WEBHOOK_REQUIRED_KEYS,
    Receiver,
    deliveries,
    initialize,
    pay,
    sandbox_settings,
    serve,
    verify,
)

# Paying, and the webhook that follows


def test_pay_success_then_verify_and_signed_webhook(
    paystack: httpx.Client, http: httpx.Client, hooks: Receiver
) -> None:
    initialize(paystack, amount=50_000, reference="paid-1", metadata={"invoice_id": "inv_1"})

    response = pay(http, "paid-1")

    assert response.status_code == 200
    assert response.json()["message"] == "Transaction settled"
    data = verify(paystack, "paid-1")
    assert data["status"] == "success"
    assert data["amount"] == data["requested_amount"] == 50_000
    assert data["gateway_response"] == "Successful"
    assert data["channel"] == "card"
    assert data["fees"] == 750
    assert TIMESTAMP.match(data["paid_at"]) and data["paidAt"] == data["paid_at"]
    assert data["authorization"]["authorization_code"].startswith("AUTH_")
    assert data["authorization"]["reusable"] is True
    assert data["authorization"]["last4"] == "4081"
    assert data == response.json()["data"]

    (hook,) = hooks.wait_for(1)
    assert hook.headers["content-type"] == "application/json"
    assert is_valid_signature(hook.body, hook.headers[SIGNATURE_HEADER], SECRET)
    assert not is_valid_signature(hook.body, hook.headers[SIGNATURE_HEADER], "sk_test_other")
    assert b", " not in hook.body and b": " not in hook.body  # compact JSON
    event = hook.json()
    assert event["event"] == "charge.success"
    assert WEBHOOK_REQUIRED_KEYS <= set(event["data"])
    assert event["data"]["reference"] == "paid-1"
    assert event["data"]["id"] == data["id"]
    assert event["data"]["amount"] == 50_000
    assert event["data"]["metadata"] == {"invoice_id": "inv_1"}
    assert event["data"]["authorization"] == data["authorization"]

    (attempt,) = deliveries(http, "paid-1", 1)
    assert attempt["event"] == "charge.success"
    assert attempt["status_code"] == 200
    assert attempt["error"] is None
    assert attempt["latency_ms"] >= 0
    assert TIMESTAMP.match(attempt["attempted_at"])
    assert http.get("/_sandbox/stats").json()["webhooks_sent"] == 1


def test_pay_a_different_amount_and_currency(
    paystack: httpx.Client, http: httpx.Client, hooks: Receiver
) -> None:
    initialize(paystack, amount=50_000, reference="partial-1")

    assert pay(http, "partial-1", amount=30_000, currency="usd").status_code == 200

    data = verify(paystack, "partial-1")
    assert (data["amount"], data["requested_amount"], data["currency"]) == (30_000, 50_000, "USD")
    (hook,) = hooks.wait_for(1)
    assert hook.json()["data"]["amount"] == 30_000
    assert hook.json()["data"]["requested_amount"] == 50_000


def test_failed_outcome_sends_no_webhook_and_can_be_retried(
    paystack: httpx.Client, http: httpx.Client, hooks: Receiver
) -> None:
    initialize(paystack, reference="declined-1")
    initialize(paystack, reference="sentinel-1")

    assert pay(http, "declined-1", outcome="failed").status_code == 200
    data = verify(paystack, "declined-1")
    assert (data["status"], data["gateway_response"], data["paid_at"]) == (
        "failed",
        "Declined",
        None,
    )

    # A webhook sent after the decline arrives; none for the decline itself.
    pay(http, "sentinel-1")
    hooks.wait_for(1)
    assert hooks.for_reference("declined-1") == []

    # The customer may try again after a decline.
    assert pay(http, "declined-1").status_code == 200
    assert verify(paystack, "declined-1")["status"] == "success"


def test_settling_twice_or_unknown_or_invalid(paystack: httpx.Client, http: httpx.Client) -> None:
    initialize(paystack, reference="twice-1")
    assert pay(http, "twice-1").status_code == 200

    again = pay(http, "twice-1")
    assert again.status_code == 409
    assert again.json() == {"status": False, "message": "Transaction already settled"}
    assert pay(http, "never-made").status_code == 404
    assert pay(http, "twice-1", outcome="maybe").status_code == 422
    assert pay(http, "twice-1", amount=0).status_code == 422


def test_disabled_webhooks_send_nothing_until_resent(
    paystack: httpx.Client, http: httpx.Client, hooks: Receiver, receiver: tuple[Receiver, str]
) -> None:
    _, webhook_url = receiver
    config = http.post("/_sandbox/config", json={"webhooks_enabled": False}).json()
    assert config == {"webhooks_enabled": False, "webhook_url": webhook_url}
    assert http.get("/_sandbox/config").json() == config
    initialize(paystack, reference="quiet-1")
    initialize(paystack, reference="pending-1")

    pay(http, "quiet-1")
    http.post("/_sandbox/config", json={"webhooks_enabled": True})
    pay(http, "pending-1", outcome="failed")
    assert http.post("/_sandbox/transactions/pending-1/webhook").status_code == 409

    # An explicit resend delivers even though the payment itself sent none.
    response = http.post("/_sandbox/transactions/quiet-1/webhook", json={"copies": 3})
    assert response.status_code == 200
    received = hooks.wait_for(3)
    assert len(received) == 3
    assert len({r.body for r in received}) == 1
    assert all(r.json()["data"]["reference"] == "quiet-1" for r in received)
    assert len(deliveries(http, "quiet-1", 3)) == 3


def test_resend_copies_are_bounded(paystack: httpx.Client, http: httpx.Client) -> None:
    initialize(paystack, reference="bounded-1")
    pay(http, "bounded-1")

    assert (
        http.post("/_sandbox/transactions/bounded-1/webhook", json={"copies": 0}).status_code == 422
    )
    assert (
        http.post("/_sandbox/transactions/bounded-1/webhook", json={"copies": 51}).status_code
        == 422
    )
    assert http.post("/_sandbox/transactions/nope/webhook").status_code == 404


def test_unreachable_webhook_url_is_logged_as_an_error(
    paystack: httpx.Client, http: httpx.Client
) -> None:
    http.post(
        "/_sandbox/config",
        json={"webhooks_enabled": True, "webhook_url": "http://127.0.0.1:9/webhooks/paystack"},
    )
    initialize(paystack, reference="lost-1")

    pay(http, "lost-1")

    (attempt,) = deliveries(http, "lost-1", 1)
    assert attempt["url"] == "http://127.0.0.1:9/webhooks/paystack"
    assert attempt["status_code"] is None
    assert attempt["error"]
    assert attempt["delivered"] is False


# Checkout page


def test_checkout_page_pay_redirects_to_callback(
    paystack: httpx.Client, http: httpx.Client, hooks: Receiver
) -> None:
    data = initialize(
        paystack, amount=123_456, reference="page-1", callback_url="https://shop.example/done?o=1"
    )
    code = data["access_code"]

    page = http.get(f"/checkout/{code}")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert "NGN 1,234.56" in page.text
    assert "ada@example.com" in page.text and "page-1" in page.text
    assert f"/checkout/{code}/pay" in page.text and f"/checkout/{code}/decline" in page.text

    paid = http.post(f"/checkout/{code}/pay")
    assert paid.status_code == 303
    assert (
        paid.headers["location"] == "https://shop.example/done?o=1&trxref=page-1&reference=page-1"
    )
    assert verify(paystack, "page-1")["status"] == "success"
    hooks.wait_for(1)
    assert http.post(f"/checkout/{code}/pay").status_code == 409


def test_checkout_decline_and_unknown_code(paystack: httpx.Client, http: httpx.Client) -> None:
    code = initialize(paystack, amount=50_000, reference="page-2")["access_code"]

    declined = http.post(f"/checkout/{code}/decline")

    assert declined.status_code == 200
    assert "declined" in declined.text.lower()
    assert verify(paystack, "page-2")["status"] == "failed"
    assert http.get("/checkout/doesnotexist123").status_code == 404
    assert http.post("/checkout/doesnotexist123/pay").status_code == 404


# Persistence


def test_state_file_survives_a_restart(tmp_path: Path) -> None:
    state_file = tmp_path / "state" / "sandbox.json"
    headers = {"Authorization": f"Bearer {SECRET}"}

    def make_app(port: int) -> FastAPI:
        return create_app(
            sandbox_settings(port, sandbox_state_file=state_file, sandbox_webhooks_enabled=False)
        )

    with serve(make_app) as url, httpx.Client(base_url=url, headers=headers) as client:
        initialize(client, reference="keep-1", metadata={"invoice_id": "inv_7"})
        initialize(client, reference="keep-2")
        pay(client, "keep-1", amount=40_000).raise_for_status()
        before = verify(client, "keep-1")
    assert state_file.exists()

    with serve(make_app) as url, httpx.Client(base_url=url, headers=headers) as client:
        assert verify(client, "keep-1") == before
        assert verify(client, "keep-2")["status"] == "abandoned"
        # Ids keep increasing and customers keep their codes after a restart.
        new = verify(client, initialize(client, reference="keep-3")["reference"])
        assert new["id"] == before["id"] + 2
        assert new["customer"]["customer_code"] == before["customer"]["customer_code"]
        duplicate = client.post(
            "/transaction/initialize",
            json={"email": "ada@example.com", "amount": 50_000, "reference": "keep-1"},
        )
        assert duplicate.json()["code"] == "duplicate_reference"
        client.post("/_sandbox/reset").raise_for_status()

    assert json.loads(state_file.read_text())["transactions"] == []
