"""With Paystack down, a create is refused within the API's wait with the real cause, its
workflow ends with a short history and no invoice row, and the caller's retry with the
same Idempotency-Key starts clean once Paystack is back."""

from __future__ import annotations

import asyncio

import httpx
from temporalio.client import WorkflowExecutionStatus

from api.routers.invoices import invoice_id_for
from db import queries
from devstack.processes import wait_for_http
from devstack.stack import Stack as Processes
from domain.invoice import DEFAULT_CALLER
from tests.helpers import INVOICE, keep_history
from tests.stack import Stack
from workflows.types import workflow_id_for


async def test_a_create_while_paystack_is_down_is_refused_and_retried_clean(
    processes: Processes, stack: Stack, api: httpx.AsyncClient
) -> None:
    key = "order-paystack-down"
    invoice_id = invoice_id_for(DEFAULT_CALLER, key, stack.settings.codec_keys)
    processes.services["sandbox"].stop()
    try:
        refused = await api.post("/invoices", json=INVOICE, headers={"Idempotency-Key": key})
    finally:
        processes.start("sandbox")
        await asyncio.to_thread(wait_for_http, f"{processes.sandbox_url}/_sandbox/healthz")

    assert refused.status_code == 503, refused.text
    assert refused.json()["detail"] == (
        "Paystack is unavailable (Paystack unreachable: ConnectError); "
        "retry with the same Idempotency-Key"
    )
    handle = stack.temporal.get_workflow_handle(workflow_id_for(invoice_id))
    assert (await handle.describe()).status == WorkflowExecutionStatus.FAILED
    history = await handle.fetch_history()
    # Seven attempts of initialize in one local activity, not a workflow task every 8 s.
    assert len(history.events) < 40
    await keep_history(history, "paystack_down")
    assert queries.get_invoice(stack.engine, invoice_id) is None

    retried = await api.post("/invoices", json=INVOICE, headers={"Idempotency-Key": key})
    assert retried.status_code == 201, retried.text
    assert retried.json()["id"] == invoice_id and retried.json()["authorization_url"]
