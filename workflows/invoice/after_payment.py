"""The money after payment: each refund asked for is made at Paystack and followed until
final; each dispute a webhook names is asked of Paystack, and flagged overdue if still open
at its due date."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import NamedTuple

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.paystack import CreateRefundInput, PaystackActivities
    from domain.disputes import Dispute, DisputeResolution, DisputeStatus
    from domain.events import InvoiceEvent
    from domain.invoice import put
    from domain.refunds import (
        Refund,
        RefundOrigin,
        RefundStatus,
        can_move,
        refund_id_for_paystack,
        refund_id_in,
        refunded,
    )
    from paystack.disputes import DisputeRecord
    from paystack.refunds import RefundRecord
    from workflows.policies import MIN_TIMER, PAYSTACK_CALL_TIMEOUT, PAYSTACK_LOOK_RETRY
    from workflows.types import DISPUTE_STATE, REFUND_STATE, dispute_state_of, refund_state_of

from workflows.invoice.base import InvoiceRun

# What the refunds-and-disputes loop waits for, as its timers' summaries say.
REFUND_CHECK = "next refund check"
DISPUTE_DUE = "dispute due"


class Check(NamedTuple):
    """A look at Paystack the refunds-and-disputes watch owes: when, and for what (a
    dispute's due date, or else the refunds' next poll)."""

    moment: datetime
    dispute_id: int | None = None

    @property
    def summary(self) -> str:
        return REFUND_CHECK if self.dispute_id is None else f"{DISPUTE_DUE} {self.dispute_id}"


class AfterPaymentPhase(InvoiceRun):
    # --- refunds ------------------------------------------------------------------

    async def _follow_refunds_and_disputes(self) -> None:
        """Makes each refund asked for at Paystack, then follows those in flight, on every
        refund webhook and on a backoff of durable timers, until each is final or waits
        for an operator (needs_attention); asks Paystack about each dispute a webhook names,
        and flags one still open at its due date. Returns when nothing is left to wait for
        and no request is being answered."""
        while True:
            if unsent := self._unsent_refunds():
                self._restart_refund_polls()
                await self._submit_refund(unsent[0])
                continue
            if self._state.refund_notified:
                self._state.refund_notified = False
                await self._check_refunds()
                continue
            if self._state.disputes_to_check:
                await self._check_dispute(self._state.disputes_to_check.pop(0))
                continue
            checks = self._next_checks()
            if not checks:
                if workflow.all_handlers_finished():
                    return
                await workflow.wait_condition(
                    lambda: self._work_waiting() or workflow.all_handlers_finished()
                )
                continue
            now = workflow.now()
            check = min(checks, key=lambda c: (c.moment, c.summary))  # as recorded runs chose
            if now >= check.moment:
                await self._check_due(check)
                continue
            if self._history_is_long() and workflow.all_handlers_finished():
                self._continue_as_new()
            workflow.set_current_details(
                f"{len(self._followed_refunds())} refund(s) in flight, "
                f"{len(self._awaited_disputes())} dispute(s) open: next check with Paystack "
                f"at {check.moment:%Y-%m-%d %H:%M:%S} UTC"
            )
            try:
                await workflow.wait_condition(
                    self._work_waiting,
                    timeout=max(check.moment - now, MIN_TIMER),
                    timeout_summary=check.summary,
                )
            except TimeoutError:
                pass

    def _next_checks(self) -> list[Check]:
        """When each thing followed is next looked at: the refunds' next poll, and each
        open dispute's due date."""
        checks = [Check(self._state.next_refund_poll_at)] if self._followed_refunds() else []
        for dispute in self._awaited_disputes():
            assert dispute.due_at is not None
            checks.append(Check(dispute.due_at, dispute.dispute_id))
        return checks

    async def _check_due(self, check: Check) -> None:
        if check.dispute_id is not None:
            await self._flag_if_overdue(check.dispute_id)
            return
        self._state.refund_poll_count += 1
        self._state.next_refund_poll_at = workflow.now() + self._refund_poll_interval()
        await self._check_refunds()

    def _work_waiting(self) -> bool:
        return (
            self._state.refund_notified
            or bool(self._unsent_refunds())
            or bool(self._state.disputes_to_check)
        )

    def _unsent_refunds(self) -> list[Refund]:
        """Asked for, and not yet known to Paystack (or not yet found there)."""
        return [
            r
            for r in self._current.refunds
            if r.status is RefundStatus.REQUESTED and r.paystack_refund_id is None
        ]

    def _followed_refunds(self) -> list[Refund]:
        """In flight with Paystack: not final, and not waiting for an operator's retry."""
        return [
            r
            for r in self._current.refunds_in_flight
            if r.status is not RefundStatus.NEEDS_ATTENTION
        ]

    def _restart_refund_polls(self) -> None:
        self._state.refund_poll_count = 0
        self._state.next_refund_poll_at = workflow.now() + self._refund_poll_interval()

    def _refund_poll_interval(self) -> timedelta:
        schedule = self._input.refund_poll_schedule
        return timedelta(seconds=schedule[min(self._state.refund_poll_count, len(schedule) - 1)])

    async def _submit_refund(self, refund: Refund) -> None:
        """Asks Paystack for the refund (the activity first looks for it: never two)."""
        assert refund.paystack_transaction_id is not None
        try:
            record = await workflow.execute_activity_method(
                PaystackActivities.create_refund,
                CreateRefundInput(
                    refund_id=refund.refund_id,
                    transaction_id=refund.paystack_transaction_id,
                    amount=refund.amount,
                    customer_note=refund.reason,
                ),
                task_queue=self._input.paystack_task_queue,
                start_to_close_timeout=PAYSTACK_CALL_TIMEOUT,
                retry_policy=PAYSTACK_LOOK_RETRY,
                summary=f"Paystack refund {refund.refund_id}",
            )
        except ActivityError as error:
            cause = error.cause
            reason = cause.message if isinstance(cause, ApplicationError) else str(cause)
            workflow.logger.warning("Paystack refused refund %s: %s", refund.refund_id, reason)
            current = self._current.refund(refund.refund_id) or refund
            await self._change_refund(
                dataclasses.replace(current, status=RefundStatus.FAILED, failure_reason=reason)
            )
            return
        await self._learn_refund(record)

    async def _check_refunds(self) -> None:
        """Paystack's word on every refund of the invoice's transaction."""
        transaction_id = self._current.paystack_transaction_id
        if transaction_id is None:
            return
        records = await workflow.execute_activity_method(
            PaystackActivities.refunds_of_transaction,
            transaction_id,
            task_queue=self._input.paystack_task_queue,
            start_to_close_timeout=PAYSTACK_CALL_TIMEOUT,
            retry_policy=PAYSTACK_LOOK_RETRY,
            summary="Paystack refunds of the payment",
        )
        for record in records:
            await self._learn_refund(record)

    async def _learn_refund(self, record: RefundRecord) -> None:
        """One of Paystack's refunds: ours (by the id in its merchant_note, or its Paystack
        id) moves forward only; one made outside payrecon is added."""
        invoice = self._current
        ours = refund_id_in(record.merchant_note)
        known = (invoice.refund(ours) if ours else None) or next(
            (r for r in invoice.refunds if r.paystack_refund_id == record.id), None
        )
        status = RefundStatus.from_paystack(record.status)
        if known is None:
            now = workflow.now()
            transaction_id = record.transaction_id or invoice.paystack_transaction_id
            origin = RefundOrigin.DISPUTE if record.dispute_id else RefundOrigin.PAYSTACK_DASHBOARD
            workflow.logger.info("refund %d was made outside payrecon (%s)", record.id, origin)
            await self._change_refund(
                Refund(
                    refund_id=refund_id_for_paystack(record.id),
                    invoice_id=invoice.invoice_id,
                    amount=record.amount,
                    currency=record.currency,
                    status=status,
                    initiated_by=origin.value,
                    created_at=record.created_at or now,
                    updated_at=now,
                    revision=0,
                    paystack_refund_id=record.id,
                    paystack_transaction_id=transaction_id,
                )
            )
            return
        changed = known
        if known.paystack_refund_id is None:
            changed = dataclasses.replace(changed, paystack_refund_id=record.id)
        if can_move(known.status, status):
            changed = dataclasses.replace(changed, status=status)
        if changed is not known:
            await self._change_refund(changed)

    async def _change_refund(self, refund: Refund) -> None:
        """Records one refund's change (its own revision, and its `refund.updated` event),
        then the invoice's move to `partially_refunded` / `refunded` if it makes one."""
        invoice, now = self._current, workflow.now()
        refund = dataclasses.replace(refund, revision=invoice.revision + 1, updated_at=now)
        refunds = put(invoice.refunds, refund, key=lambda r: r.refund_id)
        changed = dataclasses.replace(
            invoice,
            refunds=refunds,
            amount_refunded=refunded(refunds),
            updated_at=now,
            revision=refund.revision,
        )
        self._change(changed, InvoiceEvent.of_refund(changed, refund))
        if state := refund_state_of(refunds):
            workflow.upsert_search_attributes([REFUND_STATE.value_set(state)])
        workflow.logger.info(
            "refund %s of invoice %s is now %s",
            refund.refund_id,
            invoice.invoice_id,
            refund.status.value,
        )
        status = self._current.status_after_refunds()
        if status is not self._status:
            await self._transition(status)
        else:
            await self._record()

    # --- disputes -----------------------------------------------------------------

    def _awaited_disputes(self) -> list[Dispute]:
        """Open, with a due date, not yet flagged overdue: each has a timer."""
        return [
            d
            for d in self._current.disputes
            if d.status.is_open and not d.overdue and d.due_at is not None
        ]

    async def _check_dispute(self, dispute_id: int) -> None:
        """Paystack's word on the dispute a webhook named."""
        record = await self._fetch_dispute(dispute_id)
        if record is not None:
            await self._learn_dispute(record)

    async def _fetch_dispute(self, dispute_id: int) -> DisputeRecord | None:
        try:
            return await workflow.execute_activity_method(
                PaystackActivities.fetch_dispute,
                dispute_id,
                task_queue=self._input.paystack_task_queue,
                start_to_close_timeout=PAYSTACK_CALL_TIMEOUT,
                retry_policy=PAYSTACK_LOOK_RETRY,
                summary=f"Paystack dispute {dispute_id}",
            )
        except ActivityError as error:
            workflow.logger.warning("Paystack refused dispute %d: %s", dispute_id, error.cause)
            return None

    async def _learn_dispute(self, record: DisputeRecord) -> None:
        invoice, now = self._current, workflow.now()
        known = invoice.dispute(record.id)
        status = DisputeStatus.from_paystack(record.status)
        # Overdue stays until it is no longer open, or Paystack gives it a later due date.
        overdue = (
            known is not None
            and known.overdue
            and status.is_open
            and (record.due_at is None or now >= record.due_at)
        )
        learned = Dispute(
            dispute_id=record.id,
            invoice_id=invoice.invoice_id,
            status=status,
            updated_at=now,
            revision=0,
            category=record.category,
            reason=record.reason,
            due_at=record.due_at,
            resolution=(
                DisputeResolution.from_paystack(record.resolution) if record.resolution else None
            ),
            refund_amount=record.refund_amount,
            currency=record.currency,
            overdue=overdue,
        )
        if known is None or not known.same_as(learned):
            await self._change_dispute(learned)

    async def _flag_if_overdue(self, dispute_id: int) -> None:
        """At its due date, a dispute still open (by Paystack's word now) is flagged."""
        record = await self._fetch_dispute(dispute_id)
        if record is not None:
            await self._learn_dispute(record)
        dispute = self._current.dispute(dispute_id)
        assert dispute is not None
        due = dispute.due_at is None or workflow.now() >= dispute.due_at
        if dispute.status.is_open and not dispute.overdue and due:
            workflow.logger.warning(
                "dispute %d of invoice %s is open past its due date", dispute_id, dispute.invoice_id
            )
            await self._change_dispute(dataclasses.replace(dispute, overdue=True))

    async def _change_dispute(self, dispute: Dispute) -> None:
        """Records one dispute's change (its own revision, and its `dispute.updated` event)."""
        invoice, now = self._current, workflow.now()
        dispute = dataclasses.replace(dispute, revision=invoice.revision + 1, updated_at=now)
        disputes = put(invoice.disputes, dispute, key=lambda d: d.dispute_id)
        changed = dataclasses.replace(
            invoice, disputes=disputes, updated_at=now, revision=dispute.revision
        )
        self._change(changed, InvoiceEvent.of_dispute(changed, dispute))
        if state := dispute_state_of(disputes):
            workflow.upsert_search_attributes([DISPUTE_STATE.value_set(state)])
        workflow.logger.info(
            "dispute %d of invoice %s is now %s",
            dispute.dispute_id,
            invoice.invoice_id,
            dispute.status.value,
        )
        await self._record()
