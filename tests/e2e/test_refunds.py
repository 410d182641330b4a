"""Refunds end to end: through the API, the invoice's workflow, payrecon's Paystack client
and the sandbox over HTTP, with the sandbox's refunds moved by its control (or not at all,
when the test says so)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from google.protobuf.message import Message
from sqlmodel import Session, select
from temporalio.api.common.v1 import Payload

from db.models import RefundBankAccount
from paystack.client import PaystackClient
from sandbox.controls import SandboxControls
from temporal_codec import ENCODING, EncryptionCodec
from tests.helpers import (
    AMOUNT,
    api_client,
    check_history,
    create_invoice,
    eventually,
    history_events,
    pay,
    set_webhooks,
    wait_for_status,
)
from tests.stack import API_KEY, SECRET_KEY, Stack, another_api
from workflows.types import workflow_id_for


@pytest.fixture
async def paystack(stack: Stack) -> AsyncIterator[PaystackClient]:
    """Paystack's own API on the sandbox, as the merchant's dashboard would use it."""
    client = PaystackClient(stack.sandbox_url, SECRET_KEY)
    yield client
    await client.aclose()


async def paid_invoice(api: httpx.AsyncClient, sandbox: httpx.AsyncClient) -> dict[str, Any]:
    invoice = await create_invoice(api)
    await pay(sandbox, invoice["id"])
    return await wait_for_status(api, invoice["id"], "paid")


async def ask_refund(
    api: httpx.AsyncClient, invoice_id: str, key: str | None = None, **body: Any
) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return await api.post(f"/invoices/{invoice_id}/refunds", json=body, headers=headers)


async def wait_for_refund(
    api: httpx.AsyncClient, refund_id: str, status: str, within: float = 20.0
) -> dict[str, Any]:
    refund: dict[str, Any] = {}

    async def reached() -> None:
        response = await api.get(f"/refunds/{refund_id}")
        assert response.status_code == 200, response.text
        refund.update(response.json())
        assert refund["status"] == status, f"{refund_id} is {refund['status']}, not {status}"

    await eventually(reached, within)
    return refund


async def paystack_refunds(paystack: PaystackClient, transaction_id: int) -> list[Any]:
    return (await paystack.list_refunds(transaction=transaction_id)).records


async def settle_the_rest(
    sandbox: httpx.AsyncClient, paystack: PaystackClient, transaction_id: int
) -> None:
    """Processes every refund still moving, so the invoice's workflow stops checking."""
    for refund in await paystack_refunds(paystack, transaction_id):
        if refund.status in ("pending", "processing"):
            await SandboxControls(sandbox).settle_refund(refund.id, "processed")


async def test_a_full_refund_ends_refunded(
    stack: Stack, api: httpx.AsyncClient, sandbox: httpx.AsyncClient, paystack: PaystackClient
) -> None:
    invoice = await paid_invoice(api, sandbox)
    asked = await ask_refund(api, invoice["id"], reason="changed my mind")
    assert asked.status_code == 201, asked.text
    refund = asked.json()
    assert refund["amount"] == AMOUNT and refund["currency"] == "NGN"
    assert refund["status"] == "pending" and refund["paystack_refund_id"] is not None
    assert refund["initiated_by"] == "api:default" and refund["reason"] == "changed my mind"
    [made] = await paystack_refunds(paystack, invoice["paystack_transaction_id"])
    assert made.id == refund["paystack_refund_id"] and made.amount == AMOUNT
    assert refund["id"] in (made.merchant_note or "")

    await SandboxControls(sandbox).settle_refund(made.id, "processed")
    refunded = await wait_for_status(api, invoice["id"], "refunded")
    assert refunded["amount_refunded"] == AMOUNT
    assert (await api.get(f"/refunds/{refund['id']}")).json()["status"] == "processed"
    listed = (await api.get(f"/invoices/{invoice['id']}/refunds")).json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == refund["id"]
    # Nothing is left to refund.
    again = await ask_refund(api, invoice["id"])
    assert again.status_code == 409 and "no refundable money" in again.json()["detail"]
    timeline = (await api.get(f"/invoices/{invoice['id']}/events", params={"limit": 200})).json()
    kinds = [entry["kind"] for entry in timeline["items"]]
    assert "refund_updated" in kinds
    statuses = [e["detail"]["status"] for e in timeline["items"] if e["kind"] == "status_changed"]
    assert statuses == ["pending", "paid", "refunded"]
    await check_history(stack, invoice["id"], "refunded")


async def test_a_partial_refund_then_the_rest(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    invoice = await paid_invoice(api, sandbox)
    first = (await ask_refund(api, invoice["id"], amount=100_000)).json()
    await SandboxControls(sandbox).settle_refund(first["paystack_refund_id"], "processed")
    partly = await wait_for_status(api, invoice["id"], "partially_refunded")
    assert partly["amount_refunded"] == 100_000

    rest = await ask_refund(api, invoice["id"])
    assert rest.status_code == 201, rest.text
    assert rest.json()["amount"] == AMOUNT - 100_000
    await SandboxControls(sandbox).settle_refund(rest.json()["paystack_refund_id"], "processed")
    done = await wait_for_status(api, invoice["id"], "refunded")
    assert done["amount_refunded"] == AMOUNT


async def test_no_refund_exceeds_what_is_refundable(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, paystack: PaystackClient
) -> None:
    pending = await create_invoice(api)
    unpaid = await ask_refund(api, pending["id"])
    assert unpaid.status_code == 409 and "no refundable money" in unpaid.json()["detail"]

    invoice = await paid_invoice(api, sandbox)
    over = await ask_refund(api, invoice["id"], amount=AMOUNT + 1)
    assert over.status_code == 409
    assert over.json()["detail"] == f"amount {AMOUNT + 1} is more than the {AMOUNT} left to refund"
    assert (await ask_refund(api, invoice["id"], amount=200_000)).status_code == 201
    # The refund in flight holds its money: 50,000 is left.
    held = await ask_refund(api, invoice["id"], amount=100_000)
    assert held.status_code == 409 and "the 50000 left" in held.json()["detail"]
    # Five at once for 20,000 each: two fit.
    answers = await asyncio.gather(
        *(ask_refund(api, invoice["id"], amount=20_000) for _ in range(5))
    )
    assert sorted(a.status_code for a in answers) == [201, 201, 409, 409, 409]
    made = await paystack_refunds(paystack, invoice["paystack_transaction_id"])
    assert sum(r.amount for r in made) == 240_000
    await settle_the_rest(sandbox, paystack, invoice["paystack_transaction_id"])

    async def all_processed() -> None:
        partly = (await api.get(f"/invoices/{invoice['id']}")).json()
        assert partly["status"] == "partially_refunded"
        assert partly["amount_refunded"] == 240_000

    await eventually(all_processed, 20)


async def test_two_api_processes_at_once_never_refund_more_than_was_paid(
    stack: Stack, api: httpx.AsyncClient, sandbox: httpx.AsyncClient, paystack: PaystackClient
) -> None:
    invoice = await paid_invoice(api, sandbox)
    with another_api(stack, "api-refunds") as second:
        async with api_client(second.api_url, API_KEY) as other:
            # Ten requests for 60,000 each, half through each process: four fit in 250,000.
            answers = await asyncio.gather(
                *(ask_refund(client, invoice["id"], amount=60_000) for client in (api, other) * 5)
            )
    codes = sorted(answer.status_code for answer in answers)
    assert codes == [201] * 4 + [409] * 6, [a.text for a in answers]
    made = await paystack_refunds(paystack, invoice["paystack_transaction_id"])
    assert len(made) == 4 and sum(r.amount for r in made) == 240_000
    await settle_the_rest(sandbox, paystack, invoice["paystack_transaction_id"])

    async def all_processed() -> None:
        shown = (await api.get(f"/invoices/{invoice['id']}")).json()
        assert (shown["status"], shown["amount_refunded"]) == ("partially_refunded", 240_000)

    await eventually(all_processed, 20)


async def test_a_late_payment_is_refunded_and_keeps_its_review_reason(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    invoice = await create_invoice(api, due_in_seconds=1)
    await wait_for_status(api, invoice["id"], "expired")
    await pay(sandbox, invoice["id"])
    late = await wait_for_status(api, invoice["id"], "needs_review")
    assert late["review_reason"] == "paid_after_expiry"
    refund = await ask_refund(api, invoice["id"], reason="paid after the invoice expired")
    assert refund.status_code == 201, refund.text
    await SandboxControls(sandbox).settle_refund(refund.json()["paystack_refund_id"], "processed")
    refunded = await wait_for_status(api, invoice["id"], "refunded")
    assert refunded["review_reason"] == "paid_after_expiry"
    assert refunded["amount_refunded"] == AMOUNT


async def test_a_repeated_key_is_the_same_refund(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, paystack: PaystackClient
) -> None:
    invoice = await paid_invoice(api, sandbox)
    first = await ask_refund(api, invoice["id"], key="refund-1", amount=50_000)
    assert first.status_code == 201, first.text
    repeat = await ask_refund(api, invoice["id"], key="refund-1", amount=50_000)
    assert repeat.status_code == 200 and repeat.json()["id"] == first.json()["id"]
    other = await ask_refund(api, invoice["id"], key="refund-1", amount=60_000)
    assert other.status_code == 409 and "different request body" in other.json()["detail"]
    assert len(await paystack_refunds(paystack, invoice["paystack_transaction_id"])) == 1
    await settle_the_rest(sandbox, paystack, invoice["paystack_transaction_id"])
    await wait_for_status(api, invoice["id"], "partially_refunded")


async def test_a_failed_refund_gives_its_money_back_to_refund(
    stack: Stack, api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    invoice = await paid_invoice(api, sandbox)
    refund = (await ask_refund(api, invoice["id"])).json()
    await SandboxControls(sandbox).settle_refund(refund["paystack_refund_id"], "failed")
    await wait_for_refund(api, refund["id"], "failed")
    assert (await api.get(f"/invoices/{invoice['id']}")).json()["status"] == "paid"
    again = await ask_refund(api, invoice["id"])
    assert again.status_code == 201 and again.json()["amount"] == AMOUNT
    await SandboxControls(sandbox).settle_refund(again.json()["paystack_refund_id"], "processed")
    await wait_for_status(api, invoice["id"], "refunded")
    await check_history(stack, invoice["id"], "refund_failed_then_made_again")


async def test_a_refund_that_needs_attention_is_retried_with_the_account(
    stack: Stack, api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    invoice = await paid_invoice(api, sandbox)
    refund = (await ask_refund(api, invoice["id"])).json()
    not_yet = await api.post(
        f"/refunds/{refund['id']}/retry",
        json={"currency": "NGN", "account_number": "0123456789", "bank_id": "9"},
    )
    assert not_yet.status_code == 409 and "needs attention" in not_yet.json()["detail"]
    await SandboxControls(sandbox).settle_refund(refund["paystack_refund_id"], "needs-attention")
    await wait_for_refund(api, refund["id"], "needs_attention")
    metrics = (await api.get("/metrics")).text
    waiting = re.search(r'^payrecon_refunds\{status="needs_attention"\} (\S+)$', metrics, re.M)
    assert waiting is not None and float(waiting.group(1)) >= 1

    bad = await api.post(f"/refunds/{refund['id']}/retry", json={"currency": "NGN"})
    assert bad.status_code == 422
    retried = await api.post(
        f"/refunds/{refund['id']}/retry",
        json={"currency": "NGN", "account_number": "0123456789", "bank_id": "9"},
    )
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "processing"
    await SandboxControls(sandbox).settle_refund(refund["paystack_refund_id"], "processed")
    await wait_for_status(api, invoice["id"], "refunded")
    await check_history(stack, invoice["id"], "refund_retried_by_account_id")
    # The account never entered Temporal's history (decrypted, every payload of it), and
    # its sealed row is gone once Paystack answered.
    codec = EncryptionCodec(stack.settings.codec_keys)
    payloads = [p for event in await history_events(stack, invoice["id"]) for p in _payloads(event)]
    opened = [codec.decrypt(p) if p.metadata.get("encoding") == ENCODING else p for p in payloads]
    assert len(opened) > 10
    assert not [p for p in opened if b"0123456789" in p.SerializeToString()]
    with Session(stack.engine) as session:
        assert session.exec(select(RefundBankAccount)).all() == []


async def test_with_no_webhooks_the_polls_find_the_outcome(
    stack: Stack, api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    invoice = await paid_invoice(api, sandbox)
    await set_webhooks(sandbox, False)
    refund = (await ask_refund(api, invoice["id"])).json()
    await SandboxControls(sandbox).settle_refund(refund["paystack_refund_id"], "processed")
    await wait_for_status(api, invoice["id"], "refunded")
    await check_history(stack, invoice["id"], "refund_found_by_polling")


async def test_a_lost_answer_makes_one_refund_not_two(
    stack: Stack, api: httpx.AsyncClient, sandbox: httpx.AsyncClient, paystack: PaystackClient
) -> None:
    invoice = await paid_invoice(api, sandbox)
    controls = SandboxControls(sandbox)
    await controls.set_faults(
        api={
            "refund": {
                "error_rate": {"count": 1},
                "error_statuses": [503],
                "after_commit": 1.0,
                # payrecon names the transaction by its id.
                "only_references": [str(invoice["paystack_transaction_id"])],
            }
        }
    )
    try:
        asked = await ask_refund(api, invoice["id"])
    finally:
        await controls.clear_faults()
    assert asked.status_code in (201, 202), asked.text
    refund = await wait_for_refund(api, asked.json()["id"], "pending")
    [made] = await paystack_refunds(paystack, invoice["paystack_transaction_id"])
    assert made.id == refund["paystack_refund_id"]
    assert (await controls.stats())["faults"]["refund_after_commit"] >= 1
    await controls.settle_refund(made.id, "processed")
    await wait_for_status(api, invoice["id"], "refunded")
    await check_history(stack, invoice["id"], "refund_answer_lost")


async def test_a_refund_made_on_paystacks_dashboard_is_learned_from_its_webhook(
    stack: Stack, api: httpx.AsyncClient, sandbox: httpx.AsyncClient, paystack: PaystackClient
) -> None:
    invoice = await paid_invoice(api, sandbox)
    # The paid invoice's run has completed: the refund's webhook wakes a new one.
    await stack.temporal.get_workflow_handle(workflow_id_for(invoice["id"])).result()
    made = await paystack.create_refund(
        transaction=invoice["paystack_transaction_id"],
        amount=70_000,
        merchant_note="refunded by hand",
    )

    async def learned() -> None:
        listed = (await api.get(f"/invoices/{invoice['id']}/refunds")).json()
        assert [r["paystack_refund_id"] for r in listed["items"]] == [made.id]
        assert listed["items"][0]["initiated_by"] == "paystack_dashboard"
        assert listed["items"][0]["amount"] == 70_000

    await eventually(learned, 20)
    await SandboxControls(sandbox).settle_refund(made.id, "processed")
    partly = await wait_for_status(api, invoice["id"], "partially_refunded")
    assert partly["amount_refunded"] == 70_000
    left = await ask_refund(api, invoice["id"], amount=AMOUNT - 70_000 + 1)
    assert left.status_code == 409
    await check_history(stack, invoice["id"], "refund_from_dashboard")


async def test_refund_input_is_checked(api: httpx.AsyncClient, shop: httpx.AsyncClient) -> None:
    invoice = await create_invoice(api)
    for body in ({"amount": 0}, {"amount": "100"}, {"amount": 1.5}, {"colour": "red"}):
        answer = await ask_refund(api, invoice["id"], **body)
        assert answer.status_code == 422, body
    assert (await ask_refund(api, "inv-nope")).status_code == 404
    # Another caller's invoice is as unknown as none.
    assert (await ask_refund(shop, invoice["id"])).status_code == 404
    assert (await api.get("/refunds/nope")).status_code == 422
    assert (await api.get("/refunds/rf_000000000000000000000000")).status_code == 404
    broken = await api.post(
        f"/invoices/{invoice['id']}/refunds",
        content=b"{",
        headers={"Content-Type": "application/json"},
    )
    assert broken.status_code == 400


def _payloads(message: Message) -> list[Payload]:
    """Every payload anywhere in a history event (inputs, results, headers, memos…)."""
    if isinstance(message, Payload):
        return [message]
    found: list[Payload] = []
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            items = [item for item in value.values() if isinstance(item, Message)]
        elif isinstance(value, Message):
            items = [value]
        else:  # a repeated field
            items = list(value)
        for item in items:
            found += _payloads(item)
    return found
