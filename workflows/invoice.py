"""The invoice state machine: one workflow per invoice.

Read `run` top to bottom; it follows the lifecycle in the README's "How it works":

    create     Paystack initialize -> payment link -> record `pending`
    watch      until the due date: verify on every new payment notice and every poll
    close      at the due date or on cancel: one last verify, then `expired` / `cancelled`
               (or `paid` / `needs_review` if Paystack says it was paid)
    late       keep watching for a late payment, which becomes `needs_review`;
               one last verify as the window closes
    refunds    each refund asked for is made at Paystack, then followed on every refund
               webhook and on a backoff of durable timers until it is final (or waits for
               an operator); processed refunds make it `partially_refunded` / `refunded`
    disputes   each dispute a webhook names is asked of Paystack; one still open at its
               due date is flagged overdue
    done       once every handler has finished

Every transition, once recorded, is told to others by a workflow of its own
(workflows/events.py), started by an activity: the merchant's endpoints and, for some, the
customer.

A run whose history grows long hands its state to a fresh run (continue-as-new). A run
started on a completed invoice (woken by a request months later, see workflows/starter.py)
resumes from the invoice's record, answers the request, and completes again.

Only Paystack's verify decides: a webhook is a reason to verify, never proof of payment.
The same holds for refunds: Paystack's list of the transaction's refunds decides.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any, NamedTuple, NoReturn

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import TimeoutError as TemporalTimeoutError
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from activities.announce import Announcer
    from activities.database import DatabaseActivities
    from activities.paystack import (
        CreateRefundInput,
        InitializeInput,
        PaystackActivities,
        ResolveDisputeInput,
        RetryRefundInput,
    )
    from domain.disputes import Dispute, DisputeResolution, DisputeStatus
    from domain.errors import ErrorType
    from domain.events import InvoiceEvent
    from domain.invoice import (
        InvoiceSnapshot,
        InvoiceStatus,
        ReviewReason,
        paystack_reference_for,
        put,
    )
    from domain.reconcile import Outcome, Verification, reconcile
    from domain.refunds import (
        Refund,
        RefundOrigin,
        RefundStatus,
        can_move,
        refund_id_for_paystack,
        refund_id_in,
        refunded,
    )
    from paystack.client import PaymentLink
    from paystack.disputes import DisputeRecord
    from paystack.refunds import RefundRecord
    from workflows.events import EventInput
    from workflows.policies import (
        INITIALIZE_ATTEMPTS,
        INITIALIZE_CALL_TIMEOUT,
        INITIALIZE_DEADLINE,
        INITIALIZE_RETRY,
        LOCAL_ACTIVITY_FAILURES,
        MAX_NOTICES,
        MAX_PAYSTACK_REFERENCES,
        MIN_TIMER,
        NOTICE_VERIFY_RETRY,
        PAYSTACK_CALL_TIMEOUT,
        RECORD_RETRY,
        RECORD_TIMEOUT,
        REFUND_CALL_RETRY,
        REFUND_RETRY_ATTEMPTS,
        VERIFY_NOW_INTERVAL,
        VERIFY_RETRY,
    )
    from workflows.types import (
        CUSTOMER_EMAIL,
        DISPUTE_STATE,
        INVOICE_STATUS,
        REFUND_STATE,
        CarriedState,
        DisputeAnswer,
        DisputeDecision,
        DisputeNotice,
        InvoiceWorkflowInput,
        OpenedInvoice,
        OpenInvoice,
        PaymentCheck,
        PaymentNotice,
        RefundAnswer,
        RefundNotice,
        RefundRequest,
        RefundRetry,
        dispute_state_of,
        refund_state_of,
        search_attributes_of,
    )

# Versions of this workflow, for `workflow.patched` (histories of each still replay).
LOCAL_NOTICE_VERIFY = "local-notice-verify"
RESUME_FROM_RECORD = "resume-from-record"
INITIALIZE_DEADLINE_BY_TIMER = "initialize-deadline-by-timer"
TELL_OTHERS = "tell-others"
ANNOUNCE_WHEN_RESUMED = "announce-when-resumed"
ANNOUNCE_BY_ACTIVITY = "announce-by-activity"
LATE_WINDOW_SKIPPED_ONLY_WHEN_WOKEN = "late-window-skipped-only-when-woken"

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


LATE_PAYMENT_REASON = {
    InvoiceStatus.EXPIRED: ReviewReason.PAID_AFTER_EXPIRY,
    InvoiceStatus.CANCELLED: ReviewReason.PAID_AFTER_CANCEL,
}
WATCHED_STATUSES = (InvoiceStatus.PENDING, InvoiceStatus.EXPIRED, InvoiceStatus.CANCELLED)


@workflow.defn
class InvoiceWorkflow:
    @workflow.init
    def __init__(self, input: InvoiceWorkflowInput) -> None:
        self._input = input
        self._invoice: InvoiceSnapshot | None = None
        self._recorded_revision = 0
        # Whether this run created the invoice, or resumed it from its record.
        self._created_here = False
        self._resumed = False
        self._creation_error: tuple[str, str] | None = None
        self._payment_notified = False
        self._seen_notices: set[str] = set()
        self._cancel_requested = False
        self._poll_count = 0
        self._next_poll_at = workflow.now()
        # Paystack's last answer (when, and its status), and whether a check-now is asking.
        self._last_verified: tuple[datetime, str | None] | None = None
        self._checking_now = False
        # Refunds: a refund webhook came (ask Paystack), and the backoff of checks.
        self._refund_notified = False
        self._refund_poll_count = 0
        self._next_refund_poll_at = workflow.now()
        # Disputes a webhook named, to ask Paystack about.
        self._disputes_to_check: list[int] = []
        if input.carried is not None:
            self._resume(input.carried)

    @workflow.run
    async def run(self, input: InvoiceWorkflowInput) -> InvoiceSnapshot:
        invoice = self._invoice or await self._resume_from_record() or await self._create()
        await self._watch_until(invoice.due_at)
        if self._status is InvoiceStatus.PENDING:
            await self._close_unpaid(
                InvoiceStatus.CANCELLED if self._cancel_requested else InvoiceStatus.EXPIRED
            )
        if self._status in LATE_PAYMENT_REASON:
            window_closes = self._current.updated_at + timedelta(seconds=input.late_payment_window)
            if not self._woken_after(window_closes):
                await self._watch_until(window_closes)
                if self._status in LATE_PAYMENT_REASON:
                    # A last look before letting go: a payment during the window is never
                    # missed, even when the worker was down as the window closed.
                    await self._check_payment()
        await self._follow_refunds_and_disputes()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._current

    def _woken_after(self, window_closes: datetime) -> bool:
        """A run woken on a completed invoice after its late window closed only answers
        what woke it. Not so a run that found its own record (its first task was lost after
        recording): it watches the window, and takes its last look, as any other."""
        if not (self._resumed and workflow.now() >= window_closes):
            return False
        return self._input.resume_only or not workflow.patched(LATE_WINDOW_SKIPPED_ONLY_WHEN_WOKEN)

    # --- create, or resume ---------------------------------------------------------

    async def _resume_from_record(self) -> InvoiceSnapshot | None:
        """The invoice as an earlier run left it, if there was one: this run was started
        on a completed invoice, or after a run was terminated. Never a second Paystack
        transaction for one invoice."""
        if not workflow.patched(RESUME_FROM_RECORD):
            return None
        invoice_id = self._input.request.invoice_id
        recorded = await workflow.execute_local_activity_method(
            DatabaseActivities.load_invoice,
            invoice_id,
            start_to_close_timeout=RECORD_TIMEOUT,
            retry_policy=RECORD_RETRY,
            summary="load the invoice's record",
        )
        if recorded is None:
            if self._input.resume_only:
                await self._give_up(ErrorType.INVOICE_NOT_FOUND, f"no invoice {invoice_id}")
            return None
        self._invoice = recorded
        self._recorded_revision = recorded.revision
        self._resumed = True
        # CustomerEmail only if this run started with it: the starter decided (a setting).
        started_with_email = workflow.info().typed_search_attributes.get(CUSTOMER_EMAIL) is not None
        workflow.upsert_search_attributes(
            search_attributes_of(recorded, customer_email=started_with_email)
        )
        workflow.logger.info(
            "invoice %s resumed from its record at revision %d", invoice_id, recorded.revision
        )
        if workflow.patched(ANNOUNCE_WHEN_RESUMED):
            # A run that recorded a transition and died before telling it leaves the record
            # alone to say so: tell it now (nothing, if it was told).
            await self._announce()
        return recorded

    async def _create(self) -> InvoiceSnapshot:
        request = self._input.request
        attempt = 1
        while True:
            reference = paystack_reference_for(request.invoice_id, attempt)
            try:
                link = await self._initialize(reference)
                break
            except LOCAL_ACTIVITY_FAILURES as error:
                cause = _cause(error)
                # Paystack holds this reference already (an answer lost on the way back, or
                # an earlier failed run): its link is unknowable, and no customer has it.
                duplicate = (
                    isinstance(cause, ApplicationError)
                    and cause.type == ErrorType.DUPLICATE_REFERENCE
                )
                if duplicate and attempt < MAX_PAYSTACK_REFERENCES:
                    attempt += 1
                    continue
                await self._fail_creation(error)

        now = workflow.now()
        self._invoice = InvoiceSnapshot.opened(
            request,
            workflow_id=workflow.info().workflow_id,
            at=now,
            authorization_url=link.authorization_url,
            access_code=link.access_code,
            paystack_reference=link.reference,
        )
        self._created_here = True
        self._next_poll_at = now + self._poll_interval()
        await self._record()
        await self._announce()
        return self._invoice

    async def _initialize(self, reference: str) -> PaymentLink:
        # A local activity: the caller waits for the link, and this saves two trips through
        # the server. Creates are paced by the API; polls and verifies by the capped queue.
        request = self._input.request
        payment = InitializeInput(
            reference=reference,
            email=request.customer_email,
            amount=request.amount,
            currency=request.currency,
            metadata={**request.metadata, "invoice_id": request.invoice_id},
        )
        if not workflow.patched(INITIALIZE_DEADLINE_BY_TIMER):
            return await workflow.execute_local_activity_method(
                PaystackActivities.initialize_transaction,
                payment,
                start_to_close_timeout=PAYSTACK_CALL_TIMEOUT,
                schedule_to_close_timeout=INITIALIZE_DEADLINE,
                retry_policy=INITIALIZE_RETRY,
                summary=f"Paystack initialize {reference}",
            )
        # The server does not hold a local activity's retries to its schedule-to-close
        # timeout: with Paystack down they went on for minutes, a workflow task every 8 s.
        # So the attempts are counted, and the deadline is the workflow's own timer.
        initializing = workflow.start_local_activity_method(
            PaystackActivities.initialize_transaction,
            payment,
            start_to_close_timeout=INITIALIZE_CALL_TIMEOUT,
            retry_policy=INITIALIZE_ATTEMPTS,
            cancellation_type=ActivityCancellationType.TRY_CANCEL,
            summary=f"Paystack initialize {reference}",
        )
        try:
            await workflow.wait_condition(initializing.done, timeout=INITIALIZE_DEADLINE)
        except TimeoutError:
            initializing.cancel()
            raise ApplicationError(
                "Paystack did not answer in time", type=ErrorType.PAYSTACK_UNAVAILABLE
            ) from None
        return initializing.result()

    async def _fail_creation(
        self, error: ActivityError | ApplicationError | TemporalTimeoutError
    ) -> NoReturn:
        cause = _cause(error)
        if isinstance(cause, ApplicationError) and cause.type:
            await self._give_up(cause.type, cause.message)
        await self._give_up(ErrorType.PAYSTACK_UNAVAILABLE, "Paystack did not answer in time")

    async def _give_up(self, error_type: str, message: str) -> NoReturn:
        """Ends a run that has no invoice: handlers answer with the reason first."""
        self._creation_error = (error_type, message)
        await workflow.wait_condition(workflow.all_handlers_finished)
        raise ApplicationError(
            f"invoice not created: {message}",
            type=ErrorType.INVOICE_NOT_CREATED,
            non_retryable=True,
        )

    # --- watch --------------------------------------------------------------------

    async def _watch_until(self, deadline: datetime) -> None:
        """Verify on every new payment notice and on every poll, until the deadline
        passes, a cancel is requested or Paystack's answer settles the invoice."""
        while self._status in WATCHED_STATUSES:
            now = workflow.now()
            if now >= deadline or self._cancel_pending():
                return
            await self._continue_as_new_if_suggested()
            if self._payment_notified:
                self._payment_notified = False
                await self._check_payment(on_notice=True)
                # Paystack may not show the charge yet: look again soon, not hours later.
                self._next_poll_at = min(self._next_poll_at, now + self._first_poll_interval())
            elif now >= self._next_poll_at:
                self._poll_count += 1
                self._next_poll_at = now + self._poll_interval()
                await self._check_payment()
            else:
                await self._wait_for_news(until=min(self._next_poll_at, deadline))

    async def _wait_for_news(self, until: datetime) -> None:
        invoice = self._current
        workflow.set_current_details(
            f"{invoice.status.value}: waiting for a payment notice or the next check at "
            f"{until:%Y-%m-%d %H:%M:%S} UTC (due {invoice.due_at:%Y-%m-%d %H:%M:%S} UTC)"
        )
        try:
            await workflow.wait_condition(
                lambda: self._payment_notified or self._cancel_pending(),
                timeout=max(until - workflow.now(), MIN_TIMER),
                timeout_summary="next poll or due date",
            )
        except TimeoutError:
            pass

    def _first_poll_interval(self) -> timedelta:
        return timedelta(seconds=self._input.poll_schedule[0])

    def _poll_interval(self) -> timedelta:
        schedule = self._input.poll_schedule
        return timedelta(seconds=schedule[min(self._poll_count, len(schedule) - 1)])

    def _cancel_pending(self) -> bool:
        return self._cancel_requested and self._status is InvoiceStatus.PENDING

    async def _check_payment(self, *, on_notice: bool = False) -> None:
        if on_notice and workflow.patched(LOCAL_NOTICE_VERIFY):
            verification = await self._verify_on_notice()
        else:
            verification = await self._verify()
        if verification is not None:
            self._last_verified = (workflow.now(), verification.status)
            await self._apply(verification)

    async def _apply(self, verification: Verification) -> None:
        invoice = self._current
        outcome = reconcile(invoice.amount, invoice.currency, verification)
        if outcome is Outcome.NOT_PAID or invoice.status not in WATCHED_STATUSES:
            return
        payment: dict[str, Any] = {
            "paid_at": verification.paid_at,
            "amount_paid": verification.amount,
            "paystack_transaction_id": verification.transaction_id,
        }
        if invoice.status in LATE_PAYMENT_REASON:
            reason = LATE_PAYMENT_REASON[invoice.status]
            await self._transition(InvoiceStatus.NEEDS_REVIEW, review_reason=reason, **payment)
        elif outcome is Outcome.PAID:
            await self._transition(InvoiceStatus.PAID, **payment)
        else:
            reason = ReviewReason(outcome.value)
            await self._transition(InvoiceStatus.NEEDS_REVIEW, review_reason=reason, **payment)

    # --- close --------------------------------------------------------------------

    async def _close_unpaid(self, status: InvoiceStatus) -> None:
        """Never expire or cancel blind: Paystack's last word comes first."""
        verification = await self._verify()
        while verification is None:
            await workflow.sleep(self._poll_interval(), summary="retry last verify")
            verification = await self._verify()
        await self._apply(verification)
        if self._status is InvoiceStatus.PENDING:
            await self._transition(status)

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
            if self._refund_notified:
                self._refund_notified = False
                await self._check_refunds()
                continue
            if self._disputes_to_check:
                await self._check_dispute(self._disputes_to_check.pop(0))
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
        checks = [Check(self._next_refund_poll_at)] if self._followed_refunds() else []
        for dispute in self._awaited_disputes():
            assert dispute.due_at is not None
            checks.append(Check(dispute.due_at, dispute.dispute_id))
        return checks

    async def _check_due(self, check: Check) -> None:
        if check.dispute_id is not None:
            await self._flag_if_overdue(check.dispute_id)
            return
        self._refund_poll_count += 1
        self._next_refund_poll_at = workflow.now() + self._refund_poll_interval()
        await self._check_refunds()

    def _work_waiting(self) -> bool:
        return (
            self._refund_notified or bool(self._unsent_refunds()) or bool(self._disputes_to_check)
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
        self._refund_poll_count = 0
        self._next_refund_poll_at = workflow.now() + self._refund_poll_interval()

    def _refund_poll_interval(self) -> timedelta:
        schedule = self._input.refund_poll_schedule
        return timedelta(seconds=schedule[min(self._refund_poll_count, len(schedule) - 1)])

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
                retry_policy=REFUND_CALL_RETRY,
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
            retry_policy=REFUND_CALL_RETRY,
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
        self._invoice = dataclasses.replace(
            invoice,
            refunds=refunds,
            amount_refunded=refunded(refunds),
            updated_at=now,
            revision=refund.revision,
        )
        if state := refund_state_of(refunds):
            workflow.upsert_search_attributes([REFUND_STATE.value_set(state)])
        workflow.logger.info(
            "refund %s of invoice %s is now %s",
            refund.refund_id,
            invoice.invoice_id,
            refund.status.value,
        )
        await self._record()
        await self._announce(InvoiceEvent.of_refund(self._current, refund))
        status = self._current.status_after_refunds()
        if status is not self._status:
            await self._transition(status)

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
                retry_policy=REFUND_CALL_RETRY,
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
                "dispute %d of invoice %s is open past its due date",
                dispute_id,
                dispute.invoice_id,
            )
            await self._change_dispute(dataclasses.replace(dispute, overdue=True))

    async def _change_dispute(self, dispute: Dispute) -> None:
        """Records one dispute's change (its own revision, and its `dispute.updated` event)."""
        invoice, now = self._current, workflow.now()
        dispute = dataclasses.replace(dispute, revision=invoice.revision + 1, updated_at=now)
        disputes = put(invoice.disputes, dispute, key=lambda d: d.dispute_id)
        self._invoice = dataclasses.replace(
            invoice, disputes=disputes, updated_at=now, revision=dispute.revision
        )
        if state := dispute_state_of(disputes):
            workflow.upsert_search_attributes([DISPUTE_STATE.value_set(state)])
        workflow.logger.info(
            "dispute %d of invoice %s is now %s",
            dispute.dispute_id,
            invoice.invoice_id,
            dispute.status.value,
        )
        await self._record()
        await self._announce(InvoiceEvent.of_dispute(self._current, dispute))

    # --- long histories ---------------------------------------------------------

    async def _continue_as_new_if_suggested(self) -> None:
        """Hands the state to a fresh run once the history grows long; returns (and the
        watch goes on) if a cancel arrives while handlers finish."""
        if not self._history_is_long():
            return
        await workflow.wait_condition(
            lambda: workflow.all_handlers_finished() or self._cancel_pending()
        )
        if self._cancel_pending():
            return
        self._continue_as_new()

    def _continue_as_new(self) -> NoReturn:
        carried = CarriedState(
            invoice=self._current,
            poll_count=self._poll_count,
            next_poll_at=self._next_poll_at,
            seen_notices=sorted(self._seen_notices),
            payment_notified=self._payment_notified,
            cancel_requested=self._cancel_requested,
            refund_poll_count=self._refund_poll_count,
            next_refund_poll_at=self._next_refund_poll_at,
            refund_notified=self._refund_notified,
            disputes_to_check=list(self._disputes_to_check),
        )
        workflow.continue_as_new(dataclasses.replace(self._input, carried=carried))

    def _history_is_long(self) -> bool:
        info, limit = workflow.info(), self._input.continue_as_new_after_events
        suggested = info.is_continue_as_new_suggested()
        return suggested or (limit is not None and info.get_current_history_length() >= limit)

    def _resume(self, carried: CarriedState) -> None:
        self._invoice = carried.invoice
        self._recorded_revision = carried.invoice.revision
        self._poll_count = carried.poll_count
        self._next_poll_at = carried.next_poll_at
        self._seen_notices = set(carried.seen_notices)
        self._payment_notified = carried.payment_notified
        self._cancel_requested = carried.cancel_requested
        self._refund_poll_count = carried.refund_poll_count
        if carried.next_refund_poll_at is not None:
            self._next_refund_poll_at = carried.next_refund_poll_at
        self._refund_notified = carried.refund_notified
        self._disputes_to_check = list(carried.disputes_to_check)

    # --- side effects -------------------------------------------------------------

    async def _verify(self) -> Verification | None:
        """Paystack's answer, or None when it refused the call (a 4xx: configuration)."""
        try:
            return await workflow.execute_activity_method(
                PaystackActivities.verify_transaction,
                self._current.paystack_reference or self._current.invoice_id,
                task_queue=self._input.paystack_task_queue,
                start_to_close_timeout=PAYSTACK_CALL_TIMEOUT,
                retry_policy=VERIFY_RETRY,
                summary="Paystack verify",
            )
        except ActivityError as error:
            workflow.logger.warning("Paystack refused verify: %s", error.cause)
            return None

    async def _verify_on_notice(self) -> Verification | None:
        """Verify at once, on this worker; the capped queue's verify if Paystack is slow."""
        try:
            return await workflow.execute_local_activity_method(
                PaystackActivities.verify_transaction,
                self._current.paystack_reference or self._current.invoice_id,
                start_to_close_timeout=PAYSTACK_CALL_TIMEOUT,
                retry_policy=NOTICE_VERIFY_RETRY,
                summary="Paystack verify on payment notice",
            )
        except LOCAL_ACTIVITY_FAILURES as error:
            cause = _cause(error)
            if isinstance(cause, ApplicationError) and cause.type in (
                ErrorType.PAYSTACK_REJECTED,
                ErrorType.PAYSTACK_UNAUTHORIZED,
            ):
                workflow.logger.warning("Paystack refused verify: %s", cause)
                return None
            workflow.logger.warning("verify on notice gave up, queueing it: %s", cause)
            return await self._verify()

    async def _transition(self, status: InvoiceStatus, **changes: Any) -> None:
        invoice = self._current
        self._invoice = dataclasses.replace(
            invoice,
            status=status,
            updated_at=workflow.now(),
            revision=invoice.revision + 1,
            **changes,
        )
        workflow.upsert_search_attributes([INVOICE_STATUS.value_set(status.value)])
        workflow.logger.info("invoice %s is now %s", invoice.invoice_id, status.value)
        await self._record()
        await self._announce()

    async def _record(self) -> None:
        # Local: a short, idempotent write that the next step waits for.
        snapshot = self._current
        await workflow.execute_local_activity_method(
            DatabaseActivities.record_invoice,
            snapshot,
            start_to_close_timeout=RECORD_TIMEOUT,
            retry_policy=RECORD_RETRY,
            summary=f"record {snapshot.status.value}",
        )
        self._recorded_revision = max(self._recorded_revision, snapshot.revision)

    async def _announce(self, event: InvoiceEvent | None = None) -> None:
        """Starts the workflow that tells others of the change just recorded (by default,
        the invoice's transition): it goes on after this run ends, and this run never
        waits for its deliveries."""
        if not workflow.patched(TELL_OTHERS):
            return
        event = event or InvoiceEvent.of(self._current)
        announcement = EventInput(event_id=event.event_id, policy=self._input.events, event=event)
        summary = f"tell {event.type.value}"
        if workflow.patched(ANNOUNCE_BY_ACTIVITY):
            # A regular activity: it is scheduled by the same task that answers the caller
            # (a create, a check-now), which so never waits for the start of another workflow.
            await workflow.execute_activity_method(
                Announcer.announce_event,
                announcement,
                start_to_close_timeout=RECORD_TIMEOUT,
                retry_policy=RECORD_RETRY,
                summary=summary,
            )
            return
        await workflow.execute_local_activity_method(
            Announcer.announce_event,
            announcement,
            start_to_close_timeout=RECORD_TIMEOUT,
            retry_policy=RECORD_RETRY,
            summary=summary,
        )

    # --- messages -----------------------------------------------------------------

    @workflow.update
    async def open_invoice(self, request: OpenInvoice) -> OpenedInvoice:
        """Answers POST /invoices once the payment link is recorded."""
        await workflow.wait_condition(
            lambda: self._recorded_revision >= 1 or self._creation_error is not None
        )
        self._raise_creation_error()
        invoice = self._current
        if request.fingerprint != invoice.fingerprint:  # a run resumed for another body
            raise _idempotency_conflict()
        created = self._created_here and request.request_id == self._input.request_id
        return OpenedInvoice(invoice=invoice, created=created)

    @open_invoice.validator
    def _validate_open_invoice(self, request: OpenInvoice) -> None:
        known = self._invoice.fingerprint if self._invoice else self._input.request.fingerprint
        if request.fingerprint != known:
            raise _idempotency_conflict()

    @workflow.update
    async def verify(self) -> InvoiceSnapshot:
        """Ask Paystack now, whatever the invoice's state, and answer the invoice as it
        stands after that verify (the operator's `payrecon invoices reverify`)."""
        await self._created()
        await self._check_payment()
        await workflow.wait_condition(lambda: self._recorded_revision >= self._current.revision)
        return self._current

    @workflow.update
    async def check_now(self) -> PaymentCheck:
        """POST /invoices/{id}/verify and the checkout return: ask Paystack now, unless it
        was asked within VERIFY_NOW_INTERVAL (or is being asked), and answer the invoice as
        it stands after that, with Paystack's status."""
        await self._created()
        if self._checking_now:
            await workflow.wait_condition(lambda: not self._checking_now)
        elif not self._verified_within(VERIFY_NOW_INTERVAL):
            self._checking_now = True
            try:
                await self._check_payment()
            finally:
                self._checking_now = False
        await workflow.wait_condition(lambda: self._recorded_revision >= self._current.revision)
        verified_at, paystack_status = self._last_verified or (None, None)
        return PaymentCheck(
            invoice=self._current, paystack_status=paystack_status, verified_at=verified_at
        )

    def _verified_within(self, interval: timedelta) -> bool:
        return (
            self._last_verified is not None and workflow.now() - self._last_verified[0] < interval
        )

    @workflow.update
    async def cancel(self) -> InvoiceSnapshot:
        """Answers POST /invoices/{id}/cancel after the last verify: cancelled, or paid."""
        self._cancel_requested = True
        await workflow.wait_condition(
            lambda: (
                self._status is not InvoiceStatus.PENDING
                and self._recorded_revision >= self._current.revision
            )
        )
        if self._status is InvoiceStatus.EXPIRED:
            # The due date's last verify was already under way when the cancel came.
            raise ApplicationError("the invoice is already expired", type=ErrorType.INVOICE_FINAL)
        return self._current

    @cancel.validator
    def _validate_cancel(self) -> None:
        if self._invoice is None:
            raise ApplicationError(
                "the invoice is still being created", type=ErrorType.INVOICE_NOT_READY
            )
        if self._invoice.status.is_final:
            raise ApplicationError(
                f"the invoice is already {self._invoice.status.value}",
                type=ErrorType.INVOICE_FINAL,
            )

    @workflow.update
    async def refund(self, request: RefundRequest) -> RefundAnswer:
        """POST /invoices/{id}/refunds: takes the refund from what is refundable at once (so
        concurrent requests never refund more than was paid), then answers once Paystack
        has queued it, or after `refund_answer_within` with the refund still `requested`
        (it goes on)."""
        await self._created()
        invoice = self._current
        existing = invoice.refund(request.refund_id)
        if existing is not None:
            if existing.fingerprint != request.fingerprint:
                raise _idempotency_conflict()
            return await self._answer_refund(request.refund_id, created=False)
        available = invoice.refundable
        if available == 0:
            raise ApplicationError(
                f"the invoice holds no refundable money (it is {invoice.status.value}, "
                f"{invoice.amount_refunded} refunded)",
                type=ErrorType.NOTHING_TO_REFUND,
            )
        amount = available if request.amount is None else request.amount
        if amount > available:
            raise ApplicationError(
                f"amount {amount} is more than the {available} left to refund",
                type=ErrorType.REFUND_TOO_LARGE,
            )
        now = workflow.now()
        await self._change_refund(
            Refund(
                refund_id=request.refund_id,
                invoice_id=invoice.invoice_id,
                amount=amount,
                currency=invoice.currency,
                status=RefundStatus.REQUESTED,
                initiated_by=request.initiated_by,
                created_at=now,
                updated_at=now,
                revision=0,
                reason=request.reason,
                paystack_transaction_id=invoice.paystack_transaction_id,
                idempotency_key=request.idempotency_key,
                fingerprint=request.fingerprint,
            )
        )
        try:
            await workflow.wait_condition(
                lambda: not self._awaits_paystack(request.refund_id),
                timeout=timedelta(seconds=self._input.refund_answer_within),
                timeout_summary="Paystack's answer to the refund",
            )
        except TimeoutError:
            pass
        return await self._answer_refund(request.refund_id, created=True)

    def _awaits_paystack(self, refund_id: str) -> bool:
        refund = self._current.refund(refund_id)
        return refund is not None and refund.status is RefundStatus.REQUESTED

    async def _answer_refund(self, refund_id: str, *, created: bool) -> RefundAnswer:
        await workflow.wait_condition(lambda: self._recorded_revision >= self._current.revision)
        refund = self._current.refund(refund_id)
        assert refund is not None
        if refund.status is RefundStatus.FAILED and refund.paystack_refund_id is None:
            raise ApplicationError(
                refund.failure_reason or "the refund", type=ErrorType.PAYSTACK_REFUSED
            )
        return RefundAnswer(invoice=self._current, refund=refund, created=created)

    @workflow.update
    async def retry_refund(self, retry: RefundRetry) -> RefundAnswer:
        """POST /refunds/{id}/retry: Paystack's retry, with the customer's bank account, of
        a refund that needs attention; then followed again as any refund in flight."""
        await self._created()
        refund = self._current.refund(retry.refund_id)
        if refund is None:
            raise ApplicationError(f"no refund {retry.refund_id}", type=ErrorType.REFUND_NOT_FOUND)
        if refund.status is not RefundStatus.NEEDS_ATTENTION or refund.paystack_refund_id is None:
            raise ApplicationError(
                f"the refund is {refund.status.value}: only a refund that needs attention "
                "can be retried",
                type=ErrorType.REFUND_NOT_RETRYABLE,
            )
        record = await self._operator_call(
            PaystackActivities.retry_refund,
            RetryRefundInput(
                paystack_refund_id=refund.paystack_refund_id,
                currency=retry.currency,
                account_number=retry.account_number,
                bank_id=retry.bank_id,
            ),
            f"Paystack retry of refund {refund.refund_id}",
        )
        self._restart_refund_polls()
        await self._learn_refund(record)
        return await self._answer_refund(refund.refund_id, created=False)

    @workflow.update
    async def resolve_dispute(self, decision: DisputeDecision) -> DisputeAnswer:
        """POST /disputes/{id}/resolve: the merchant's answer, sent to Paystack; an accepted
        dispute's refund is then looked for at once (Paystack makes it)."""
        await self._created()
        dispute = self._current.dispute(decision.dispute_id)
        if dispute is None:
            raise ApplicationError(
                f"no dispute {decision.dispute_id}", type=ErrorType.DISPUTE_NOT_FOUND
            )
        if not dispute.status.is_open:
            raise ApplicationError(
                f"the dispute is {dispute.status.value}: only an open dispute can be resolved",
                type=ErrorType.DISPUTE_NOT_OPEN,
            )
        try:
            record = await self._operator_call(
                PaystackActivities.resolve_dispute,
                ResolveDisputeInput(
                    dispute_id=decision.dispute_id,
                    resolution=decision.resolution,
                    message=decision.message,
                    refund_amount=decision.refund_amount,
                    uploaded_filename=decision.uploaded_filename,
                    evidence=decision.evidence,
                ),
                f"Paystack resolve dispute {decision.dispute_id}",
            )
        except ApplicationError:
            # Refused (resolved meanwhile, say): Paystack's word on the dispute is asked.
            self._disputes_to_check.append(decision.dispute_id)
            raise
        await self._learn_dispute(record)
        if decision.resolution == DisputeResolution.MERCHANT_ACCEPTED.paystack:
            self._refund_notified = True
        await workflow.wait_condition(lambda: self._recorded_revision >= self._current.revision)
        resolved = self._current.dispute(decision.dispute_id)
        assert resolved is not None
        return DisputeAnswer(invoice=self._current, dispute=resolved)

    @workflow.signal
    def dispute_notified(self, notice: DisputeNotice) -> None:
        """A dispute webhook: ask Paystack about the dispute it names."""
        key = f"dispute:{notice.dedupe_key}"
        if key in self._seen_notices or len(self._seen_notices) >= MAX_NOTICES:
            return
        self._seen_notices.add(key)
        if notice.dispute_id not in self._disputes_to_check:
            self._disputes_to_check.append(notice.dispute_id)

    @workflow.signal
    def refund_notified(self, notice: RefundNotice) -> None:
        """A refund webhook: ask Paystack about the invoice's refunds."""
        key = f"refund:{notice.dedupe_key}"
        if key in self._seen_notices or len(self._seen_notices) >= MAX_NOTICES:
            return
        self._seen_notices.add(key)
        self._refund_notified = True

    @workflow.signal
    def payment_notified(self, notice: PaymentNotice) -> None:
        key = notice.dedupe_key
        if key in self._seen_notices or len(self._seen_notices) >= MAX_NOTICES:
            return
        self._seen_notices.add(key)
        self._payment_notified = True

    @workflow.signal
    def verify_now(self) -> None:
        """Ask Paystack now. Kept so that histories holding it replay; callers use the
        `verify` update, which also reaches a completed invoice."""
        self._payment_notified = True

    @workflow.query
    def state(self) -> InvoiceSnapshot | None:
        return self._invoice

    # --- helpers ------------------------------------------------------------------

    @property
    def _current(self) -> InvoiceSnapshot:
        if self._invoice is None:
            raise ApplicationError("invoice used before it was created", non_retryable=True)
        return self._invoice

    @property
    def _status(self) -> InvoiceStatus:
        return self._current.status

    async def _created(self) -> None:
        """Waits until the invoice exists (created or resumed); raises why it never will."""
        await workflow.wait_condition(
            lambda: self._invoice is not None or self._creation_error is not None
        )
        self._raise_creation_error()

    async def _operator_call(self, method: Any, argument: Any, summary: str) -> Any:
        """A Paystack call an operator waits for (a refund's retry, a dispute's answer):
        a few attempts; Paystack's refusal answers 409 with its words, silence 503."""
        try:
            return await workflow.execute_activity_method(
                method,
                argument,
                task_queue=self._input.paystack_task_queue,
                start_to_close_timeout=PAYSTACK_CALL_TIMEOUT,
                retry_policy=REFUND_RETRY_ATTEMPTS,
                summary=summary,
            )
        except ActivityError as error:
            raise _refused_or_unavailable(error) from None

    def _raise_creation_error(self) -> None:
        if self._creation_error is not None:
            error_type, message = self._creation_error
            raise ApplicationError(message, type=error_type, non_retryable=True)


def _idempotency_conflict() -> ApplicationError:
    return ApplicationError(
        "this Idempotency-Key was already used with a different request body",
        type=ErrorType.IDEMPOTENCY_CONFLICT,
    )


def _refused_or_unavailable(error: ActivityError) -> ApplicationError:
    """An operator's call that Paystack refused (4xx: 409 with its words) or did not answer."""
    cause = error.cause
    reason = cause.message if isinstance(cause, ApplicationError) else str(cause)
    if isinstance(cause, ApplicationError) and cause.type == ErrorType.PAYSTACK_REJECTED:
        return ApplicationError(reason, type=ErrorType.PAYSTACK_REFUSED)
    return ApplicationError(reason, type=ErrorType.PAYSTACK_UNAVAILABLE)


def _cause(
    error: ActivityError | ApplicationError | TemporalTimeoutError,
) -> BaseException | None:
    """The activity's own error: local activities raise it bare, others wrap it."""
    return error.cause if isinstance(error, ActivityError) else error
