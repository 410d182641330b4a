"""Activities that call Paystack. Errors become Temporal ApplicationErrors whose
`non_retryable` flag follows Paystack's answer: 4xx (but 429) will not pass on retry."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import structlog
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from config import CodecKey
from db import bank_accounts, timeline
from db.bank_accounts import BankAccount
from db.engine import write_session
from db.models import PaystackLink
from db.projection import load_snapshot
from db.timeline import TimelineKind
from domain.errors import ErrorType
from domain.invoice import InvoiceSnapshot, invoice_id_from_reference, is_invoice_reference
from domain.refunds import merchant_note_for, refund_id_in
from domain.verification import Verification
from paystack.client import PaymentLink, PaystackClient, PaystackError
from paystack.disputes import DisputeRecord
from paystack.refunds import RefundRecord

log = structlog.get_logger(__name__)


@dataclass
class InitializeInput:
    reference: str
    email: str
    amount: int
    currency: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class OpenInput:
    """Where an invoice's run begins: its record if an earlier run left one (`find_record`),
    and without one, its transaction opened at Paystack (`payment`; None: only look)."""

    invoice_id: str
    payment: InitializeInput | None
    find_record: bool = True


@dataclass
class Opened:
    """The invoice's record, or else the payment link Paystack gave (neither: no record,
    and nothing was opened)."""

    recorded: InvoiceSnapshot | None = None
    link: PaymentLink | None = None


@dataclass
class CreateRefundInput:
    refund_id: str
    transaction_id: int
    amount: int
    customer_note: str | None = None


@dataclass
class RetryRefundInput:
    """The account by its sealed row's id (`account_id`), or, in histories of 0.1.0, itself."""

    paystack_refund_id: int
    currency: str
    account_number: str = ""
    bank_id: str = ""
    account_id: str | None = None


@dataclass
class ResolveDisputeInput:
    dispute_id: int
    resolution: str
    message: str
    refund_amount: int
    uploaded_filename: str
    evidence: int | None = None


REFUND_PAGE = 100
T = TypeVar("T")


def _kept_link(engine: Engine, invoice_id: str) -> PaymentLink | None:
    with Session(engine) as session:
        row = session.get(PaystackLink, invoice_id)
    if row is None:
        return None
    return PaymentLink(
        reference=row.reference,
        authorization_url=row.authorization_url,
        access_code=row.access_code,
    )


def _keep_link(engine: Engine, invoice_id: str, link: PaymentLink) -> None:
    """The newest link for the invoice (a later reference replaces an earlier one)."""
    with write_session(engine) as session:
        row = session.get(PaystackLink, invoice_id) or PaystackLink(
            invoice_id=invoice_id,
            reference=link.reference,
            authorization_url=link.authorization_url,
            access_code=link.access_code,
            created_at=datetime.now(UTC),
        )
        row.reference = link.reference
        row.authorization_url = link.authorization_url
        row.access_code = link.access_code
        session.add(row)


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


async def _asked(call: Awaitable[T], failed: str, **context: Any) -> T:
    """Paystack's answer; its refusal logged as `failed` (with `context`) and raised as the
    ApplicationError the workflow tells apart."""
    try:
        return await call
    except PaystackError as error:
        log.warning(failed, status_code=error.status_code, message=error.message, **context)
        raise _as_application_error(error) from error


class PaystackActivities:
    def __init__(
        self,
        client: PaystackClient,
        callback_url: str | None = None,
        engine: Engine | None = None,
        codec_keys: Sequence[CodecKey] = (),
    ) -> None:
        self._client = client
        self._callback_url = callback_url
        # What unseals a customer's bank account for a refund retry.
        self._codec_keys = list(codec_keys)
        # Where each verify's answer goes on its invoice's timeline (none without it).
        self._engine = engine

    def capped(self) -> list[Callable[..., Any]]:
        """The invoice workflow's calls that run on the rate-capped Paystack queue (and on
        the invoice queue, for runs started without one)."""
        return [
            self.verify_transaction,
            self.create_refund,
            self.refunds_of_transaction,
            self.retry_refund,
            self.fetch_dispute,
            self.resolve_dispute,
        ]

    @activity.defn(name="open_transaction")
    async def open_transaction(self, request: OpenInput) -> Opened:
        """One local activity on the create path: the record first (a run after a lost
        task, or a woken one, resumes from it), then a link Paystack gave a run whose task
        was lost before it recorded, then Paystack's initialize (its link kept at once)."""
        engine = self._engine
        if request.find_record and engine is not None:
            recorded = await asyncio.to_thread(load_snapshot, engine, request.invoice_id)
            if recorded is not None:
                return Opened(recorded=recorded)
            kept = await asyncio.to_thread(_kept_link, engine, request.invoice_id)
            if kept is not None and request.payment is not None:
                return Opened(link=kept)
        if request.payment is None:
            return Opened()
        link = await self._initialize(request.payment)
        if engine is not None:
            await asyncio.to_thread(_keep_link, engine, request.invoice_id, link)
        return Opened(link=link)

    async def _initialize(self, request: InitializeInput) -> PaymentLink:
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

    # --- refunds --------------------------------------------------------------------

    @activity.defn(name="create_refund")
    async def create_refund(self, request: CreateRefundInput) -> RefundRecord:
        """Paystack takes no idempotency key for a refund, and an attempt whose answer was
        lost may have made it: every attempt first looks for a refund carrying this id in
        its merchant_note, and makes one only when there is none."""
        bound = log.bind(refund_id=request.refund_id, workflow_id=activity.info().workflow_id)
        try:
            for record in await self._refunds_of(request.transaction_id):
                if refund_id_in(record.merchant_note) == request.refund_id:
                    bound.info("paystack.refund_found", paystack_refund_id=record.id)
                    return record
            record = await self._client.create_refund(
                transaction=request.transaction_id,
                amount=request.amount,
                merchant_note=merchant_note_for(request.refund_id),
                customer_note=request.customer_note,
            )
        except PaystackError as error:
            bound.warning(
                "paystack.refund_failed",
                status_code=error.status_code,
                message=error.message,
                attempt=activity.info().attempt,
            )
            raise _as_application_error(error) from error
        bound.info("paystack.refund_created", paystack_refund_id=record.id, status=record.status)
        return record

    @activity.defn(name="refunds_of_transaction")
    async def refunds_of_transaction(self, transaction_id: int) -> list[RefundRecord]:
        """Every refund Paystack holds for the transaction: the answer to a refund webhook
        (whose body names no refund) and to each poll."""
        return await _asked(
            self._refunds_of(transaction_id),
            "paystack.refunds_list_failed",
            transaction_id=transaction_id,
        )

    async def _refunds_of(self, transaction_id: int) -> list[RefundRecord]:
        records: list[RefundRecord] = []
        page = 1
        while True:
            listed = await self._client.list_refunds(
                transaction=transaction_id, per_page=REFUND_PAGE, page=page
            )
            records.extend(listed.records)
            if listed.next_cursor is None:
                return records
            page += 1

    @activity.defn(name="retry_refund")
    async def retry_refund(self, request: RetryRefundInput) -> RefundRecord:
        """Sends the customer's bank account for a refund that needs attention (the account
        is never logged), read from its sealed row, which goes once Paystack has answered."""
        account = BankAccount(request.account_number, request.bank_id)
        engine, account_id = self._engine, request.account_id
        if account_id is not None:
            assert engine is not None, "the worker's activities have the database"
            found = await asyncio.to_thread(
                bank_accounts.read, engine, self._codec_keys, account_id
            )
            if found is None:
                raise ApplicationError(
                    "the bank account is gone: send it again",
                    type=ErrorType.REFUND_NOT_RETRYABLE,
                    non_retryable=True,
                )
            account = found
        try:
            record = await _asked(
                self._client.retry_refund(
                    request.paystack_refund_id,
                    currency=request.currency,
                    account_number=account.account_number,
                    bank_id=account.bank_id,
                ),
                "paystack.refund_retry_failed",
                paystack_refund_id=request.paystack_refund_id,
            )
        except ApplicationError as refused:
            # Paystack's refusal is its answer: the account is not needed again. (Silence
            # is retried, with the row still there.)
            if refused.non_retryable and engine is not None and account_id is not None:
                await asyncio.to_thread(bank_accounts.forget, engine, account_id)
            raise
        if engine is not None and account_id is not None:
            await asyncio.to_thread(bank_accounts.forget, engine, account_id)
        log.info("paystack.refund_retried", paystack_refund_id=record.id, status=record.status)
        return record

    # --- disputes -------------------------------------------------------------------

    @activity.defn(name="fetch_dispute")
    async def fetch_dispute(self, dispute_id: int) -> DisputeRecord:
        """Paystack's word on a dispute: the answer to each `charge.dispute.*` webhook."""
        return await _asked(
            self._client.fetch_dispute(dispute_id),
            "paystack.dispute_fetch_failed",
            dispute_id=dispute_id,
        )

    @activity.defn(name="resolve_dispute")
    async def resolve_dispute(self, request: ResolveDisputeInput) -> DisputeRecord:
        record = await _asked(
            self._client.resolve_dispute(
                request.dispute_id,
                resolution=request.resolution,
                message=request.message,
                refund_amount=request.refund_amount,
                uploaded_filename=request.uploaded_filename,
                evidence=request.evidence,
            ),
            "paystack.dispute_resolve_failed",
            dispute_id=request.dispute_id,
        )
        log.info("paystack.dispute_resolved", dispute_id=record.id, resolution=record.resolution)
        return record
