"""The payment phase of an invoice's run: create (or resume from the record), watch for a
payment until the due date, close (expired or cancelled, after one last verify), and the
late-payment window."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, NoReturn

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import TimeoutError as TemporalTimeoutError
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from activities.paystack import InitializeInput, Opened, OpenInput, PaystackActivities
    from domain.errors import ErrorType
    from domain.events import InvoiceEvent
    from domain.invoice import InvoiceSnapshot, InvoiceStatus, ReviewReason, paystack_reference_for
    from domain.verification import Outcome, Verification, judge
    from paystack.client import PaymentLink
    from workflows.policies import (
        INITIALIZE_ATTEMPTS,
        INITIALIZE_CALL_TIMEOUT,
        INITIALIZE_DEADLINE,
        LOCAL_ACTIVITY_FAILURES,
        MAX_PAYSTACK_REFERENCES,
        MIN_TIMER,
        NOTICE_VERIFY_INTERVAL,
        NOTICE_VERIFY_RETRY,
        PAYSTACK_CALL_TIMEOUT,
    )
    from workflows.types import CUSTOMER_EMAIL, search_attributes_of

from workflows.invoice.base import LATE_PAYMENT_REASON, WATCHED_STATUSES, InvoiceRun, cause_of


class PaymentPhase(InvoiceRun):
    def _woken_after(self, window_closes: datetime) -> bool:
        """A run woken on a completed invoice after its late window closed only answers
        what woke it. Not so a run that found its own record (its first task was lost after
        recording): it watches the window, and takes its last look, as any other."""
        return self._resumed and self._input.resume_only and workflow.now() >= window_closes

    # --- create, or resume ---------------------------------------------------------

    async def _open(self) -> InvoiceSnapshot:
        """The invoice as an earlier run recorded it (this run was started on a completed
        invoice, or after a run whose task was lost), or else created now: never a second
        Paystack transaction for one invoice. One local activity looks, then initializes."""
        request = self._input.request
        attempt, find_record = 1, True
        while True:
            reference = paystack_reference_for(request.invoice_id, attempt)
            payment = None if self._input.resume_only else self._payment(reference)
            try:
                opened = await self._open_transaction(
                    OpenInput(request.invoice_id, payment, find_record)
                )
                break
            except LOCAL_ACTIVITY_FAILURES as error:
                cause = cause_of(error)
                # Paystack holds this reference already (an answer lost on the way back, or
                # an earlier failed run): its link is unknowable, and no customer has it.
                duplicate = (
                    isinstance(cause, ApplicationError)
                    and cause.type == ErrorType.DUPLICATE_REFERENCE
                )
                if duplicate and attempt < MAX_PAYSTACK_REFERENCES:
                    attempt, find_record = attempt + 1, False
                    continue
                await self._fail_creation(error)
        if opened.recorded is not None:
            return self._resume(opened.recorded)
        if opened.link is None:
            await self._give_up(ErrorType.INVOICE_NOT_FOUND, f"no invoice {request.invoice_id}")
        return await self._create(opened.link)

    def _resume(self, recorded: InvoiceSnapshot) -> InvoiceSnapshot:
        self._state.invoice = recorded
        self._state.recorded_revision = recorded.revision
        self._resumed = True
        # CustomerEmail only if this run started with it: the starter decided (a setting).
        started_with_email = workflow.info().typed_search_attributes.get(CUSTOMER_EMAIL) is not None
        workflow.upsert_search_attributes(
            search_attributes_of(recorded, customer_email=started_with_email)
        )
        workflow.logger.info(
            "invoice %s resumed from its record at revision %d",
            recorded.invoice_id,
            recorded.revision,
        )
        return recorded

    async def _create(self, link: PaymentLink) -> InvoiceSnapshot:
        now = workflow.now()
        opened = InvoiceSnapshot.opened(
            self._input.request,
            workflow_id=workflow.info().workflow_id,
            at=now,
            authorization_url=link.authorization_url,
            access_code=link.access_code,
            paystack_reference=link.reference,
        )
        self._created_here = True
        self._state.next_poll_at = now + self._poll_interval()
        self._change(opened, InvoiceEvent.of(opened))
        await self._record()
        return opened

    def _payment(self, reference: str) -> InitializeInput:
        request = self._input.request
        return InitializeInput(
            reference=reference,
            email=request.customer_email,
            amount=request.amount,
            currency=request.currency,
            metadata={**request.metadata, "invoice_id": request.invoice_id},
        )

    async def _open_transaction(self, request: OpenInput) -> Opened:
        # A local activity: the caller waits for the link, and this saves two trips through
        # the server. Creates are paced by the API; polls and verifies by the capped queue.
        # The server does not hold a local activity's retries to its schedule-to-close
        # timeout: with Paystack down they went on for minutes, a workflow task every 8 s.
        # So the attempts are counted, and the deadline is the workflow's own timer.
        reference = request.payment.reference if request.payment else request.invoice_id
        opening = workflow.start_local_activity_method(
            PaystackActivities.open_transaction,
            request,
            start_to_close_timeout=INITIALIZE_CALL_TIMEOUT,
            retry_policy=INITIALIZE_ATTEMPTS,
            cancellation_type=ActivityCancellationType.TRY_CANCEL,
            summary=f"the record, or Paystack initialize {reference}",
        )
        try:
            await workflow.wait_condition(opening.done, timeout=INITIALIZE_DEADLINE)
        except TimeoutError:
            opening.cancel()
            raise ApplicationError(
                "Paystack did not answer in time", type=ErrorType.PAYSTACK_UNAVAILABLE
            ) from None
        return opening.result()

    async def _fail_creation(
        self, error: ActivityError | ApplicationError | TemporalTimeoutError
    ) -> NoReturn:
        cause = cause_of(error)
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
            if self._state.payment_notified:
                throttled_until = self._next_notice_verify_at()
                if now < throttled_until:
                    # Notices that come faster than this are answered by one verify.
                    await self._wait_for_news(until=min(throttled_until, deadline), notice=False)
                    continue
                self._state.payment_notified = False
                self._last_notice_verify = now
                await self._check_payment(on_notice=True)
                # Paystack may not show the charge yet: look again soon, not hours later.
                soon = now + self._first_poll_interval()
                self._state.next_poll_at = min(self._state.next_poll_at, soon)
            elif now >= self._state.next_poll_at:
                self._state.poll_count += 1
                self._state.next_poll_at = now + self._poll_interval()
                await self._check_payment()
            else:
                await self._wait_for_news(until=min(self._state.next_poll_at, deadline))

    async def _wait_for_news(self, until: datetime, *, notice: bool = True) -> None:
        """Until `until`, a cancel, or (with `notice`) a payment notice."""
        invoice = self._current
        workflow.set_current_details(
            f"{invoice.status.value}: waiting for a payment notice or the next check at "
            f"{until:%Y-%m-%d %H:%M:%S} UTC (due {invoice.due_at:%Y-%m-%d %H:%M:%S} UTC)"
        )
        try:
            await workflow.wait_condition(
                lambda: (notice and self._state.payment_notified) or self._cancel_pending(),
                timeout=max(until - workflow.now(), MIN_TIMER),
                timeout_summary="next poll or due date",
            )
        except TimeoutError:
            pass

    def _next_notice_verify_at(self) -> datetime:
        """A payment notice's verify comes at most once per NOTICE_VERIFY_INTERVAL (other
        verifies, a poll's or a verify-now's, do not hold it back)."""
        if self._last_notice_verify is None:
            return workflow.now()
        return self._last_notice_verify + NOTICE_VERIFY_INTERVAL

    def _first_poll_interval(self) -> timedelta:
        return timedelta(seconds=self._input.poll_schedule[0])

    def _poll_interval(self) -> timedelta:
        schedule = self._input.poll_schedule
        return timedelta(seconds=schedule[min(self._state.poll_count, len(schedule) - 1)])

    async def _check_payment(self, *, on_notice: bool = False) -> None:
        verification = await (self._verify_on_notice() if on_notice else self._verify())
        if verification is not None:
            self._last_verified = (workflow.now(), verification.status)
            await self._apply(verification)

    async def _apply(self, verification: Verification) -> None:
        invoice = self._current
        outcome = judge(invoice.amount, invoice.currency, verification)
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
            cause = cause_of(error)
            if isinstance(cause, ApplicationError) and cause.type in (
                ErrorType.PAYSTACK_REJECTED,
                ErrorType.PAYSTACK_UNAUTHORIZED,
            ):
                workflow.logger.warning("Paystack refused verify: %s", cause)
                return None
            workflow.logger.warning("verify on notice gave up, queueing it: %s", cause)
            return await self._verify()
