"""One reconciliation run: a window of Paystack's books, matched against ours.

    transactions: one activity per page of GET /transaction (cursor kept here), each
                  matching its page and storing what it found; missed payments healed
    settlements:  one activity per page of GET /settlement, then of each new or changed
                  settlement's GET /settlement/{id}/transactions, added up
    refunds:      one activity per page of GET /refund: a refund payrecon lacks, or holds
                  otherwise, is a mismatch, and its invoice is asked to look again
    disputes:     one activity per page of GET /dispute: one open past its due date is
                  overdue; one payrecon shows otherwise, its invoice is asked to look again
    books:        from our side: paid invoices Paystack does not show paid, paid ones never
                  settled; what this run no longer sees is resolved
    finish:       the run's counts and totals

Pages run on the rate-capped Paystack queue. The workflow keeps only the cursor and running
sums, and continues as new on long windows, so a run killed mid-way goes on where it was.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.reconciliation import (
        AfterPaymentPage,
        AfterPaymentReport,
        BooksCheck,
        HealTarget,
        ReconciliationActivities,
        RunEnd,
        RunStart,
        RunSummary,
        RunWindow,
        SettlementsPage,
        SettlementTransactionsPage,
        Tally,
        TransactionsPage,
    )

RECONCILIATION_SCHEDULE_ID = "payrecon-reconciliation"
DAILY_RECONCILIATION_SCHEDULE_ID = "payrecon-reconciliation-daily"
PAGE_TIMEOUT = timedelta(minutes=2)
# A page Paystack will not serve for this long fails the run (the next one starts over).
PAGE_GIVE_UP = timedelta(minutes=30)
PAGE_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1))
DATABASE_TIMEOUT = timedelta(minutes=10)
# Every activity of the sweep heartbeats while it runs: one whose worker died is retried
# elsewhere this soon, however long its start-to-close timeout.
HEARTBEAT_TIMEOUT = timedelta(seconds=20)
# Pages a run handles before it continues as new: its history stays small.
PAGES_PER_RUN = 250
HEALS_AT_ONCE = 10
# A run reads the settlements dated from its window's start to this long after its end:
# Paystack pays a day's transactions out within days (T+1 in Nigeria).
SETTLEMENTS_WITHIN = timedelta(days=7)


class Trigger(StrEnum):
    SCHEDULED = "scheduled"
    DAILY = "daily"
    ON_DEMAND = "on_demand"


class Phase(StrEnum):
    TRANSACTIONS = "transactions"
    SETTLEMENTS = "settlements"
    SETTLEMENT_TRANSACTIONS = "settlement_transactions"
    REFUNDS = "refunds"
    DISPUTES = "disputes"
    BOOKS = "books"


@dataclass
class Progress:
    """Where a run is: carried across continues-as-new."""

    window: RunWindow
    phase: Phase = Phase.TRANSACTIONS
    cursor: str | None = None
    settlements_page: int = 1
    # Settlements still to add up; the first is under way at `settlement_page`.
    to_add_up: list[int] = field(default_factory=list)
    settlement_page: int = 1
    settlement_amount: int = 0
    settlement_fees: int = 0
    tally: Tally = field(default_factory=Tally)
    # The page of GET /refund or GET /dispute under way.
    after_payment_page: int = 1


@dataclass
class ReconciliationInput:
    trigger: Trigger
    page_size: int
    unsettled_after_seconds: float
    paystack_task_queue: str
    # On demand: the window. Scheduled: the trailing window, ending `grace` before now.
    # Daily: the whole previous UTC day.
    window_from: datetime | None = None
    window_to: datetime | None = None
    trailing_seconds: float = 86400.0
    grace_seconds: float = 600.0
    requested_by: str | None = None
    progress: Progress | None = None


def window_of(input: ReconciliationInput, run_id: str, now: datetime) -> RunWindow:
    if input.window_from is not None and input.window_to is not None:
        since, until = input.window_from, input.window_to
    elif input.trigger is Trigger.DAILY:
        until = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        since = until - timedelta(days=1)
    else:
        until = (now - timedelta(seconds=input.grace_seconds)).replace(microsecond=0)
        since = until - timedelta(seconds=input.trailing_seconds)
    # Paystack keeps and filters times to the millisecond: so does a window, or a record made
    # in the window's first millisecond would show as before it.
    return RunWindow(
        run_id=run_id,
        since=_to_millisecond(since),
        until=_to_millisecond(until),
        page_size=input.page_size,
    )


def _to_millisecond(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


@workflow.defn(name="Reconciliation")
class ReconciliationWorkflow:
    @workflow.run
    async def run(self, input: ReconciliationInput) -> RunSummary:
        self._input = input
        progress = input.progress or await self._begin()
        pages_here = 0
        try:
            while progress.phase is not Phase.BOOKS:
                await self._next_page(progress)
                pages_here += 1
                if pages_here >= PAGES_PER_RUN or workflow.info().is_continue_as_new_suggested():
                    workflow.continue_as_new(replace(input, progress=progress))
            await self._activity(
                ReconciliationActivities.check_books,
                BooksCheck(progress.window, input.unsettled_after_seconds, workflow.now()),
                paystack=True,
            )
        except ActivityError as error:
            await self._finish(progress, error=str(error.cause or error))
            raise
        return await self._finish(progress)

    async def _begin(self) -> Progress:
        run_id = workflow.info().workflow_id
        window = window_of(self._input, run_id, workflow.now())
        start = RunStart(
            window, self._input.trigger.value, workflow.now(), self._input.requested_by
        )
        await self._activity(ReconciliationActivities.start_run, start)
        return Progress(window=window)

    async def _next_page(self, progress: Progress) -> None:
        window = progress.window
        if progress.phase is Phase.TRANSACTIONS:
            report = await self._activity(
                ReconciliationActivities.reconcile_transactions_page,
                TransactionsPage(window, progress.cursor),
                paystack=True,
            )
            progress.tally.add(report.tally)
            await self._heal(report.to_heal)
            progress.cursor = report.next_cursor
            if report.next_cursor is None:
                progress.phase = Phase.SETTLEMENTS
        elif progress.phase is Phase.SETTLEMENTS:
            # Settlements paying out the window's transactions are dated after it.
            until = window.until + SETTLEMENTS_WITHIN
            listed = await self._activity(
                ReconciliationActivities.reconcile_settlements_page,
                SettlementsPage(window, window.since, until, progress.settlements_page),
                paystack=True,
            )
            progress.tally.add(listed.tally)
            progress.to_add_up.extend(listed.to_add_up)
            if listed.next_page is None:
                progress.phase = Phase.SETTLEMENT_TRANSACTIONS
            else:
                progress.settlements_page = listed.next_page
        elif progress.phase in (Phase.REFUNDS, Phase.DISPUTES):
            await self._after_payment_page(progress)
        elif not progress.to_add_up:
            progress.phase = Phase.REFUNDS
        else:
            added = await self._activity(
                ReconciliationActivities.reconcile_settlement_transactions_page,
                SettlementTransactionsPage(
                    window,
                    progress.to_add_up[0],
                    progress.settlement_page,
                    progress.settlement_amount,
                    progress.settlement_fees,
                ),
                paystack=True,
            )
            progress.tally.add(added.tally)
            if added.next_page is None:
                progress.to_add_up.pop(0)
                progress.settlement_page, progress.settlement_amount = 1, 0
                progress.settlement_fees = 0
            else:
                progress.settlement_page = added.next_page
                progress.settlement_amount, progress.settlement_fees = added.amount, added.fees

    async def _after_payment_page(self, progress: Progress) -> None:
        refunds = progress.phase is Phase.REFUNDS
        report: AfterPaymentReport = await self._activity(
            ReconciliationActivities.reconcile_refunds_page
            if refunds
            else ReconciliationActivities.reconcile_disputes_page,
            AfterPaymentPage(progress.window, progress.after_payment_page),
            paystack=True,
        )
        progress.tally.add(report.tally)
        for target in report.to_notify:
            await self._activity(ReconciliationActivities.notify_invoice, target)
        if report.next_page is not None:
            progress.after_payment_page = report.next_page
            return
        progress.after_payment_page = 1
        progress.phase = Phase.DISPUTES if refunds else Phase.BOOKS

    async def _heal(self, targets: list[HealTarget]) -> None:
        """Each missed payment's invoice verifies now, through its own workflow."""
        for start in range(0, len(targets), HEALS_AT_ONCE):
            await asyncio.gather(
                *(
                    self._activity(ReconciliationActivities.heal_missed_payment, target)
                    for target in targets[start : start + HEALS_AT_ONCE]
                )
            )

    async def _finish(self, progress: Progress, error: str | None = None) -> RunSummary:
        end = RunEnd(progress.window, progress.tally, workflow.now(), error)
        summary: RunSummary = await self._activity(ReconciliationActivities.finish_run, end)
        return summary

    async def _activity(self, method: Any, argument: Any, *, paystack: bool = False) -> Any:
        if paystack:
            return await workflow.execute_activity_method(
                method,
                argument,
                task_queue=self._input.paystack_task_queue,
                start_to_close_timeout=PAGE_TIMEOUT,
                schedule_to_close_timeout=PAGE_GIVE_UP,
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                retry_policy=PAGE_RETRY,
            )
        return await workflow.execute_activity_method(
            method,
            argument,
            start_to_close_timeout=DATABASE_TIMEOUT,
            schedule_to_close_timeout=PAGE_GIVE_UP,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=PAGE_RETRY,
        )
