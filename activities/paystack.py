"""Activities that call Paystack. Errors become Temporal ApplicationErrors whose
`non_retryable` flag follows Paystack's answer: 4xx (but 429) will not pass on retry."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from db import timeline
from db.timeline import TimelineKind
from domain.errors import ErrorType
from domain.invoice import invoice_id_from_reference, is_invoice_reference
from domain.reconcile import Verification
from paystack.client import PaymentLink, PaystackClient, PaystackError

log = structlog.get_logger(__name__)


@dataclass
class InitializeInput:
    reference: str
    email: str
    amount: int
    currency: str
    metadata: dict[str, Any] = field(default_factory=dict)


def _as_application_error(error: PaystackError) -> ApplicationError:
    if error.code == "duplicate_reference":
        error_type = ErrorType.DUPLICATE_REFERENCE
    elif error.status_code in (401, 403):
        error_type = ErrorType.PAYSTACK_UNAUTHORIZED
    elif error.retryable:
        error_type = ErrorType.PAYSTACK_UNAVAILABLE
    else:
        error_type = ErrorType.PAYSTACK_REJECTED
    return ApplicationError(
        error.message,
        {"status_code": error.status_code, "code": error.code},
        type=error_type,
        non_retryable=not error.retryable,
    )


class PaystackActivities:
    def __init__(
        self,
        client: PaystackClient,
        callback_url: str | None = None,
        engine: Engine | None = None,
    ) -> None:
        self._client = client
        self._callback_url = callback_url
        # Where each verify's answer goes on its invoice's timeline (none without it).
        self._engine = engine

    @activity.defn(name="initialize_transaction")
    async def initialize_transaction(self, request: InitializeInput) -> PaymentLink:
        bound = log.bind(invoice_id=request.reference, workflow_id=activity.info().workflow_id)
        try:
            link = await self._client.initialize(
                reference=request.reference,
                email=request.email,
                amount=request.amount,
                currency=request.currency,
                metadata=request.metadata,
                callback_url=self._callback_url,
            )
        except PaystackError as error:
            bound.warning(
                "paystack.initialize_failed",
                status_code=error.status_code,
                message=error.message,
                attempt=activity.info().attempt,
            )
            raise _as_application_error(error) from error
        bound.info("paystack.initialized")
        return link

    @activity.defn(name="verify_transaction")
    async def verify_transaction(self, reference: str) -> Verification:
        bound = log.bind(invoice_id=reference, workflow_id=activity.info().workflow_id)
        try:
            verification = await self._client.verify(reference)
        except PaystackError as error:
            bound.warning(
                "paystack.verify_failed",
                status_code=error.status_code,
                message=error.message,
                attempt=activity.info().attempt,
            )
            raise _as_application_error(error) from error
        bound.info(
            "paystack.verified",
            found=verification.found,
            paystack_status=verification.status,
            amount=verification.amount,
            currency=verification.currency,
        )
        await self._on_timeline(reference, verification)
        return verification

    async def _on_timeline(self, reference: str, verification: Verification) -> None:
        """Paystack's answer on the invoice's timeline: a declined attempt shows as
        `failed` with the bank's `gateway_response`."""
        if self._engine is None or not is_invoice_reference(reference):
            return
        try:
            await asyncio.to_thread(
                timeline.record,
                self._engine,
                invoice_id_from_reference(reference),
                TimelineKind.PAYSTACK_VERIFIED,
                datetime.now(UTC),
                reference=reference,
                found=verification.found,
                paystack_status=verification.status,
                gateway_response=verification.gateway_response,
                amount=verification.amount,
                currency=verification.currency,
                transaction_id=verification.transaction_id,
            )
        except SQLAlchemyError as error:
            # The answer is what the workflow needs; failing here would only ask Paystack
            # again. The entry is for people reading the timeline.
            log.warning("timeline.verify_not_recorded", invoice_id=reference, error=str(error))
