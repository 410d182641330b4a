"""The operator CLI against the test stack: a real process, real database and Temporal."""

from __future__ import annotations

import asyncio
import sys
import uuid

import httpx
from google.protobuf.duration_pb2 import Duration
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest

from devstack.processes import free_port
from tests.helpers import (
    charge_success,
    create_invoice,
    deliveries,
    eventually,
    pay,
    post_webhook,
    provider_calls,
    wait_for_status,
)
from tests.stack import Stack
from workflows.invoice import InvoiceWorkflow


async def payrecon(stack: Stack, *args: str, **env: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli.main",
        *args,
        env={**stack.env, "COLUMNS": "200", **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output = (await process.communicate())[0].decode()
    assert process.returncode is not None
    return process.returncode, output


async def test_list_and_show_a_paid_invoice(
    stack: Stack, api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    invoice = await create_invoice(api, customer_email="cli@example.com")
    await pay(sandbox, invoice["id"])
    await wait_for_status(api, invoice["id"], "paid")

    code, listed = await payrecon(stack, "invoices", "list", "--status", "paid")
    assert code == 0, listed
    assert invoice["id"] in listed and "cli@example.com" in listed

    code, shown = await payrecon(stack, "invoices", "show", invoice["id"])
    assert code == 0, shown
    assert "state history" in shown and "pending" in shown and "paid" in shown
    assert "charge.success" in shown and "signalled" in shown
    assert f"invoice-{invoice['id']}" in shown

    code, missing = await payrecon(stack, "invoices", "show", "inv-000000000000000000000000")
    assert code == 1 and "no invoice" in missing


async def test_reverify_asks_paystack_now(
    stack: Stack, api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    invoice = await create_invoice(api, due_in_seconds=600)
    before = (await provider_calls(sandbox, invoice["id"]))["verify"]

    code, output = await payrecon(stack, "invoices", "reverify", invoice["id"])
    assert code == 0, output
    assert f"{invoice['id']}: verified; pending, revision 1" in output
    # Paystack was asked by the update itself (a poll may also have come due meanwhile).
    assert (await provider_calls(sandbox, invoice["id"]))["verify"] >= before + 1
    handle = stack.temporal.get_workflow_handle(f"invoice-{invoice['id']}")
    during_update: list[str] = []
    updating = False
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            name = event.workflow_execution_update_accepted_event_attributes.accepted_request
            updating = name.input.name == "reverify"
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
            updating = False
        elif updating and event.HasField("activity_task_scheduled_event_attributes"):
            scheduled = event.activity_task_scheduled_event_attributes
            during_update.append(scheduled.activity_type.name)
    assert "verify_transaction" in during_update

    code, missing = await payrecon(stack, "invoices", "reverify", "inv-000000000000000000000000")
    assert code == 1 and "no invoice" in missing


async def test_reverify_reaches_a_completed_invoice(
    stack: Stack, api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    invoice = await create_invoice(api)
    await pay(sandbox, invoice["id"])
    await wait_for_status(api, invoice["id"], "paid")
    handle = stack.temporal.get_workflow_handle_for(InvoiceWorkflow.run, f"invoice-{invoice['id']}")
    paid = await handle.result()
    before = (await provider_calls(sandbox, invoice["id"]))["verify"]

    code, output = await payrecon(stack, "invoices", "reverify", invoice["id"])

    assert code == 0, output
    assert f"verified; paid, revision {paid.revision}" in output
    assert (await provider_calls(sandbox, invoice["id"]))["verify"] == before + 1
    # A second run answered, and completed: still one writer, and nothing moved.
    runs = [run async for run in stack.temporal.list_workflows(f"WorkflowId = '{handle.id}'")]
    assert len(runs) == 2
    assert (await handle.result()).revision == paid.revision


async def test_redeliver_a_stored_webhook(
    stack: Stack, api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    invoice = await create_invoice(api)
    await pay(sandbox, invoice["id"])
    await wait_for_status(api, invoice["id"], "paid")
    await stack.temporal.get_workflow_handle(f"invoice-{invoice['id']}").result()
    [delivery] = deliveries(stack, invoice["id"])

    code, output = await payrecon(stack, "webhooks", "redeliver", str(delivery.id))

    assert code == 0, output
    assert "workflow_closed" in output
    # The same row, relayed again: no second copy of the body.
    [redelivered] = deliveries(stack, invoice["id"])
    assert redelivered.id == delivery.id and redelivered.outcome == "workflow_closed"
    assert redelivered.detail == "redelivered by an operator (was signalled)"


async def test_redeliver_with_temporal_down_leaves_it_for_the_api(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    invoice = await create_invoice(api, due_in_seconds=600)
    await post_webhook(stack, charge_success(invoice["id"]))
    await eventually(lambda: _assert_last_outcome(stack, invoice["id"], "signalled"))
    [delivery] = deliveries(stack, invoice["id"])

    nowhere = f"127.0.0.1:{free_port()}"
    code, output = await payrecon(
        stack, "webhooks", "redeliver", str(delivery.id), TEMPORAL_ADDRESS=nowhere
    )

    assert code == 1 and "the API will relay it" in output, output
    # The stack's API relayer takes the queued redelivery up on its next scan.
    await eventually(lambda: _assert_last_outcome(stack, invoice["id"], "signalled"))
    assert len(deliveries(stack, invoice["id"])) == 1


def _assert_last_outcome(stack: Stack, reference: str, outcome: str) -> None:
    assert deliveries(stack, reference)[-1].outcome == outcome


async def test_temporal_setup_adds_missing_search_attributes_once(stack: Stack) -> None:
    namespace = f"setup-{uuid.uuid4().hex[:8]}"
    await stack.temporal.workflow_service.register_namespace(
        RegisterNamespaceRequest(
            namespace=namespace, workflow_execution_retention_period=Duration(seconds=86400)
        )
    )

    async def setup() -> tuple[int, str]:
        return await payrecon(stack, "temporal", "setup", TEMPORAL_NAMESPACE=namespace)

    code, first = await setup()
    for _ in range(50):  # a new namespace takes a moment to be served
        if code == 0:
            break
        await asyncio.sleep(0.2)
        code, first = await setup()
    assert code == 0, first
    assert (
        "added AmountMinor, Currency, CustomerEmail, DisputeState, DueAt, InvoiceStatus, "
        "RefundState" in first
    )

    code, second = await setup()
    assert code == 0 and "already registered" in second
