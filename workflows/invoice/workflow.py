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

Every change is recorded by an activity that runs once the workflow task deciding it has
completed, so the database holds only decisions the history keeps. The same transaction
puts the change's event in the outbox (with its emails), from which the workers' delivery
loops tell the merchant's endpoints and the customer: telling costs the workflow nothing.
A change and its revision (so its event id) are fixed together, before any await.

A run whose history grows long hands its state to a fresh run (continue-as-new). A run
started on a completed invoice (woken by a request months later, see workflows/starter.py)
resumes from the invoice's record, answers the request, and completes again.

Only Paystack's verify decides: a webhook is a reason to verify, never proof of payment.
The same holds for refunds: Paystack's list of the transaction's refunds decides.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.paystack import PaystackActivities, ResolveDisputeInput, RetryRefundInput
    from domain.disputes import DisputeResolution
    from domain.errors import ErrorType
    from domain.events import RecordedChange
    from domain.invoice import InvoiceSnapshot, InvoiceStatus
    from domain.refunds import Refund, RefundStatus
    from workflows.policies import VERIFY_NOW_INTERVAL
    from workflows.types import (
        DisputeAnswer,
        DisputeDecision,
        DisputeNotice,
        InvoiceState,
        InvoiceWorkflowInput,
        OpenedInvoice,
        OpenInvoice,
        PaymentCheck,
        PaymentNotice,
        RefundAnswer,
        RefundNotice,
        RefundRequest,
        RefundRetry,
    )

from workflows.invoice.after_payment import AfterPaymentPhase
from workflows.invoice.base import LATE_PAYMENT_REASON, idempotency_conflict
from workflows.invoice.payment import PaymentPhase

# After 0.1.0 (README, "Versions"): a refund retry's bank account goes to the activity by
# the id of its sealed row; runs from before sent the account itself.
BANK_ACCOUNT_BY_ID = "bank-account-by-id"


@workflow.defn
class InvoiceWorkflow(PaymentPhase, AfterPaymentPhase):
    @workflow.init
    def __init__(self, input: InvoiceWorkflowInput) -> None:
        self._input = input
        self._state = input.carried or InvoiceState()
        # Whether this run created the invoice, or resumed it from its record.
        self._created_here = False
        self._resumed = False
        self._creation_error: tuple[str, str] | None = None
        # Paystack's last answer (when, and its status), and whether a verify-now is asking.
        self._last_verified: tuple[datetime, str | None] | None = None
        self._last_notice_verify: datetime | None = None
        self._verifying_now = False

    @workflow.run
    async def run(self, input: InvoiceWorkflowInput) -> InvoiceSnapshot:
        invoice = self._state.invoice or await self._open()
        await self._watch_until(invoice.due_at)
        if self._status is InvoiceStatus.PENDING:
            await self._close_unpaid(
                InvoiceStatus.CANCELLED if self._state.cancel_requested else InvoiceStatus.EXPIRED
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

    # --- messages -----------------------------------------------------------------

    @workflow.update
    async def open_invoice(self, request: OpenInvoice) -> OpenedInvoice:
        """Answers POST /invoices once the invoice and its payment link are decided: in the
        workflow task that decides them, so the API has its answer one task sooner than the
        record. The API records the change it is handed (as the record activity does, and
        whichever writes second changes nothing) before it hands out the link."""
        await self._created()
        invoice = self._current
        if request.fingerprint != invoice.fingerprint:  # a run resumed for another body
            raise idempotency_conflict()
        created = self._created_here and request.request_id == self._input.request_id
        unrecorded = None
        if self._state.recorded_revision < invoice.revision:
            unrecorded = RecordedChange(invoice=invoice, events=list(self._state.unrecorded))
        return OpenedInvoice(invoice=invoice, created=created, unrecorded=unrecorded)

    @open_invoice.validator
    def _validate_open_invoice(self, request: OpenInvoice) -> None:
        known = (
            self._state.invoice.fingerprint
            if self._state.invoice
            else self._input.request.fingerprint
        )
        if request.fingerprint != known:
            raise idempotency_conflict()

    @workflow.update
    async def reverify(self) -> InvoiceSnapshot:
        """Ask Paystack now, whatever the invoice's state, and answer the invoice as it
        stands after that verify (the operator's `payrecon invoices reverify`)."""
        await self._created()
        await self._check_payment()
        await workflow.wait_condition(
            lambda: self._state.recorded_revision >= self._current.revision
        )
        return self._current

    @workflow.update
    async def verify_now(self) -> PaymentCheck:
        """POST /invoices/{id}/verify and the checkout return: ask Paystack now, unless it
        was asked within VERIFY_NOW_INTERVAL (or is being asked), and answer the invoice as
        it stands after that, with Paystack's status."""
        await self._created()
        if self._verifying_now:
            await workflow.wait_condition(lambda: not self._verifying_now)
        elif not self._verified_within(VERIFY_NOW_INTERVAL):
            self._verifying_now = True
            try:
                await self._check_payment()
            finally:
                self._verifying_now = False
        await workflow.wait_condition(
            lambda: self._state.recorded_revision >= self._current.revision
        )
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
        self._state.cancel_requested = True
        await workflow.wait_condition(
            lambda: (
                self._status is not InvoiceStatus.PENDING
                and self._state.recorded_revision >= self._current.revision
            )
        )
        if self._status is InvoiceStatus.EXPIRED:
            # The due date's last verify was already under way when the cancel came.
            raise ApplicationError("the invoice is already expired", type=ErrorType.INVOICE_FINAL)
        return self._current

    @cancel.validator
    def _validate_cancel(self) -> None:
        if self._state.invoice is None:
            raise ApplicationError(
                "the invoice is still being created", type=ErrorType.INVOICE_NOT_READY
            )
        if self._state.invoice.status.is_final:
            raise ApplicationError(
                f"the invoice is already {self._state.invoice.status.value}",
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
                raise idempotency_conflict()
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
        await workflow.wait_condition(
            lambda: self._state.recorded_revision >= self._current.revision
        )
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
        if workflow.patched(BANK_ACCOUNT_BY_ID):
            # The account stays sealed in the database: only its row's id is in history.
            request = RetryRefundInput(
                paystack_refund_id=refund.paystack_refund_id,
                currency=retry.currency,
                account_id=retry.account_id,
            )
        else:
            request = RetryRefundInput(
                paystack_refund_id=refund.paystack_refund_id,
                currency=retry.currency,
                account_number=retry.account_number,
                bank_id=retry.bank_id,
            )
        record = await self._operator_call(
            PaystackActivities.retry_refund,
            request,
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
            self._state.disputes_to_check.append(decision.dispute_id)
            raise
        await self._learn_dispute(record)
        if decision.resolution == DisputeResolution.MERCHANT_ACCEPTED.paystack:
            self._state.refund_notified = True
        await workflow.wait_condition(
            lambda: self._state.recorded_revision >= self._current.revision
        )
        resolved = self._current.dispute(decision.dispute_id)
        assert resolved is not None
        return DisputeAnswer(invoice=self._current, dispute=resolved)

    @workflow.signal
    def dispute_notified(self, notice: DisputeNotice) -> None:
        """A dispute webhook: ask Paystack about the dispute it names."""
        if not self._state.first_sight("dispute", notice.dedupe_key):
            return
        if notice.dispute_id not in self._state.disputes_to_check:
            self._state.disputes_to_check.append(notice.dispute_id)

    @workflow.signal
    def refund_notified(self, notice: RefundNotice) -> None:
        """A refund webhook: ask Paystack about the invoice's refunds (one look answers
        every refund notice so far)."""
        if self._state.first_sight("refund", notice.dedupe_key):
            self._state.refund_notified = True

    @workflow.signal
    def payment_notified(self, notice: PaymentNotice) -> None:
        """A payment webhook: verify (one throttled verify answers every notice so far)."""
        if self._state.first_sight("payment", notice.dedupe_key):
            self._state.payment_notified = True

    @workflow.query
    def state(self) -> InvoiceSnapshot | None:
        return self._state.invoice
