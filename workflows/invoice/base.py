"""What every part of an invoice's run shares: its state, how a change is made and
recorded (with the event that tells it), the verify, and continue-as-new."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any, NoReturn

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import TimeoutError as TemporalTimeoutError

with workflow.unsafe.imports_passed_through():
    from activities.database import DatabaseActivities
    from activities.paystack import PaystackActivities
    from domain.errors import ErrorType
    from domain.events import InvoiceEvent, RecordedChange
    from domain.invoice import InvoiceSnapshot, InvoiceStatus, ReviewReason
    from domain.verification import Verification
    from workflows.policies import (
        INVOICE_RECORD_RETRY,
        INVOICE_RECORD_TIMEOUT,
        OPERATOR_CALL_ATTEMPTS,
        PAYSTACK_CALL_TIMEOUT,
        VERIFY_RETRY,
    )
    from workflows.types import INVOICE_STATUS, InvoiceState, InvoiceWorkflowInput

LATE_PAYMENT_REASON = {
    InvoiceStatus.EXPIRED: ReviewReason.PAID_AFTER_EXPIRY,
    InvoiceStatus.CANCELLED: ReviewReason.PAID_AFTER_CANCEL,
}
WATCHED_STATUSES = (InvoiceStatus.PENDING, InvoiceStatus.EXPIRED, InvoiceStatus.CANCELLED)


class InvoiceRun:
    """The state one run of an invoice's workflow keeps, and the steps every phase takes."""

    _input: InvoiceWorkflowInput
    _state: InvoiceState
    # Whether this run created the invoice, or resumed it from its record.
    _created_here: bool
    _resumed: bool
    _creation_error: tuple[str, str] | None
    # Paystack's last answer (when, and its status), and whether a verify-now is asking.
    _last_verified: tuple[datetime, str | None] | None
    # When a payment notice's verify last started: they are throttled.
    _last_notice_verify: datetime | None
    _verifying_now: bool

    def _cancel_pending(self) -> bool:
        return self._state.cancel_requested and self._status is InvoiceStatus.PENDING

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
        workflow.continue_as_new(dataclasses.replace(self._input, carried=self._state))

    def _history_is_long(self) -> bool:
        info, limit = workflow.info(), self._input.continue_as_new_after_events
        suggested = info.is_continue_as_new_suggested()
        return suggested or (limit is not None and info.get_current_history_length() >= limit)

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

    async def _transition(self, status: InvoiceStatus, **changes: Any) -> None:
        invoice = self._current
        changed = dataclasses.replace(
            invoice,
            status=status,
            updated_at=workflow.now(),
            revision=invoice.revision + 1,
            **changes,
        )
        self._change(changed, InvoiceEvent.of(changed))
        workflow.upsert_search_attributes([INVOICE_STATUS.value_set(status.value)])
        workflow.logger.info("invoice %s is now %s", invoice.invoice_id, status.value)
        await self._record()

    def _change(self, invoice: InvoiceSnapshot, event: InvoiceEvent) -> None:
        """The invoice as one change leaves it, with the event that tells it: taken
        together, with no await between, so two changes never share a revision."""
        self._state.invoice = invoice
        self._state.unrecorded.append(event)

    async def _record(self) -> None:
        """Writes the invoice as it stands, with every event not yet written, in one
        transaction. A regular activity, not a local one: it is scheduled by the workflow
        task that decided the change, and so runs only once that decision is in the
        history. A retried task that decides otherwise never finds its first decision
        written or told."""
        change = RecordedChange(invoice=self._current, events=list(self._state.unrecorded))
        last = change.events[-1].type.value if change.events else change.invoice.status.value
        await workflow.execute_activity_method(
            DatabaseActivities.record_invoice,
            change,
            start_to_close_timeout=INVOICE_RECORD_TIMEOUT,
            retry_policy=INVOICE_RECORD_RETRY,
            summary=f"record {last}",
        )
        state = self._state
        state.recorded_revision = max(state.recorded_revision, change.invoice.revision)
        written = {event.event_id for event in change.events}
        state.unrecorded = [event for event in state.unrecorded if event.event_id not in written]

    # --- helpers ------------------------------------------------------------------

    @property
    def _current(self) -> InvoiceSnapshot:
        if self._state.invoice is None:
            raise ApplicationError("invoice used before it was created", non_retryable=True)
        return self._state.invoice

    @property
    def _status(self) -> InvoiceStatus:
        return self._current.status

    async def _created(self) -> None:
        """Waits until the invoice exists (created or resumed); raises why it never will."""
        await workflow.wait_condition(
            lambda: self._state.invoice is not None or self._creation_error is not None
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
                retry_policy=OPERATOR_CALL_ATTEMPTS,
                summary=summary,
            )
        except ActivityError as error:
            raise refused_or_unavailable(error) from None

    def _raise_creation_error(self) -> None:
        if self._creation_error is not None:
            error_type, message = self._creation_error
            raise ApplicationError(message, type=error_type, non_retryable=True)


def idempotency_conflict() -> ApplicationError:
    return ApplicationError(
        "this Idempotency-Key was already used with a different request body",
        type=ErrorType.IDEMPOTENCY_CONFLICT,
    )


def refused_or_unavailable(error: ActivityError) -> ApplicationError:
    """An operator's call that Paystack refused (4xx: 409 with its words) or did not answer."""
    cause = error.cause
    reason = cause.message if isinstance(cause, ApplicationError) else str(cause)
    if isinstance(cause, ApplicationError) and cause.type == ErrorType.PAYSTACK_REJECTED:
        return ApplicationError(reason, type=ErrorType.PAYSTACK_REFUSED)
    return ApplicationError(reason, type=ErrorType.PAYSTACK_UNAVAILABLE)


def cause_of(
    error: ActivityError | ApplicationError | TemporalTimeoutError,
) -> BaseException | None:
    """The activity's own error: local activities raise it bare, others wrap it."""
    return error.cause if isinstance(error, ActivityError) else error
