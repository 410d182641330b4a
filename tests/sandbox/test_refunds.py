"""Refunds in the sandbox, over real HTTP, as Paystack does them: in part or in full, never
more than is left; each step told by a signed `refund.*` webhook; settled by the control or
by themselves; retried only when they need attention; and an answer lost after the refund
was made (the fault payrecon must never turn into a second refund)."""

from __future__ import annotations

import time
from typing import Any

import httpx

from sandbox.app import create_app
from tests.sandbox.support import (
    SECRET,
    Receiver,
    initialize,
    paid,
    sandbox_settings,
    serve,
    set_faults,
    wait_until_idle,
)

AMOUNT = 50_000
ACCOUNT = {"currency": "NGN", "account_number": "0123456789", "bank_id": "9"}
NOT_NEEDING_ATTENTION = 'Invalid Refund state, refund status should be "needs-attention"'


def paid_transaction(paystack: httpx.Client, http: httpx.Client, reference: str) -> None:
    paid(paystack, http, reference)  # initialized for 50,000 and paid in full


def refund(paystack: httpx.Client, transaction: str | int, **body: Any) -> httpx.Response:
    return paystack.post("/refund", json={"transaction": transaction, **body})


def settle(http: httpx.Client, refund_id: int, outcome: str = "processed") -> httpx.Response:
    return http.post(f"/_sandbox/refunds/{refund_id}/settle", json={"outcome": outcome})


def refund_events(hooks: Receiver, reference: str) -> list[tuple[str, Any]]:
    return [
        (event["event"], event["data"]["amount"])
        for event in (r.json() for r in hooks.for_reference(reference))
        if event["event"].startswith("refund.")
    ]


def status_of(paystack: httpx.Client, reference: str) -> str:
    status: str = paystack.get(f"/transaction/verify/{reference}").json()["data"]["status"]
    return status


def test_a_full_refund_is_queued_processed_told_and_reverses_the_transaction(
    paystack: httpx.Client, http: httpx.Client, hooks: Receiver
) -> None:
    paid_transaction(paystack, http, "full-1")
    created = refund(paystack, "full-1", merchant_note="payrecon refund rf_1")
    assert created.status_code == 200, created.text
    body = created.json()
    assert body["message"] == "Refund has been queued for processing"
    queued = body["data"]
    assert queued["status"] == "pending" and queued["amount"] == AMOUNT
    assert queued["merchant_note"] == "payrecon refund rf_1"
    assert queued["transaction"]["reference"] == "full-1"
    assert status_of(paystack, "full-1") == "success"

    settled = settle(http, queued["id"])
    assert settled.status_code == 200 and settled.json()["data"]["status"] == "processed"
    wait_until_idle(http)
    # Each step told once; sent one after another, they may arrive in any order.
    assert sorted(refund_events(hooks, "full-1")) == [
        ("refund.pending", str(AMOUNT)),
        ("refund.processed", str(AMOUNT)),
        ("refund.processing", str(AMOUNT)),
    ]
    assert all(r.signed_correctly for r in hooks.for_reference("full-1"))
    fetched = paystack.get(f"/refund/{queued['id']}").json()
    assert fetched["message"] == "Refund retrieved"
    assert fetched["data"]["status"] == "processed" and fetched["data"]["refunded_at"]
    assert (
        fetched["data"]["transaction"]
        == paystack.get("/transaction/verify/full-1").json()["data"]["id"]
    )
    assert status_of(paystack, "full-1") == "reversed"
    again = settle(http, queued["id"], "failed")
    assert again.status_code == 409


def test_a_partial_refund_then_the_rest_and_never_more(
    paystack: httpx.Client, http: httpx.Client
) -> None:
    paid_transaction(paystack, http, "part-1")
    first = refund(paystack, "part-1", amount=20_000).json()["data"]
    over = refund(paystack, "part-1", amount=30_001)
    assert over.status_code == 400
    assert over.json()["message"] == (
        "Refund amount cannot be more than the unrefunded balance of 30000"
    )
    rest = refund(paystack, "part-1").json()["data"]
    assert (first["amount"], rest["amount"]) == (20_000, 30_000)
    none_left = refund(paystack, "part-1", amount=1)
    assert none_left.json()["message"] == "Transaction has been fully reversed"
    settle(http, first["id"])
    assert status_of(paystack, "part-1") == "success"  # part refunded: still a payment
    settle(http, rest["id"])
    assert status_of(paystack, "part-1") == "reversed"


def test_a_failed_refund_gives_the_money_back_to_refund_again(
    paystack: httpx.Client, http: httpx.Client, hooks: Receiver
) -> None:
    paid_transaction(paystack, http, "fail-1")
    failing = refund(paystack, "fail-1").json()["data"]
    assert settle(http, failing["id"], "failed").json()["data"]["status"] == "failed"
    wait_until_idle(http)
    # As Paystack's sample: a failed refund's amount is a number, not a string.
    assert ("refund.failed", AMOUNT) in refund_events(hooks, "fail-1")
    assert status_of(paystack, "fail-1") == "success"
    assert refund(paystack, "fail-1").status_code == 200


def test_needs_attention_waits_for_the_customers_account_then_settles(
    paystack: httpx.Client, http: httpx.Client, hooks: Receiver
) -> None:
    paid_transaction(paystack, http, "attn-1")
    held = refund(paystack, "attn-1").json()["data"]
    early = paystack.post(
        f"/refund/retry_with_customer_details/{held['id']}",
        json={
            "refund_account_details": {
                "currency": "NGN",
                "account_number": "0123456789",
                "bank_id": "9",
            }
        },
    )
    assert early.status_code == 422
    assert (
        early.json()["message"] == 'Invalid Refund state, refund status should be "needs-attention"'
    )
    settle(http, held["id"], "needs-attention")
    wait_until_idle(http)
    [attention] = [
        r.json()["data"] for r in hooks.for_reference("attn-1") if "attention" in r.json()["event"]
    ]
    assert attention["id"] == str(held["id"]) and attention["amount"] == AMOUNT
    missing = paystack.post(f"/refund/retry_with_customer_details/{held['id']}", json={})
    assert missing.status_code == 400
    retried = paystack.post(
        f"/refund/retry_with_customer_details/{held['id']}",
        json={
            "refund_account_details": {
                "currency": "NGN",
                "account_number": "0123456789",
                "bank_id": "9",
            }
        },
    )
    assert retried.json()["message"] == "Refund retried and has been queued for processing"
    assert retried.json()["data"]["status"] == "processing"
    assert settle(http, held["id"]).json()["data"]["status"] == "processed"


def test_refusals_unknown_unsuccessful_and_bad_amounts(
    paystack: httpx.Client, http: httpx.Client
) -> None:
    unknown = refund(paystack, "no-such-reference")
    assert unknown.status_code == 404 and unknown.json()["message"] == "Transaction not found"
    initialize(paystack, amount=AMOUNT, reference="unpaid-1")
    unpaid = refund(paystack, "unpaid-1")
    assert unpaid.status_code == 400
    assert unpaid.json()["message"] == "Cannot refund a transaction that is not successful"
    paid_transaction(paystack, http, "bad-1")
    for amount in (0, -5, "ten", 1.5):
        assert refund(paystack, "bad-1", amount=amount).status_code == 400, amount
    assert refund(paystack, "bad-1", currency="GHS").status_code == 400
    assert paystack.post("/refund", json={}).status_code == 400
    assert (
        httpx.post(f"{paystack.base_url}/refund", json={"transaction": "bad-1"}).status_code == 401
    )
    assert paystack.get("/refund", params={"transaction": "bad-1"}).json()["data"] == []
    assert paystack.get("/refund/999").status_code == 404


def test_the_list_filters_by_transaction_currency_and_date(
    paystack: httpx.Client, http: httpx.Client
) -> None:
    paid_transaction(paystack, http, "list-1")
    paid_transaction(paystack, http, "list-2")
    one = refund(paystack, "list-1", amount=1_000).json()["data"]
    two = refund(paystack, "list-1", amount=2_000).json()["data"]
    other = refund(paystack, "list-2").json()["data"]
    tx_id = paystack.get("/transaction/verify/list-1").json()["data"]["id"]
    for key in ("list-1", tx_id):
        listed = paystack.get("/refund", params={"transaction": key}).json()
        assert [r["id"] for r in listed["data"]] == [two["id"], one["id"]]
        assert listed["meta"]["total"] == 2
    everything = paystack.get("/refund", params={"perPage": 2, "page": 2}).json()
    assert [r["id"] for r in everything["data"]] == [one["id"]]
    assert everything["meta"]["pageCount"] == 2
    assert {
        r["id"] for r in paystack.get("/refund", params={"currency": "ngn"}).json()["data"]
    } == {one["id"], two["id"], other["id"]}
    assert paystack.get("/refund", params={"to": "2000-01-01"}).json()["data"] == []


def test_a_lost_answer_leaves_exactly_one_refund_to_find_by_its_note(
    paystack: httpx.Client, http: httpx.Client
) -> None:
    paid_transaction(paystack, http, "lost-1")
    set_faults(
        http,
        api={"refund": {"error_rate": {"count": 1}, "error_statuses": [503], "after_commit": 1.0}},
    )
    lost = refund(paystack, "lost-1", merchant_note="payrecon rf_lost")
    assert lost.status_code == 503
    [made] = paystack.get("/refund", params={"transaction": "lost-1"}).json()["data"]
    assert made["merchant_note"] == "payrecon rf_lost" and made["status"] == "pending"
    assert http.get("/_sandbox/stats").json()["faults"]["refund_after_commit"] == 1


def test_a_refund_settles_by_itself_when_no_one_moves_it(receiver: tuple[Receiver, str]) -> None:
    recorder, webhook_url = receiver
    with serve(
        lambda port: create_app(
            sandbox_settings(port, sandbox_webhook_url=webhook_url, sandbox_refund_auto_seconds=0.4)
        )
    ) as url:
        with (
            httpx.Client(base_url=url, timeout=5) as http,
            httpx.Client(
                base_url=url, headers={"Authorization": f"Bearer {SECRET}"}, timeout=5
            ) as paystack,
        ):
            paid_transaction(paystack, http, "auto-1")
            made = refund(paystack, "auto-1").json()["data"]
            deadline = time.monotonic() + 5
            while paystack.get(f"/refund/{made['id']}").json()["data"]["status"] != "processed":
                assert time.monotonic() < deadline, "the refund never settled by itself"
                time.sleep(0.05)
            wait_until_idle(http)
            assert [event for event, _ in refund_events(recorder, "auto-1")] == [
                "refund.pending",
                "refund.processing",
                "refund.processed",
            ]
