"""Replays the recorded history of every workflow path against today's workflow code, so
a change that breaks running invoices fails CI. `make histories` records them anew.

From 0.1.0 on, a change to workflow code goes under `workflow.patched` (the README's
versioning policy), and the histories recorded before it stay here and keep replaying."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from tests.helpers import HISTORY_DIR, REPLAY_CONVERTER, REPLAYED_WORKFLOWS
from worker import workflow_runner

WORKFLOW_PATHS = {
    "paid_by_webhook",
    "paid_by_polling",
    "duplicate_webhooks",
    "webhook_before_payment",
    "amount_mismatch",
    "currency_mismatch",
    "expired",
    "paid_at_due_date",
    "paid_after_expiry",
    # A run that lost its first task found its own record, and still took the window's look.
    "late_payment_found_by_own_record",
    "cancelled_then_paid",
    "cancel_finds_paid",
    "idempotent_create",
    "worker_restart",
    "replacement_reference",
    "continued_as_new",
    "continue_as_new_handoff",
    "notice_verify_moved_to_queue",
    "woken_after_completion",
    # A create that Paystack, being down, never answered.
    "paystack_down",
    # The daily schedule's run that deletes expired webhook deliveries.
    "webhook_retention",
    # POST /invoices/{id}/verify: the verify-now update, Paystack asked at once.
    "verified_now",
    # A reconciliation run: a clean day, settlements added up; one that heals a missed
    # payment and finds each other kind.
    "reconciliation_clean",
    "reconciliation_found_and_healed",
    # A run that finds a dashboard refund whose webhooks were lost and an overdue dispute,
    # and asks each invoice to look again.
    "reconciliation_refunds_and_disputes",
    # An operator's refund of an orphan payment, from its discrepancy, until processed; the
    # request held against the database first (since the vet-refund-request patch).
    "discrepancy_refunded",
    "discrepancy_refund_vetted",
    # Refunds: in full; failed, then made again; needing attention, then retried; found by
    # polling with no webhook; Paystack's answer lost (found again by its note); made on
    # Paystack's dashboard and learned from its webhook (a completed invoice woken for it).
    "refunded",
    "refund_failed_then_made_again",
    "refund_retried_after_attention",
    # The same, the bank account passed by its sealed row's id (bank-account-by-id).
    "refund_retried_by_account_id",
    "refund_found_by_polling",
    "refund_answer_lost",
    "refund_from_dashboard",
    # Disputes: declined (a completed invoice woken by the dispute's webhook); accepted,
    # with the refund Paystack makes for it; left open past its due date.
    "dispute_declined",
    "dispute_accepted_and_refunded",
    "dispute_overdue",
}


def test_every_workflow_path_has_a_recorded_history() -> None:
    recorded = {path.stem for path in HISTORY_DIR.glob("*.json")}
    assert recorded == WORKFLOW_PATHS


@pytest.mark.parametrize(
    "path",
    sorted(HISTORY_DIR.glob("*.json")),
    ids=lambda p: p.relative_to(HISTORY_DIR).with_suffix("").as_posix(),
)
async def test_recorded_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(f"invoice-{path.stem}", path.read_text())
    replayer = Replayer(
        workflows=REPLAYED_WORKFLOWS,
        data_converter=REPLAY_CONVERTER,
        workflow_runner=workflow_runner(),
    )
    await replayer.replay_workflow(history)
