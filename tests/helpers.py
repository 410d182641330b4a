"""Small helpers the end-to-end tests share."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlmodel import Session, select
from temporalio.api.enums.v1 import PendingWorkflowTaskState
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_fixed

from config import Settings
from db import queries
from db.models import WebhookDelivery
from domain.invoice import follows_the_graph
from inbox import store
from paystack.signature import SIGNATURE_HEADER, sign
from sandbox.controls import SandboxControls
from temporal_codec import payrecon_data_converter
from tests.stack import SECRET_KEY, Stack
from worker import workflow_runner
from workflows.discrepancy_refund import DiscrepancyRefundWorkflow
from workflows.invoice import InvoiceWorkflow
from workflows.reconciliation import ReconciliationWorkflow
from workflows.retention import WebhookRetentionWorkflow
from workflows.types import workflow_id_for

AMOUNT = 250000
INVOICE: dict[str, Any] = {"customer_email": "ada@example.com", "amount": AMOUNT, "currency": "NGN"}


@asynccontextmanager
async def api_client(api_url: str, key: str) -> AsyncIterator[httpx.AsyncClient]:
    """The API as the holder of `key` calls it."""
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=api_url, headers=headers, timeout=30) as client:
        yield client


async def create_invoice(
    api: httpx.AsyncClient, *, idempotency_key: str | None = None, **fields: Any
) -> dict[str, Any]:
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    response = await api.post("/invoices", json={**INVOICE, **fields}, headers=headers)
    assert response.status_code == 201, response.text
    invoice: dict[str, Any] = response.json()
    return invoice


async def wait_for_status(
    api: httpx.AsyncClient, invoice_id: str, status: str, within: float = 20.0
) -> dict[str, Any]:
    invoice: dict[str, Any] = {}

    async def reached() -> None:
        response = await api.get(f"/invoices/{invoice_id}")
        assert response.status_code == 200, response.text
        invoice.update(response.json())
        assert invoice["status"] == status, f"{invoice_id} is {invoice['status']}, not {status}"

    await eventually(reached, within)
    return invoice


async def pay(
    sandbox: httpx.AsyncClient, reference: str, outcome: str = "success", **fields: Any
) -> dict[str, Any]:
    transaction: dict[str, Any] = await SandboxControls(sandbox).pay(reference, outcome, **fields)
    return transaction


async def set_webhooks(sandbox: httpx.AsyncClient, enabled: bool) -> None:
    await SandboxControls(sandbox).set_webhooks(enabled)


@asynccontextmanager
async def verify_hangs(
    sandbox: httpx.AsyncClient, reference: str, times: int
) -> AsyncIterator[None]:
    """Paystack's verify for `reference` alone hangs `times` times (past the client's
    timeout); every fault is cleared on the way out."""
    hang = {"timeout_rate": {"count": times}, "timeout_seconds": 30, "only_references": [reference]}
    controls = SandboxControls(sandbox)
    await controls.set_faults(api={"verify": hang})
    try:
        yield
    finally:
        await controls.clear_faults()


@asynccontextmanager
async def verify_slow(
    sandbox: httpx.AsyncClient, reference: str, seconds: float
) -> AsyncIterator[None]:
    """Paystack's verify for `reference` alone answers after `seconds` (within the client's
    timeout), every time; every fault is cleared on the way out."""
    latency = {"latency_ms": [seconds * 1000, seconds * 1000], "only_references": [reference]}
    controls = SandboxControls(sandbox)
    await controls.set_faults(api={"verify": latency})
    try:
        yield
    finally:
        await controls.clear_faults()


async def provider_calls(sandbox: httpx.AsyncClient, reference: str) -> dict[str, int]:
    transaction = await SandboxControls(sandbox).transaction(reference)
    assert transaction is not None, reference
    calls: dict[str, int] = transaction["calls"]
    return calls


async def post_webhook(
    stack: Stack, payload: dict[str, Any] | bytes, *, signature: str | None = None
) -> httpx.Response:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"content-type": "application/json"}
    headers[SIGNATURE_HEADER] = signature if signature is not None else sign(body, SECRET_KEY)
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as client:
        return await client.post("/webhooks/paystack", content=body, headers=headers)


def charge_success(reference: str, **data: Any) -> dict[str, Any]:
    return {
        "event": "charge.success",
        "data": {
            "id": 4100999999,
            "domain": "test",
            "status": "success",
            "reference": reference,
            "amount": INVOICE["amount"],
            "currency": "NGN",
            "paid_at": "2026-11-23T09:15:02.000Z",
            **data,
        },
    }


def status_changes(stack: Stack, invoice_id: str) -> list[str]:
    return [change.status for change in queries.status_history(stack.engine, invoice_id)]


def deliveries(stack: Stack, reference: str) -> list[WebhookDelivery]:
    return store.deliveries_for(stack.engine, reference)


def delivery_count(stack: Stack) -> int:
    with Session(stack.engine) as session:
        return len(list(session.exec(select(WebhookDelivery.id))))


async def eventually(check: Any, within: float = 10.0) -> None:
    """Retries an assertion (a function, or a coroutine function) until it holds or the
    time is up; then its last failure is raised."""
    async for attempt in AsyncRetrying(
        stop=stop_after_delay(within),
        wait=wait_fixed(0.05),
        retry=retry_if_exception_type(AssertionError),
        reraise=True,
    ):
        with attempt:
            result = check()
            if asyncio.iscoroutine(result):
                await result


async def clock_passes(moment: datetime) -> None:
    """Waits until the wall clock is past `moment`: what a due date or an age waits for."""
    await asyncio.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()) + 0.01)


async def history_events(stack: Stack, invoice_id: str) -> list[HistoryEvent]:
    """Every event of the invoice's current run and of the runs it continued from: a run may
    continue as new at any moment (the test server suggests it at 100 events), and what came
    before is in the earlier run's history."""
    events: list[HistoryEvent] = []
    run_id: str | None = None
    while True:
        handle = stack.temporal.get_workflow_handle(workflow_id_for(invoice_id), run_id=run_id)
        run = [event async for event in handle.fetch_history_events()]
        events = run + events
        started = run[0].workflow_execution_started_event_attributes
        if not started.continued_execution_run_id:
            return events
        run_id = started.continued_execution_run_id


async def signals_received(stack: Stack, invoice_id: str) -> list[str]:
    return [
        event.workflow_execution_signaled_event_attributes.signal_name
        for event in await history_events(stack, invoice_id)
        if event.HasField("workflow_execution_signaled_event_attributes")
    ]


async def workflow_task_open(stack: Stack, invoice_id: str) -> bool:
    """Whether a worker holds one of the invoice's workflow tasks now. A signal the server
    accepts meanwhile is buffered: it reaches the history only when that task completes (a
    local activity, such as the verify on a payment notice, keeps the task open)."""
    handle = stack.temporal.get_workflow_handle(workflow_id_for(invoice_id))
    task = (await handle.describe()).raw_description.pending_workflow_task
    return task.state == PendingWorkflowTaskState.PENDING_WORKFLOW_TASK_STATE_STARTED


async def signals_in_history(
    stack: Stack, invoice_id: str, at_least: int, within: float = 20.0
) -> list[str]:
    """The invoice's signals, once its history holds `at_least` of them and none the server
    has accepted is still held back behind an open workflow task; the last failure after
    `within` seconds. A test compares the list it gets: one too many is seen, not waited out."""
    signals: list[str] = []

    async def written() -> None:
        # Looked at before the history is read: with no task open then, every signal
        # accepted by then is in the history read after.
        assert not await workflow_task_open(stack, invoice_id), (
            "a workflow task is still open: a signal may be held back behind it"
        )
        signals[:] = await signals_received(stack, invoice_id)
        assert len(signals) >= at_least, f"{len(signals)} signal(s) in history, not {at_least}"

    await eventually(written, within)
    return signals


HISTORY_DIR = Path(__file__).parent / "histories"
# Live histories are encrypted with the test session's codec keys (the dev key unless
# PAYRECON_CODEC_KEYS says otherwise).
REPLAY_CONVERTER = payrecon_data_converter(Settings(payrecon_development_mode=True))
REPLAYED_WORKFLOWS = [
    InvoiceWorkflow,
    WebhookRetentionWorkflow,
    ReconciliationWorkflow,
    DiscrepancyRefundWorkflow,
]


async def check_history(
    stack: Stack,
    invoice_id: str,
    path_name: str,
    *,
    wait_for_completion: bool = True,
    run_id: str | None = None,
) -> None:
    """Replays the invoice's live history against today's workflow code, and with
    PAYRECON_RECORD_HISTORIES=1 (`make histories`) keeps it for test_replay."""
    handle = stack.temporal.get_workflow_handle_for(
        InvoiceWorkflow.run, workflow_id_for(invoice_id), run_id=run_id
    )
    if wait_for_completion and run_id is None:
        async with asyncio.timeout(20):
            final = await handle.result()
        # The database ends where the workflow ended, and nothing moved after it.
        row = queries.get_invoice(stack.engine, invoice_id)
        assert row is not None and row.status == final.status.value
        assert row.revision == final.revision
        history = status_changes(stack, invoice_id)
        assert history[-1] == final.status.value
        # Only the graph's moves: no status twice, nothing back.
        assert follows_the_graph(history), history
    await keep_history(await handle.fetch_history(), path_name)


async def keep_history(recorded: WorkflowHistory, path_name: str) -> None:
    """Replays a live history against today's workflow code, and with
    PAYRECON_RECORD_HISTORIES=1 (`make histories`) keeps it for test_replay."""
    replayer = Replayer(
        workflows=REPLAYED_WORKFLOWS,
        data_converter=REPLAY_CONVERTER,
        workflow_runner=workflow_runner(),
    )
    await replayer.replay_workflow(recorded)
    if os.environ.get("PAYRECON_RECORD_HISTORIES") == "1":
        HISTORY_DIR.mkdir(exist_ok=True)
        (HISTORY_DIR / f"{path_name}.json").write_text(recorded.to_json())


async def answer_before_the_body_ends(
    stack: Stack, path: str, headers: dict[str, str], sent: bytes, within: float = 5.0
) -> tuple[int, dict[str, Any]]:
    """POST `sent` as the start of a chunked body that never ends, and read the answer: one
    comes only if the server answers without reading the whole body."""
    url = httpx.URL(stack.api_url)
    reader, writer = await asyncio.open_connection(url.host, url.port)
    head = [f"POST {path} HTTP/1.1", f"Host: {url.host}", "Transfer-Encoding: chunked"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
    writer.write(f"{len(sent):x}\r\n".encode() + sent + b"\r\n")
    try:
        async with asyncio.timeout(within):
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            body = await reader.readexactly(length)
    finally:
        writer.close()
    return int(status_line.split()[1]), json.loads(body)
