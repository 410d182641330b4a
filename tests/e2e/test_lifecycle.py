"""The invoice lifecycle end to end: API -> Temporal -> worker -> sandbox, over real HTTP."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

import httpx

from api.routers.invoices import invoice_id_for
from db.models import WebhookDelivery
from db.projection import load_snapshot
from domain.invoice import DEFAULT_CALLER, InvoiceStatus, ReviewReason
from sandbox.controls import SandboxControls
from tests.helpers import (
    INVOICE,
    charge_success,
    check_history,
    create_invoice,
    deliveries,
    delivery_count,
    eventually,
    history_events,
    pay,
    post_webhook,
    provider_calls,
    set_webhooks,
    status_changes,
    verify_hangs,
    wait_for_status,
)
from tests.stack import SECRET_KEY, Stack, another_api
from workflows.invoice import InvoiceWorkflow
from workflows.policies import NOTICE_VERIFY_INTERVAL
from workflows.starter import reach_invoice
from workflows.types import workflow_id_for


async def test_paid_by_webhook(
    stack: Stack, api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    invoice = await create_invoice(api, description="Order 1042", metadata={"order": "1042"})
    assert invoice["status"] == "pending"
    assert invoice["authorization_url"].startswith(f"{stack.sandbox_url}/checkout/")
    assert invoice["description"] == "Order 1042"

    await pay(sandbox, invoice["id"])
    paid = await wait_for_status(api, invoice["id"], "paid", within=1.5)

    assert paid["amount_paid"] == INVOICE["amount"]
    assert paid["paystack_transaction_id"] is not None
    assert paid["paid_at"] is not None
    # The first poll is 2 s away: the webhook's verify found it. Initialize + one verify.
    assert await provider_calls(sandbox, invoice["id"]) == {"initialize": 1, "verify": 1}
    await eventually(lambda: _assert_outcomes(deliveries(stack, invoice["id"]), ["signalled"]))
    assert status_changes(stack, invoice["id"]) == ["pending", "paid"]
    await check_history(stack, invoice["id"], "paid_by_webhook")


async def test_paid_by_polling_with_webhooks_off(
    stack: Stack, api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    await set_webhooks(sandbox, False)
    invoice = await create_invoice(api)
    await pay(sandbox, invoice["id"])

    await wait_for_status(api, invoice["id"], "paid", within=10)
    assert deliveries(stack, invoice["id"]) == []
    calls = await provider_calls(sandbox, invoice["id"])
    assert calls["initialize"] == 1
    assert 1 <= calls["verify"] <= 2
    await check_history(stack, invoice["id"], "paid_by_polling")


async def test_same_webhook_five_times_gives_one_transition(
    stack: Stack, api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    await set_webhooks(sandbox, False)
    invoice = await create_invoice(api)
    await pay(sandbox, invoice["id"])
    await set_webhooks(sandbox, True)

    await SandboxControls(sandbox).resend_webhook(invoice["id"], copies=5)
    await wait_for_status(api, invoice["id"], "paid")
    # Byte-identical copies: one stored row, the other four counted on it.
    await eventually(lambda: _assert_repeats(deliveries(stack, invoice["id"]), [4]))

    assert status_changes(stack, invoice["id"]) == ["pending", "paid"]
    await eventually(lambda: _assert_relayed(deliveries(stack, invoice["id"])))
    # Five deliveries of one payment event cost one verify (a poll may add one more).
    assert (await provider_calls(sandbox, invoice["id"]))["verify"] <= 2
    await check_history(stack, invoice["id"], "duplicate_webhooks")


def _assert_len(items: Sequence[object], expected: int) -> None:
    assert len(items) == expected, items


async def test_signed_charge_success_for_unpaid_invoice_leaves_it_pending(
    stack: Stack, api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    invoice = await create_invoice(api, due_in_seconds=600)

    response = await post_webhook(stack, charge_success(invoice["id"]))
    assert response.status_code == 200
    assert response.json() == {"outcome": "queued"}
    await eventually(lambda: _assert_outcomes(deliveries(stack, invoice["id"]), ["signalled"]))

    async def verified() -> None:
        assert (await provider_calls(sandbox, invoice["id"]))["verify"] >= 1

    await eventually(verified)
    current = (await api.get(f"/invoices/{invoice['id']}")).json()
    assert current["status"] == "pending"
    assert status_changes(stack, invoice["id"]) == ["pending"]

    # The real payment still counts afterwards.
    await pay(sandbox, invoice["id"])
    await wait_for_status(api, invoice["id"], "paid")
    await check_history(stack, invoice["id"], "webhook_before_payment")


async def test_bad_signature_and_malformed_body_change_nothing(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    invoice = await create_invoice(api, due_in_seconds=600)
    before = delivery_count(stack)
    event = charge_success(invoice["id"])

    wrong = await post_webhook(stack, event, signature="0" * 128)
    missing = await post_webhook(stack, event, signature="")
    malformed = await post_webhook(stack, b'{"event": "charge.success", "data": ')
    not_an_object = await post_webhook(stack, b"[1, 2, 3]")

    assert wrong.status_code == 401 and "signature" in wrong.json()["detail"]
    assert missing.status_code == 401
    assert malformed.status_code == 400 and "JSON" in malformed.json()["detail"]
    assert not_an_object.status_code == 400
    assert delivery_count(stack) == before
    current = (await api.get(f"/invoices/{invoice['id']}")).json()
    assert current["status"] == "pending"


async def test_unknown_reference_is_recorded_and_answered_200(stack: Stack) -> None:
    reference = f"inv-{uuid.uuid4().hex[:24]}"
    response = await post_webhook(stack, charge_success(reference))

    assert response.status_code == 200
    assert response.json() == {"outcome": "unknown_reference"}
    [delivery] = deliveries(stack, reference)
    assert delivery.outcome == "unknown_reference"
    assert delivery.event == "charge.success"
    assert reference in delivery.redacted_body


async def test_events_we_do_not_act_on_are_recorded(stack: Stack) -> None:
    reference = f"trf-{uuid.uuid4().hex[:12]}"
    event = {
        "event": "transfer.success",
        "data": {"reference": reference, "amount": 5000, "status": "success"},
    }
    response = await post_webhook(stack, event)

    assert response.status_code == 200
    assert response.json() == {"outcome": "ignored"}
    [delivery] = deliveries(stack, reference)
    assert delivery.event == "transfer.success"


async def test_amount_mismatch_needs_review(
    stack: Stack, api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    invoice = await create_invoice(api)
    await pay(sandbox, invoice["id"], amount=INVOICE["amount"] - 10000)

    review = await wait_for_status(api, invoice["id"], "needs_review")
    assert review["review_reason"] == "amount_mismatch"
    assert review["amount_paid"] == INVOICE["amount"] - 10000
    await check_history(stack, invoice["id"], "amount_mismatch")


async def test_currency_mismatch_needs_review(
    stack: Stack, api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    invoice = await create_invoice(api)
    await pay(sandbox, invoice["id"], currency="USD")

    review = await wait_for_status(api, invoice["id"], "needs_review")
    assert review["review_reason"] == "currency_mismatch"
    await check_history(stack, invoice["id"], "currency_mismatch")


async def test_expires_after_a_last_verify(
    stack: Stack, api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    invoice = await create_invoice(api, due_in_seconds=1)

    expired = await wait_for_status(api, invoice["id"], "expired", within=10)
    assert expired["paid_at"] is None
    assert (await provider_calls(sandbox, invoice["id"]))["verify"] >= 1
    assert status_changes(stack, invoice["id"]) == ["pending", "expired"]
    await check_history(stack, invoice["id"], "expired")


async def test_paid_just_before_the_due_date_is_paid_not_expired(
    stack: Stack, api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    await set_webhooks(sandbox, False)
    invoice = await create_invoice(api, due_in_seconds=1)
    await pay(sandbox, invoice["id"])

    await wait_for_status(api, invoice["id"], "paid", within=10)
    assert status_changes(stack, invoice["id"]) == ["pending", "paid"]
    await check_history(stack, invoice["id"], "paid_at_due_date")


async def test_payment_after_expiry_is_flagged_not_lost(
    stack: Stack, api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    invoice = await create_invoice(api, due_in_seconds=1)
    await wait_for_status(api, invoice["id"], "expired", within=10)

    await pay(sandbox, invoice["id"])

    review = await wait_for_status(api, invoice["id"], "needs_review")
    assert review["review_reason"] == "paid_after_expiry"
    await check_history(stack, invoice["id"], "paid_after_expiry")
    assert status_changes(stack, invoice["id"]) == ["pending", "expired", "needs_review"]


async def test_a_completed_invoice_is_reached_again_through_its_record(
    stack: Stack, api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    await set_webhooks(sandbox, False)
    invoice = await create_invoice(api, due_in_seconds=1)
    handle = stack.temporal.get_workflow_handle_for(
        InvoiceWorkflow.run, workflow_id_for(invoice["id"])
    )
    async with asyncio.timeout(20):  # expired, then the 4 s late-payment window
        expired = await handle.result()
    assert expired.status is InvoiceStatus.EXPIRED
    await pay(sandbox, invoice["id"])  # after the window: no run is watching

    recorded = load_snapshot(stack.engine, invoice["id"])
    assert recorded == expired
    woken = await reach_invoice(stack.temporal, stack.settings, recorded, InvoiceWorkflow.reverify)

    assert woken.status is InvoiceStatus.NEEDS_REVIEW
    assert woken.review_reason is ReviewReason.PAID_AFTER_EXPIRY
    shown = (await api.get(f"/invoices/{invoice['id']}")).json()
    assert shown["status"] == "needs_review" and shown["revision"] == expired.revision + 1
    assert status_changes(stack, invoice["id"]) == ["pending", "expired", "needs_review"]
    await check_history(stack, invoice["id"], "woken_after_completion")


async def test_cancel_answers_202_once_accepted_while_paystack_is_slow(
    stack: Stack, api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    invoice = await create_invoice(api, due_in_seconds=600)
    async with verify_hangs(sandbox, invoice["id"], times=1):
        with another_api(stack, "api-short-wait", PAYRECON_CREATE_TIMEOUT_SECONDS="2") as short:
            async with httpx.AsyncClient(
                base_url=short.api_url, headers=api.headers, timeout=30
            ) as client:
                response = await client.post(f"/invoices/{invoice['id']}/cancel")
        # The workflow has the cancel; its last verify waits out Paystack's silence.
        assert response.status_code == 202, response.text
        assert response.json()["status"] == "pending"
        await wait_for_status(api, invoice["id"], "cancelled", within=30)


async def test_cancel_unpaid_invoice(
    stack: Stack, api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    invoice = await create_invoice(api, due_in_seconds=600)

    response = await api.post(f"/invoices/{invoice['id']}/cancel")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    assert (await api.get(f"/invoices/{invoice['id']}")).json()["status"] == "cancelled"
    assert (await provider_calls(sandbox, invoice["id"]))["verify"] >= 1

    again = await api.post(f"/invoices/{invoice['id']}/cancel")
    assert again.status_code == 409
    assert "cancelled" in again.json()["detail"]

    # Paid after the cancel: flagged for review, never lost.
    await pay(sandbox, invoice["id"])
    review = await wait_for_status(api, invoice["id"], "needs_review")
    assert review["review_reason"] == "paid_after_cancel"
    await check_history(stack, invoice["id"], "cancelled_then_paid")
    assert status_changes(stack, invoice["id"]) == ["pending", "cancelled", "needs_review"]


async def test_cancel_answers_the_paid_invoice_when_paystack_says_paid(
    stack: Stack, api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    await set_webhooks(sandbox, False)
    invoice = await create_invoice(api, due_in_seconds=600)
    await pay(sandbox, invoice["id"])

    response = await api.post(f"/invoices/{invoice['id']}/cancel")

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "paid"
    await check_history(stack, invoice["id"], "cancel_finds_paid")


async def test_cancel_unknown_invoice_is_404(api: httpx.AsyncClient) -> None:
    response = await api.post("/invoices/inv-000000000000000000000000/cancel")
    assert response.status_code == 404


async def test_idempotent_create_initializes_one_transaction(
    stack: Stack, api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    key = f"order-{uuid.uuid4()}"
    body = {**INVOICE, "description": "Order 7"}
    headers = {"Idempotency-Key": key}

    responses = await asyncio.gather(
        *[api.post("/invoices", json=body, headers=headers) for _ in range(5)]
    )
    statuses = sorted(response.status_code for response in responses)
    ids = {response.json()["id"] for response in responses}
    links = {response.json()["authorization_url"] for response in responses}
    assert statuses == [200, 200, 200, 200, 201]
    assert len(ids) == 1 and len(links) == 1
    [invoice_id] = ids

    again = await api.post("/invoices", json=body, headers=headers)
    assert again.status_code == 200 and again.json()["id"] == invoice_id

    different = await api.post("/invoices", json={**body, "amount": 999900}, headers=headers)
    assert different.status_code == 409
    assert "different request body" in different.json()["detail"]

    assert (await provider_calls(sandbox, invoice_id))["initialize"] == 1
    listed = await sandbox.get(
        "/transaction",
        params={"reference": invoice_id},
        headers={"Authorization": f"Bearer {SECRET_KEY}"},
    )
    assert listed.json()["meta"]["total"] == 1
    await check_history(stack, invoice_id, "idempotent_create", wait_for_completion=False)


async def test_idempotent_create_after_the_invoice_completed(
    stack: Stack, api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    key = f"order-{uuid.uuid4()}"
    headers = {"Idempotency-Key": key}
    invoice = await create_invoice(api, idempotency_key=key)
    await pay(sandbox, invoice["id"])
    await wait_for_status(api, invoice["id"], "paid")
    await stack.temporal.get_workflow_handle(f"invoice-{invoice['id']}").result()

    again = await api.post("/invoices", json=INVOICE, headers=headers)
    assert again.status_code == 200, again.text
    assert again.json()["id"] == invoice["id"] and again.json()["status"] == "paid"
    different = await api.post("/invoices", json={**INVOICE, "amount": 7000}, headers=headers)
    assert different.status_code == 409
    assert (await provider_calls(sandbox, invoice["id"]))["initialize"] == 1


async def test_reference_taken_at_paystack_moves_to_a_replacement_reference(
    stack: Stack, api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    key = f"order-{uuid.uuid4()}"
    taken = invoice_id_for(DEFAULT_CALLER, key, stack.settings.codec_keys)
    # Paystack already holds the invoice's reference, as when initialize's answer was lost.
    response = await sandbox.post(
        "/transaction/initialize",
        json={"email": "ada@example.com", "amount": 250000, "reference": taken},
        headers={"Authorization": f"Bearer {SECRET_KEY}"},
    )
    assert response.status_code == 200, response.text

    invoice = await create_invoice(api, idempotency_key=key)
    assert invoice["id"] == taken
    assert invoice["paystack_reference"] == f"{taken}.2"
    assert invoice["authorization_url"] != response.json()["data"]["authorization_url"]

    await pay(sandbox, f"{taken}.2")
    paid = await wait_for_status(api, taken, "paid", within=1.5)
    assert paid["paystack_reference"] == f"{taken}.2"
    await eventually(lambda: _assert_outcomes(deliveries(stack, f"{taken}.2"), ["signalled"]))
    await check_history(stack, taken, "replacement_reference")


async def test_long_history_continues_as_new_and_notices_are_throttled_not_capped(
    stack: Stack, api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    invoice = await create_invoice(api, due_in_seconds=600)
    handle = stack.temporal.get_workflow_handle(f"invoice-{invoice['id']}")
    first_run = (await handle.describe()).run_id

    def notice(n: int) -> dict[str, Any]:
        return charge_success(invoice["id"], paid_at=f"2026-11-23T09:{n // 60:02d}:{n % 60:02d}Z")

    # A flood of distinct signed notices for an unpaid invoice: one verify answers each
    # burst, at most one every NOTICE_VERIFY_INTERVAL.
    before = (await provider_calls(sandbox, invoice["id"]))["verify"]
    for n in range(25):
        assert (await post_webhook(stack, notice(n))).status_code == 200
    await asyncio.sleep(NOTICE_VERIFY_INTERVAL.total_seconds() * 1.5)
    flood = (await provider_calls(sandbox, invoice["id"]))["verify"] - before
    assert 1 <= flood <= 3

    # Each later notice is still acted on (no cap), until the history is handed on.
    for n in range(25, 85):
        if (await handle.describe()).run_id != first_run:
            break
        verifies = (await provider_calls(sandbox, invoice["id"]))["verify"]
        assert (await post_webhook(stack, notice(n))).status_code == 200
        await eventually(lambda v=verifies: _assert_more_verifies(sandbox, invoice["id"], v))
    assert (await handle.describe()).run_id != first_run
    assert status_changes(stack, invoice["id"]) == ["pending"]

    # The payment's own webhook, after all those, is acted on at once.
    await pay(sandbox, invoice["id"])
    await wait_for_status(api, invoice["id"], "paid", within=NOTICE_VERIFY_INTERVAL.seconds + 2)
    assert status_changes(stack, invoice["id"]) == ["pending", "paid"]
    await check_history(stack, invoice["id"], "continued_as_new")
    await check_history(stack, invoice["id"], "continue_as_new_handoff", run_id=first_run)


async def _assert_more_verifies(sandbox: httpx.AsyncClient, reference: str, than: int) -> None:
    assert (await provider_calls(sandbox, reference))["verify"] > than


async def test_notice_verify_moves_to_the_queue_when_paystack_hangs(
    stack: Stack, api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    invoice = await create_invoice(api, due_in_seconds=600)
    async with verify_hangs(sandbox, invoice["id"], times=2):
        await pay(sandbox, invoice["id"])
        # Both local attempts hang until the client's 10 s timeout; the queued verify answers.
        await wait_for_status(api, invoice["id"], "paid", within=45)

    assert (await provider_calls(sandbox, invoice["id"]))["verify"] == 3
    queued = [
        event.activity_task_scheduled_event_attributes
        for event in await history_events(stack, invoice["id"])
        if event.HasField("activity_task_scheduled_event_attributes")
    ]
    # One verify went to the capped queue; the others are the records of created and paid.
    assert [(a.activity_type.name, a.task_queue.name) for a in queued] == [
        ("record_invoice", stack.settings.temporal_task_queue),
        ("verify_transaction", stack.settings.temporal_paystack_task_queue),
        ("record_invoice", stack.settings.temporal_task_queue),
    ]
    await check_history(stack, invoice["id"], "notice_verify_moved_to_queue")


async def test_worker_down_while_webhook_arrives_then_paid_after_restart(
    stack: Stack, api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    invoice = await create_invoice(api, due_in_seconds=600)
    await stack.worker.stop()
    try:
        await pay(sandbox, invoice["id"])
        await eventually(lambda: _assert_outcomes(deliveries(stack, invoice["id"]), ["signalled"]))
        await asyncio.sleep(0.5)
        current = (await api.get(f"/invoices/{invoice['id']}")).json()
        assert current["status"] == "pending"
    finally:
        await stack.worker.start()

    await wait_for_status(api, invoice["id"], "paid")
    assert status_changes(stack, invoice["id"]) == ["pending", "paid"]
    await check_history(stack, invoice["id"], "worker_restart")


def _assert_outcomes(items: list[WebhookDelivery], expected: list[str]) -> None:
    assert [item.outcome for item in items] == expected


def _assert_repeats(items: list[WebhookDelivery], expected: list[int]) -> None:
    assert [item.repeats for item in items] == expected


def _assert_relayed(items: list[WebhookDelivery]) -> None:
    outcomes = [item.outcome for item in items]
    assert "signalled" in outcomes, outcomes
    assert set(outcomes) <= {"signalled", "workflow_closed"}, outcomes
