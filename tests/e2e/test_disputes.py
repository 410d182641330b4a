"""Disputes end to end: opened and reminded by the sandbox (with its signed webhooks),
learned by the invoice's workflow from Paystack's `GET /dispute/{id}`, answered through the
API, and flagged when left open past their due date."""

from __future__ import annotations

import re
from typing import Any

import httpx

from sandbox.controls import SandboxControls
from tests.helpers import (
    AMOUNT,
    check_history,
    create_invoice,
    eventually,
    pay,
    wait_for_status,
)
from tests.stack import Stack
from workflows.types import workflow_id_for


async def paid_invoice(api: httpx.AsyncClient, sandbox: httpx.AsyncClient) -> dict[str, Any]:
    invoice = await create_invoice(api)
    await pay(sandbox, invoice["id"])
    return await wait_for_status(api, invoice["id"], "paid")


async def upload_evidence(api: httpx.AsyncClient, dispute_id: int) -> str:
    """Asks for an upload URL, PUTs a file there; the name to resolve with."""
    url = await api.get(f"/disputes/{dispute_id}/upload-url", params={"filename": "proof.pdf"})
    assert url.status_code == 200, url.text
    async with httpx.AsyncClient() as storage:
        uploaded = await storage.put(url.json()["signed_url"], content=b"%PDF-1.4 proof")
    assert uploaded.status_code == 200, uploaded.text
    name: str = url.json()["file_name"]
    return name


async def wait_for_dispute(
    api: httpx.AsyncClient, invoice_id: str, within: float = 20.0, **expected: Any
) -> dict[str, Any]:
    dispute: dict[str, Any] = {}

    async def shown() -> None:
        invoice = (await api.get(f"/invoices/{invoice_id}")).json()
        assert len(invoice["disputes"]) == 1, invoice["disputes"]
        dispute.update(invoice["disputes"][0])
        assert {name: dispute[name] for name in expected} == expected

    await eventually(shown, within)
    return dispute


async def test_a_dispute_is_opened_reminded_and_declined(
    stack: Stack, api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    invoice = await paid_invoice(api, sandbox)
    # The paid invoice's run has completed: the dispute's webhook wakes a new one.
    await stack.temporal.get_workflow_handle(workflow_id_for(invoice["id"])).result()
    opened = await SandboxControls(sandbox).open_dispute(invoice["id"], category="fraud")
    dispute = await wait_for_dispute(api, invoice["id"], status="awaiting_merchant_feedback")
    assert dispute["id"] == opened["id"] and dispute["category"] == "fraud"
    assert dispute["refund_amount"] == AMOUNT and dispute["overdue"] is False
    assert dispute["due_at"] is not None and dispute["reason"]

    reminded = await sandbox.post(f"/_sandbox/disputes/{opened['id']}/remind")
    assert reminded.status_code == 200, reminded.text
    evidence = await upload_evidence(api, opened["id"])

    declined = await api.post(
        f"/disputes/{opened['id']}/resolve",
        json={
            "resolution": "declined",
            "message": "Delivered; signed receipt attached",
            "refund_amount": 0,
            "uploaded_filename": evidence,
        },
    )
    assert declined.status_code == 200, declined.text
    assert declined.json()["status"] == "resolved"
    assert declined.json()["resolution"] == "declined"
    await wait_for_dispute(api, invoice["id"], status="resolved", resolution="declined")
    again = await api.post(
        f"/disputes/{opened['id']}/resolve",
        json={
            "resolution": "declined",
            "message": "again",
            "refund_amount": 0,
            "uploaded_filename": evidence,
        },
    )
    assert again.status_code == 409 and "only an open dispute" in again.json()["detail"]
    # Declined: the payment stands.
    assert (await api.get(f"/invoices/{invoice['id']}")).json()["status"] == "paid"
    timeline = (await api.get(f"/invoices/{invoice['id']}/events", params={"limit": 200})).json()
    assert "dispute_updated" in [entry["kind"] for entry in timeline["items"]]
    await check_history(stack, invoice["id"], "dispute_declined")


async def test_an_accepted_dispute_refunds_the_payment(
    stack: Stack, api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    invoice = await paid_invoice(api, sandbox)
    opened = await SandboxControls(sandbox).open_dispute(invoice["paystack_transaction_id"])
    await wait_for_dispute(api, invoice["id"], status="awaiting_merchant_feedback")
    evidence = await upload_evidence(api, opened["id"])
    accepted = await api.post(
        f"/disputes/{opened['id']}/resolve",
        json={
            "resolution": "merchant_accepted",
            "message": "Refund the customer",
            "refund_amount": AMOUNT,
            "uploaded_filename": evidence,
        },
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["resolution"] == "merchant_accepted"

    async def refunded_for_the_dispute() -> None:
        refunds = (await api.get(f"/invoices/{invoice['id']}/refunds")).json()["items"]
        assert [(r["initiated_by"], r["amount"]) for r in refunds] == [("dispute", AMOUNT)]

    await eventually(refunded_for_the_dispute, 20)
    [refund] = (await api.get(f"/invoices/{invoice['id']}/refunds")).json()["items"]
    await SandboxControls(sandbox).settle_refund(refund["paystack_refund_id"], "processed")
    done = await wait_for_status(api, invoice["id"], "refunded")
    assert done["disputes"][0]["status"] == "resolved"
    await check_history(stack, invoice["id"], "dispute_accepted_and_refunded")


async def test_a_dispute_open_past_its_due_date_is_flagged(
    stack: Stack, api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    invoice = await paid_invoice(api, sandbox)
    await SandboxControls(sandbox).open_dispute(invoice["id"], due_in_seconds=2)
    await wait_for_dispute(api, invoice["id"], overdue=True)
    # The Temporal UI finds it: DisputeState = "overdue".
    handle = stack.temporal.get_workflow_handle(workflow_id_for(invoice["id"]))

    async def searchable() -> None:
        described = await handle.describe()
        assert described.search_attributes.get("DisputeState") == ["overdue"]

    await eventually(searchable, 10)
    # And the metric operators alert on counts it.
    metrics = (await api.get("/metrics")).text
    overdue = re.search(r'^payrecon_disputes_open\{state="overdue"\} (\S+)$', metrics, re.M)
    assert overdue is not None and float(overdue.group(1)) >= 1
    await check_history(stack, invoice["id"], "dispute_overdue")


async def test_dispute_input_is_checked(
    api: httpx.AsyncClient, shop: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    invoice = await paid_invoice(api, sandbox)
    opened = await SandboxControls(sandbox).open_dispute(invoice["id"])
    await wait_for_dispute(api, invoice["id"], status="awaiting_merchant_feedback")
    resolve = f"/disputes/{opened['id']}/resolve"
    good = {
        "resolution": "declined",
        "message": "no",
        "refund_amount": 0,
        "uploaded_filename": "a.pdf",
    }
    for bad in (
        {**good, "resolution": "maybe"},
        {**good, "refund_amount": -1},
        {**good, "refund_amount": "0"},
        {**good, "uploaded_filename": "../etc/passwd"},
        {**good, "colour": "red"},
    ):
        assert (await api.post(resolve, json=bad)).status_code == 422, bad
    assert (await api.post("/disputes/0/resolve", json=good)).status_code == 422
    assert (await api.post("/disputes/99999999/resolve", json=good)).status_code == 404
    # Another caller's dispute is as unknown as none.
    assert (await shop.post(resolve, json=good)).status_code == 404
    url = f"/disputes/{opened['id']}/upload-url"
    assert (await api.get(url)).status_code == 422
    assert (await api.get(url, params={"filename": "a b.pdf"})).status_code == 422
    # Still open, and unchanged by any of it.
    shown = (await api.get(f"/invoices/{invoice['id']}")).json()["disputes"][0]
    assert shown["status"] == "awaiting_merchant_feedback" and shown["resolution"] is None
