"""Disputes in the sandbox, over real HTTP, as Paystack does them: opened and reminded by
the controls with their signed webhooks, read by Paystack's endpoints, evidence uploaded to
the URL handed out, and resolved either way; an accepted one refunds what it says."""

from __future__ import annotations

from typing import Any

import httpx

from tests.sandbox.support import Receiver, paid, wait_until_idle

AMOUNT = 50_000


def open_dispute(http: httpx.Client, transaction: str | int, **body: Any) -> dict[str, Any]:
    answer = http.post("/_sandbox/disputes", json={"transaction": transaction, **body})
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()["data"]
    return data


def dispute_events(hooks: Receiver) -> list[tuple[str, str]]:
    return [
        (event["event"], event["data"]["status"])
        for event in (r.json() for r in hooks.requests)
        if event["event"].startswith("charge.dispute.")
    ]


def evidence(paystack: httpx.Client, http: httpx.Client, dispute_id: int) -> str:
    """An evidence file uploaded where Paystack said to, by the name it gave."""
    url = paystack.get(f"/dispute/{dispute_id}/upload_url", params={"upload_filename": "a.pdf"})
    assert url.json()["message"] == "Upload url generated"
    signed, name = url.json()["data"]["signedUrl"], url.json()["data"]["fileName"]
    assert name.endswith(".pdf") and signed.endswith(f"/_sandbox/uploads/{name}")
    assert httpx.put(signed, content=b"%PDF-1.4 receipt").status_code == 200
    return str(name)


def resolve(paystack: httpx.Client, dispute_id: int, **body: Any) -> httpx.Response:
    return paystack.put(f"/dispute/{dispute_id}/resolve", json=body)


def test_a_dispute_is_opened_reminded_read_and_declined_with_evidence(
    paystack: httpx.Client, http: httpx.Client, hooks: Receiver
) -> None:
    paid(paystack, http, "disp-1")
    opened = open_dispute(http, "disp-1", category="fraud", refund_amount=20_000)
    assert opened["status"] == "awaiting-merchant-feedback" and opened["refund_amount"] == 20_000
    assert opened["transaction"]["reference"] == "disp-1" and opened["dueAt"]
    hooks.wait_for(2)  # the payment's and the dispute's: each told before the next step
    assert http.post(f"/_sandbox/disputes/{opened['id']}/remind").status_code == 200
    hooks.wait_for(3)
    fetched = paystack.get(f"/dispute/{opened['id']}").json()
    assert fetched["message"] == "Dispute retrieved" and fetched["data"]["category"] == "fraud"
    tx_id = opened["transaction"]["id"]
    by_transaction = paystack.get(f"/dispute/transaction/{tx_id}").json()
    assert by_transaction["data"]["id"] == opened["id"]
    listed = paystack.get("/dispute", params={"status": "awaiting-merchant-feedback"}).json()
    assert [d["id"] for d in listed["data"]] == [opened["id"]]

    no_file = resolve(
        paystack, opened["id"], resolution="declined", message="delivered",
        refund_amount=0, uploaded_filename="never-uploaded.pdf",
    )  # fmt: skip
    assert no_file.status_code == 400
    name = evidence(paystack, http, opened["id"])
    declined = resolve(
        paystack, opened["id"], resolution="declined", message="Goods were delivered",
        refund_amount=0, uploaded_filename=name,
    )  # fmt: skip
    assert declined.json()["message"] == "Dispute successfully resolved"
    data = declined.json()["data"]
    assert (data["status"], data["resolution"], data["attachments"]) == (
        "resolved",
        "declined",
        name,
    )
    assert data["resolvedAt"] and data["messages"][-1]["body"] == "Goods were delivered"
    again = resolve(
        paystack, opened["id"], resolution="declined", message="again",
        refund_amount=0, uploaded_filename=name,
    )  # fmt: skip
    assert again.status_code == 400
    assert http.post(f"/_sandbox/disputes/{opened['id']}/remind").status_code == 409
    wait_until_idle(http)
    assert dispute_events(hooks) == [
        ("charge.dispute.create", "awaiting-merchant-feedback"),
        ("charge.dispute.remind", "awaiting-merchant-feedback"),
        ("charge.dispute.resolve", "resolved"),
    ]
    assert all(r.signed_correctly for r in hooks.requests)
    assert paystack.get("/refund", params={"transaction": "disp-1"}).json()["data"] == []


def test_an_accepted_dispute_refunds_what_it_says(
    paystack: httpx.Client, http: httpx.Client
) -> None:
    paid(paystack, http, "disp-2")
    opened = open_dispute(http, "disp-2")
    assert opened["refund_amount"] == AMOUNT
    name = evidence(paystack, http, opened["id"])
    too_much = resolve(
        paystack, opened["id"], resolution="merchant-accepted", message="ok",
        refund_amount=AMOUNT + 1, uploaded_filename=name,
    )  # fmt: skip
    assert too_much.status_code == 400
    accepted = resolve(
        paystack, opened["id"], resolution="merchant-accepted", message="Merchant accepted",
        refund_amount=30_000, uploaded_filename=name,
    )  # fmt: skip
    assert accepted.json()["data"]["resolution"] == "merchant-accepted"
    [made] = paystack.get("/refund", params={"transaction": "disp-2"}).json()["data"]
    assert (made["amount"], made["dispute"], made["status"]) == (30_000, opened["id"], "pending")


def test_refusals(paystack: httpx.Client, http: httpx.Client) -> None:
    unpaid = paystack.post(
        "/transaction/initialize",
        json={"email": "ada@example.com", "amount": AMOUNT, "reference": "disp-unpaid"},
    )
    assert unpaid.status_code == 200
    assert http.post("/_sandbox/disputes", json={"transaction": "disp-unpaid"}).status_code == 400
    assert http.post("/_sandbox/disputes", json={"transaction": "nope"}).status_code == 404
    paid(paystack, http, "disp-3")
    over = http.post("/_sandbox/disputes", json={"transaction": "disp-3", "refund_amount": 10**9})
    assert over.status_code == 400
    assert paystack.get("/dispute/12").status_code == 404
    assert paystack.get("/dispute/transaction/disp-3").status_code == 404
    opened = open_dispute(http, "disp-3")
    bad = resolve(paystack, opened["id"], resolution="maybe", message="x", refund_amount=0)
    assert bad.status_code == 400
    assert httpx.get(f"{paystack.base_url}/dispute").status_code == 401
    assert (
        httpx.put(f"{http.base_url}/_sandbox/uploads/unknown.pdf", content=b"x").status_code == 404
    )
