"""Reconciliation against Paystack's books, end to end: each discrepancy made in the sandbox
and found (healed or flagged) by a run started through the API, nothing on a clean day,
a run repeated gives the same result, an operator's resolution with its audit trail.

A stack of its own (fresh sandbox and database): Paystack's books here are this module's
alone, so a run's counts are exactly what its tests made."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ActivityError, ApplicationError

from activities.reconciliation import REFUND_REFUSED, RunSummary
from devstack.stack import Stack as Processes
from domain.pricing import NIGERIA, expected_fee
from paystack.client import PaystackClient
from sandbox.controls import SandboxControls
from tests.conftest import running_stack, stack_settings, start_processes
from tests.helpers import (
    api_client,
    clock_passes,
    create_invoice,
    eventually,
    keep_history,
    wait_for_status,
)
from tests.mailbox import Mailbox
from tests.stack import API_KEY, OPERATOR_KEY, SECRET_KEY, Stack
from workflows.discrepancy_refund import DiscrepancyRefundInput, DiscrepancyRefundWorkflow
from workflows.reconciliation import ReconciliationWorkflow, Trigger
from workflows.schedules import reconciliation_input
from workflows.types import workflow_id_for

AMOUNT = 500_000


@pytest.fixture(scope="module")
def books_processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Processes, Path]]:
    data_dir = tmp_path_factory.mktemp("books")
    # The worker as a process of its own, which a test SIGKILLs mid-run.
    processes = start_processes(data_dir, worker_process=True)
    yield processes, data_dir
    processes.stop_all()


@pytest.fixture(scope="module")
async def books(books_processes: tuple[Processes, Path], mailbox: Mailbox) -> AsyncIterator[Stack]:
    processes, data_dir = books_processes
    settings = stack_settings(processes, mailbox)
    async with running_stack(processes, settings, data_dir, start_worker=False) as stack:
        yield stack


@pytest.fixture
async def ops(books: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(books.api_url, OPERATOR_KEY) as client:
        yield client


@pytest.fixture
async def merchant(books: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(books.api_url, API_KEY) as client:
        yield client


@pytest.fixture
async def paystack(books: Stack) -> AsyncIterator[SandboxControls]:
    async with httpx.AsyncClient(base_url=books.sandbox_url, timeout=30) as client:
        controls = SandboxControls(client)
        await controls.set_webhooks(True)
        yield controls
        await controls.set_webhooks(True)


def now() -> datetime:
    return datetime.now(UTC)


async def reconcile(
    ops: httpx.AsyncClient,
    since: datetime,
    until: datetime,
    *,
    books: Stack | None = None,
    history: str | None = None,
) -> dict[str, Any]:
    """A run over [since, until) started through the API, once it has finished."""
    started = await ops.post(
        "/reconciliation/runs", json={"from": since.isoformat(), "to": until.isoformat()}
    )
    assert started.status_code == 202, started.text
    run: dict[str, Any] = started.json()
    assert run["status"] == "running"
    async with asyncio.timeout(60):
        while run["status"] == "running":
            await asyncio.sleep(0.2)
            run = (await ops.get(f"/reconciliation/runs/{run['id']}")).json()
    assert run["status"] == "completed", run
    if books is not None and history is not None:
        handle = books.temporal.get_workflow_handle(run["id"])
        await keep_history(await handle.fetch_history(), history)
    return run


async def discrepancies(ops: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    response = await ops.get("/reconciliation/discrepancies", params={"limit": 200, **params})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def paid_invoice(merchant: httpx.AsyncClient, paystack: SandboxControls) -> dict[str, Any]:
    invoice = await create_invoice(merchant, amount=AMOUNT, due_in_seconds=600)
    await paystack.pay(invoice["id"])
    await wait_for_status(merchant, invoice["id"], "paid")
    return invoice


async def test_a_clean_day_flags_nothing_and_adds_up(
    books: Stack, ops: httpx.AsyncClient, merchant: httpx.AsyncClient, paystack: SandboxControls
) -> None:
    since = now()
    paid = [await paid_invoice(merchant, paystack) for _ in range(2)]
    await create_invoice(merchant, amount=AMOUNT, due_in_seconds=600)  # not paid: fine
    settled = await paystack.run_settlements()
    run = await reconcile(
        ops, since, now() + timedelta(seconds=1), books=books, history="reconciliation_clean"
    )

    assert run["counts"] == {} and run["records_seen"] == 3 and run["records_matched"] == 3
    fee = expected_fee(
        NIGERIA,
        amount=AMOUNT,
        currency="NGN",
        channel="card",
        card_country="NG",
        account_country="NG",
    )
    assert fee is not None
    assert run["totals"]["NGN"] == {
        "paystack_volume": 2 * AMOUNT,
        "payrecon_volume": 2 * AMOUNT,
        "fees": 2 * fee,
        "net_settled": 2 * (AMOUNT - fee),
    }
    assert await discrepancies(ops) == []
    # The invoice shows the settlement that paid it out, its fees and its net.
    shown = (await merchant.get(f"/invoices/{paid[0]['id']}")).json()
    assert shown["settlement_id"] == settled["data"][0]["id"]
    assert shown["fees"] == fee and shown["net_amount"] == AMOUNT - fee


async def test_each_kind_is_found_once_and_a_missed_payment_is_healed(
    books: Stack, ops: httpx.AsyncClient, merchant: httpx.AsyncClient, paystack: SandboxControls
) -> None:
    since = now()
    # Expired, its late-payment window over, then paid with no webhook: missed.
    missed = await create_invoice(merchant, amount=AMOUNT, due_in_seconds=1)
    await wait_for_status(merchant, missed["id"], "expired", within=20)
    # The late-payment window (4 s) closes and the workflow completes.
    ended = books.temporal.get_workflow_handle(workflow_id_for(missed["id"])).result()
    await asyncio.wait_for(ended, timeout=20)
    await paystack.set_webhooks(False)
    await paystack.pay(missed["id"])
    await paystack.set_webhooks(True)
    # Paid through a payment page: no invoice asked for it.
    orphan = (await paystack.create_payment(AMOUNT, "NGN", "walk-in@example.com"))["reference"]
    # Paid twice: the invoice's own reference, and its second one.
    twice = await paid_invoice(merchant, paystack)
    await paystack.create_payment(AMOUNT, "NGN", "twice@example.com", reference=f"{twice['id']}.2")
    # Paid less than asked: the invoice needs review, and the books disagree.
    short = await create_invoice(merchant, amount=AMOUNT, due_in_seconds=600)
    await paystack.pay(short["id"], amount=AMOUNT - 100)
    await wait_for_status(merchant, short["id"], "needs_review")
    # Paid, then reversed on Paystack with no refund.
    reversed_ = await paid_invoice(merchant, paystack)
    await paystack.reverse(reversed_["id"])

    run = await reconcile(
        ops,
        since,
        now() + timedelta(seconds=1),
        books=books,
        history="reconciliation_found_and_healed",
    )
    assert run["counts"] == {
        "missed_payment": 1,
        "orphan_payment": 1,
        "duplicate_payment": 1,
        "amount_mismatch": 1,
        "paid_not_on_paystack": 1,
    }
    found = {(d["kind"], d["paystack_reference"]): d for d in await discrepancies(ops)}
    assert set(found) == {
        ("missed_payment", missed["id"]),
        ("orphan_payment", orphan),
        ("duplicate_payment", f"{twice['id']}.2"),
        ("amount_mismatch", short["id"]),
        ("paid_not_on_paystack", reversed_["id"]),
    }
    # The heal asked the invoice's workflow to verify: paid after expiry, for review.
    healed = found[("missed_payment", missed["id"])]
    assert healed["status"] == "resolved" and healed["resolved_by"] == "heal"
    assert healed["details"]["heal"]["invoice_status"] == "needs_review"
    assert (await merchant.get(f"/invoices/{missed['id']}")).json()["status"] == "needs_review"
    others = [d for key, d in found.items() if key[0] != "missed_payment"]
    assert all(d["status"] == "open" for d in others)

    # The same window again: the same discrepancies, seen again, none twice.
    again = await reconcile(ops, since, datetime.fromisoformat(run["window_to"]))
    assert again["counts"] == {k: v for k, v in run["counts"].items() if k != "missed_payment"}
    seen_again = {(d["kind"], d["paystack_reference"]): d for d in await discrepancies(ops)}
    assert {key: d["id"] for key, d in seen_again.items()} == {
        key: d["id"] for key, d in found.items()
    }
    assert all(
        seen_again[key]["last_seen_at"] > found[key]["last_seen_at"]
        for key in found
        if key[0] != "missed_payment"
    )


async def test_refunds_explain_a_reversal_and_flag_nothing(
    ops: httpx.AsyncClient, merchant: httpx.AsyncClient, paystack: SandboxControls
) -> None:
    since = now()
    whole, part = await paid_invoice(merchant, paystack), await paid_invoice(merchant, paystack)
    for invoice, amount, status in (
        (whole, AMOUNT, "refunded"),
        (part, 1_000, "partially_refunded"),
    ):
        asked = await merchant.post(f"/invoices/{invoice['id']}/refunds", json={"amount": amount})
        assert asked.status_code == 201, asked.text
        await paystack.settle_refund(asked.json()["paystack_refund_id"], "processed")
        await wait_for_status(merchant, invoice["id"], status)
    # Paystack shows the fully refunded payment `reversed`, the other still `success`.
    for invoice, paystack_status in ((whole, "reversed"), (part, "success")):
        seen = await paystack.transaction(invoice["id"])
        assert seen is not None and seen["transaction"]["status"] == paystack_status
    run = await reconcile(ops, since, now() + timedelta(seconds=1))
    # Two payments and their two refunds, each matched.
    assert run["counts"] == {} and run["records_seen"] == run["records_matched"] == 4
    assert [
        d for d in await discrepancies(ops) if d["invoice_id"] in (whole["id"], part["id"])
    ] == []


async def test_a_lost_dashboard_refund_is_healed_and_an_overdue_dispute_flagged(
    books: Stack, ops: httpx.AsyncClient, merchant: httpx.AsyncClient, paystack: SandboxControls
) -> None:
    since = now()
    refunded, disputed = (
        await paid_invoice(merchant, paystack),
        await paid_invoice(merchant, paystack),
    )
    # Every webhook from here on is lost: only the sweep can tell payrecon.
    await paystack.set_webhooks(False)
    dashboard = PaystackClient(books.sandbox_url, SECRET_KEY)
    try:
        made = await dashboard.create_refund(
            transaction=refunded["id"], amount=1_000, merchant_note="refunded by hand"
        )
    finally:
        await dashboard.aclose()
    await paystack.settle_refund(made.id, "processed")
    dispute = await paystack.open_dispute(disputed["id"], due_in_seconds=1)
    await clock_passes(datetime.fromisoformat(dispute["dueAt"].replace("Z", "+00:00")))

    run = await reconcile(
        ops, since, now(), books=books, history="reconciliation_refunds_and_disputes"
    )
    assert run["counts"] == {"refund_mismatch": 1, "dispute_overdue": 1}, run
    [mismatch] = await discrepancies(ops, kind="refund_mismatch", invoice_id=refunded["id"])
    assert mismatch["details"]["paystack_refund_id"] == made.id
    assert mismatch["details"]["problem"] == "payrecon has no record of this refund"
    [overdue] = await discrepancies(ops, kind="dispute_overdue", invoice_id=disputed["id"])
    assert overdue["details"]["paystack_dispute_id"] == dispute["id"]
    # Healed through each invoice's own workflow: the refund recorded, the dispute shown.
    healed = await wait_for_status(merchant, refunded["id"], "partially_refunded")
    assert healed["amount_refunded"] == 1_000
    [learned] = (await merchant.get(f"/invoices/{refunded['id']}/refunds")).json()["items"]
    assert learned["initiated_by"] == "paystack_dashboard" and learned["status"] == "processed"

    async def dispute_shown() -> None:
        shown = (await merchant.get(f"/invoices/{disputed['id']}")).json()["disputes"]
        assert [d["id"] for d in shown] == [dispute["id"]] and shown[0]["overdue"]

    await eventually(dispute_shown, 20)
    # A run that sees them again: the refund now matches, the dispute is still overdue.
    again = await reconcile(ops, since, now())
    assert again["counts"] == {"dispute_overdue": 1}, again
    [resolved] = await discrepancies(ops, kind="refund_mismatch", invoice_id=refunded["id"])
    assert resolved["status"] == "resolved"


async def test_an_operator_refunds_an_orphan_payment_from_its_discrepancy(
    books: Stack, ops: httpx.AsyncClient, merchant: httpx.AsyncClient, paystack: SandboxControls
) -> None:
    since = now()
    orphan = await paystack.create_payment(AMOUNT, "NGN", "stranger@example.com")
    await reconcile(ops, since, now() + timedelta(seconds=1))
    [found] = [
        d
        for d in await discrepancies(ops, kind="orphan_payment", status="open")
        if d["paystack_reference"] == orphan["reference"]
    ]
    refund = f"/reconciliation/discrepancies/{found['id']}/refund"

    # Only operators, only orphan or duplicate payments, and a note is needed.
    assert (await merchant.post(refund, json={"note": "x"})).status_code == 403
    assert (await ops.post(refund, json={})).status_code == 422
    missing = "/reconciliation/discrepancies/dsc_000000000000000000000000/refund"
    assert (await ops.post(missing, json={"note": "x"})).status_code == 404

    asked = await ops.post(refund, json={"note": "not ours: sent back"})
    assert asked.status_code == 202, asked.text
    assert asked.json()["status"] == "open"
    assert [e["action"] for e in asked.json()["audit"]][-1] == "refund_requested"
    again = await ops.post(refund, json={"note": "not ours: sent back"})
    assert again.status_code == 202  # the same refund, still under way
    key = {"Authorization": f"Bearer {SECRET_KEY}"}
    made: dict[str, Any] = {}

    async def made_at_paystack() -> None:
        # The 202 answers once the refund's workflow has started; it asks Paystack next.
        async with httpx.AsyncClient(base_url=books.sandbox_url, headers=key) as books_api:
            listed = await books_api.get("/refund", params={"transaction": orphan["reference"]})
        refunds = listed.json()["data"]
        assert len(refunds) == 1, refunds
        made.update(refunds[0])

    await eventually(made_at_paystack)
    assert made["amount"] == AMOUNT and "payrecon refund rf_" in made["merchant_note"]
    await paystack.settle_refund(made["id"], "processed")

    async def resolved() -> None:
        shown = (await ops.get(f"/reconciliation/discrepancies/{found['id']}")).json()
        assert shown["status"] == "resolved", shown
        assert shown["resolution_note"] == "not ours: sent back"
        actions = [entry["action"] for entry in shown["audit"]]
        assert actions[-2:] == ["refund_processed", "resolved"], actions

    await eventually(resolved, 20)
    handle = books.temporal.get_workflow_handle(f"refund-{found['id']}")
    assert await handle.result() == "processed"
    await keep_history(await handle.fetch_history(), "discrepancy_refund_vetted")
    late = await ops.post(refund, json={"note": "again"})
    assert late.status_code == 409 and "already resolved" in late.json()["detail"]


async def test_a_refund_started_from_outside_payrecon_moves_no_money(
    books: Stack, ops: httpx.AsyncClient, paystack: SandboxControls
) -> None:
    since = now()
    orphan = await paystack.create_payment(AMOUNT, "NGN", "walk-in@example.com")
    await reconcile(ops, since, now() + timedelta(seconds=1))
    [found] = [
        d
        for d in await discrepancies(ops, kind="orphan_payment", status="open")
        if d["paystack_reference"] == orphan["reference"]
    ]
    transaction_id = int(orphan["id"])

    async def refunds_at_paystack() -> list[dict[str, Any]]:
        key = {"Authorization": f"Bearer {SECRET_KEY}"}
        async with httpx.AsyncClient(base_url=books.sandbox_url, headers=key) as books_api:
            listed = await books_api.get("/refund", params={"transaction": orphan["reference"]})
        made: list[dict[str, Any]] = listed.json()["data"]
        return made

    # Someone who reaches Temporal starts the refund workflow with input that decrypts: no
    # operator asked through the API, so the database refuses it before Paystack is asked.
    forged = DiscrepancyRefundInput(
        discrepancy_id=found["id"],
        transaction_id=transaction_id,
        amount=AMOUNT,
        operator="operator:ops",
        note="send it to me",
        paystack_task_queue=books.settings.temporal_paystack_task_queue,
    )
    handle = await books.temporal.start_workflow(
        DiscrepancyRefundWorkflow.run,
        forged,
        id=f"forged-{uuid.uuid4().hex[:12]}",
        task_queue=books.settings.temporal_task_queue,
    )
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    cause = failed.value.cause
    assert isinstance(cause, ActivityError) and isinstance(cause.cause, ApplicationError)
    assert cause.cause.type == REFUND_REFUSED
    assert await refunds_at_paystack() == []

    # The same with plaintext input (no payrecon key): the workers' codec refuses it whole.
    outsider = await Client.connect(books.temporal.service_client.config.target_host)
    plain = await outsider.start_workflow(
        "DiscrepancyRefundWorkflow",
        forged,
        id=f"plaintext-{uuid.uuid4().hex[:12]}",
        task_queue=books.settings.temporal_task_queue,
    )
    try:

        async def refused() -> None:
            events = [event async for event in plain.fetch_history_events()]
            assert any(event.HasField("workflow_task_failed_event_attributes") for event in events)

        await eventually(refused, 20)
        assert await refunds_at_paystack() == []
        shown = (await ops.get(f"/reconciliation/discrepancies/{found['id']}")).json()
        assert shown["status"] == "open"
    finally:
        await plain.terminate("test over")


async def test_settlement_arithmetic_and_fees_are_checked(
    ops: httpx.AsyncClient, merchant: httpx.AsyncClient, paystack: SandboxControls
) -> None:
    since = now()
    await paid_invoice(merchant, paystack)
    fee_fault = await paystack.run_settlements(fault="fee")
    await paid_invoice(merchant, paystack)
    arithmetic_fault = await paystack.run_settlements(fault="arithmetic")
    run = await reconcile(ops, since, now() + timedelta(seconds=1))

    assert run["counts"] == {"fee_mismatch": 1, "settlement_mismatch": 1}
    fee = (await discrepancies(ops, kind="fee_mismatch", status="open"))[0]
    assert fee["paystack_reference"] == fee_fault["faults"][0]["reference"]
    assert fee["details"]["fees"] == fee["details"]["expected_fees"] + 100
    settlement = (await discrepancies(ops, kind="settlement_mismatch", status="open"))[0]
    assert settlement["details"]["settlement_id"] == arithmetic_fault["faults"][0]["settlement_id"]
    assert settlement["details"]["problems"] == [
        "total_processed - total_fees - deductions != total_amount"
    ]


async def test_a_payment_never_settled_is_flagged(
    books: Stack, ops: httpx.AsyncClient, merchant: httpx.AsyncClient, paystack: SandboxControls
) -> None:
    since = now()
    invoice = await paid_invoice(merchant, paystack)
    paid_at = (await merchant.get(f"/invoices/{invoice['id']}")).json()["paid_at"]
    await clock_passes(datetime.fromisoformat(paid_at) + timedelta(seconds=1))
    # Unsettled after one second, not three days: started as the schedule starts a run.
    run_input = reconciliation_input(books.settings, Trigger.ON_DEMAND)
    run_input.window_from, run_input.window_to = since, now()
    run_input.unsettled_after_seconds = 1
    summary: RunSummary = await books.temporal.execute_workflow(
        ReconciliationWorkflow.run,
        run_input,
        id=f"recon_test_{uuid.uuid4().hex[:12]}",
        task_queue=books.settings.temporal_task_queue,
    )
    assert summary.status == "completed"
    unsettled = await discrepancies(ops, kind="unsettled", invoice_id=invoice["id"])
    assert [d["status"] for d in unsettled] == ["open"]

    # Paid out since: the next run finds it settled, and resolves it.
    await paystack.run_settlements()
    run_input.window_from = now()
    run_input.window_to = now() + timedelta(seconds=1)
    await books.temporal.execute_workflow(
        ReconciliationWorkflow.run,
        run_input,
        id=f"recon_test_{uuid.uuid4().hex[:12]}",
        task_queue=books.settings.temporal_task_queue,
    )
    unsettled = await discrepancies(ops, kind="unsettled", invoice_id=invoice["id"])
    assert [d["status"] for d in unsettled] == ["resolved"]


async def test_an_operator_resolves_with_a_note_and_the_trail_shows_it(
    ops: httpx.AsyncClient, paystack: SandboxControls
) -> None:
    since = now()
    orphan = (await paystack.create_payment(AMOUNT, "NGN", "note@example.com"))["reference"]
    run = await reconcile(ops, since, now() + timedelta(seconds=1))
    [found] = [
        d
        for d in await discrepancies(ops, kind="orphan_payment")
        if d["paystack_reference"] == orphan
    ]

    resolved = await ops.post(
        f"/reconciliation/discrepancies/{found['id']}/resolve",
        json={"note": "a walk-in customer, booked by hand"},
    )
    assert resolved.status_code == 200, resolved.text
    body = resolved.json()
    assert body["status"] == "resolved" and body["resolved_by"] == "operator:ops"
    assert [(a["action"], a["actor"]) for a in body["audit"]] == [
        ("opened", body["audit"][0]["actor"]),
        ("resolved", "operator:ops"),
    ]
    assert body["audit"][-1]["note"] == "a walk-in customer, booked by hand"
    again = await ops.post(
        f"/reconciliation/discrepancies/{found['id']}/resolve", json={"note": "twice"}
    )
    assert again.status_code == 409 and "already resolved" in again.json()["detail"]

    # A later run sees the orphan again: an operator's resolution stands.
    await reconcile(ops, since, now() + timedelta(seconds=1))
    shown = (await ops.get(f"/reconciliation/discrepancies/{found['id']}")).json()
    assert shown["status"] == "resolved" and len(shown["audit"]) == 2

    # The first run's report lists it, as it stands now.
    report = await ops.get(f"/reconciliation/runs/{run['id']}/report.csv")
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/csv")
    header, *lines = report.text.splitlines()
    assert header.startswith("id,kind,status,invoice_id,paystack_reference,amount,currency")
    assert [line.split(",")[:5] for line in lines] == [
        [found["id"], "orphan_payment", "resolved", "", orphan]
    ]


async def test_only_operators_reach_reconciliation(
    merchant: httpx.AsyncClient, ops: httpx.AsyncClient
) -> None:
    for method, path, body in (
        ("GET", "/reconciliation/runs", None),
        ("POST", "/reconciliation/runs", {"from": "2026-01-01T00:00Z", "to": "2026-01-02T00:00Z"}),
        ("GET", "/reconciliation/discrepancies", None),
    ):
        response = await merchant.request(method, path, json=body)
        assert response.status_code == 403, response.text
        assert "operator" in response.json()["detail"]
    runs_before = (await ops.get("/reconciliation/runs")).json()["total"]
    # Bad input: a clear 422 or 404, and nothing started.
    backwards = await ops.post(
        "/reconciliation/runs", json={"from": "2026-01-02T00:00Z", "to": "2026-01-01T00:00Z"}
    )
    assert backwards.status_code == 422 and "before" in backwards.text
    naive = await ops.post(
        "/reconciliation/runs", json={"from": "2026-01-01T00:00", "to": "2026-01-02T00:00Z"}
    )
    assert naive.status_code == 422
    assert (await ops.get("/reconciliation/runs")).json()["total"] == runs_before
    missing = await ops.get("/reconciliation/discrepancies/dsc_000000000000000000000000")
    assert missing.status_code == 404
    empty_note = await ops.post(
        "/reconciliation/discrepancies/dsc_000000000000000000000000/resolve", json={"note": ""}
    )
    assert empty_note.status_code == 422


async def test_a_run_killed_mid_way_resumes_and_finds_the_same(
    books_processes: tuple[Processes, Path],
    books: Stack,
    paystack: SandboxControls,
) -> None:
    processes, _ = books_processes
    since = now()
    for number in range(30):
        await paystack.create_payment(AMOUNT, "NGN", f"walk-in-{number}@example.com")
    # Pages of two: fifteen of the window's transactions, one activity each.
    run_input = reconciliation_input(books.settings, Trigger.ON_DEMAND)
    run_input.window_from, run_input.window_to = since, now() + timedelta(seconds=1)
    run_input.page_size = 2
    handle = await books.temporal.start_workflow(
        ReconciliationWorkflow.run,
        run_input,
        id=f"recon_killed_{uuid.uuid4().hex[:12]}",
        task_queue=books.settings.temporal_task_queue,
    )
    async with asyncio.timeout(60):
        while True:
            if await pages_done(handle) >= 4:
                break
            await asyncio.sleep(0.1)
    processes.services["worker"].kill()
    killed_after = await pages_done(handle)
    processes.start("worker")
    # Whatever activity the kill cut short is retried once its heartbeats stop (20 s), not
    # at the end of its start-to-close timeout (up to 10 minutes).
    async with asyncio.timeout(120):
        interrupted: RunSummary = await handle.result()

    uninterrupted: RunSummary = await books.temporal.execute_workflow(
        ReconciliationWorkflow.run,
        run_input,
        id=f"recon_whole_{uuid.uuid4().hex[:12]}",
        task_queue=books.settings.temporal_task_queue,
    )
    assert 4 <= killed_after < 15
    assert interrupted.status == uninterrupted.status == "completed"
    assert interrupted.counts == uninterrupted.counts == {"orphan_payment": 30}
    assert interrupted.records_seen == uninterrupted.records_seen == 30


async def pages_done(handle: WorkflowHandle[Any, Any]) -> int:
    """Transaction pages the run has finished, from its history."""
    done = 0
    scheduled: dict[int, str] = {}
    async for event in handle.fetch_history_events():
        if event.HasField("activity_task_scheduled_event_attributes"):
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            scheduled[event.event_id] = name
        if event.HasField("activity_task_completed_event_attributes"):
            started = event.activity_task_completed_event_attributes.scheduled_event_id
            done += scheduled.get(started) == "reconcile_transactions_page"
    return done
