"""The reconciliation sweep's activities: each reads one page of Paystack's books, matches
it against ours and stores what it found, answering the workflow only a small report (the
page itself never enters the workflow's history, so a window of any size fits)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Sequence, Set
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import Engine
from sqlmodel import Session
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from activities.heartbeat import heartbeating
from activities.paystack import _as_application_error
from api.reconciliation_schemas import DiscrepancyOut
from config import Settings
from db import reconciliation as books
from db.models import Discrepancy, Invoice, InvoiceDispute, OutboundEvent, ReconciliationRun
from db.projection import load_snapshot
from domain.discrepancies import (
    AFTER_PAYMENT_KINDS,
    TRANSACTION_KINDS,
    DiscrepancyKind,
    Finding,
    finding_key,
    judge_dispute,
    judge_fee,
    judge_refund,
    judge_settlement,
    judge_transaction,
)
from domain.disputes import DisputeStatus
from domain.errors import ErrorType
from domain.events import OPERATORS, EventType
from domain.invoice import InvoiceStatus
from domain.refunds import refund_id_in
from outbound import outbox
from paystack.client import PaystackClient, PaystackError
from paystack.disputes import DisputeRecord
from paystack.refunds import RefundRecord
from paystack.transactions import MalformedRecord, TransactionRecord
from workflows.invoice import InvoiceWorkflow
from workflows.starter import reach_invoice, signal_invoice
from workflows.types import DisputeNotice, RefundNotice

log = structlog.get_logger(__name__)

# Rows read at once by the checks that run over every paid invoice.
BATCH = 500
# What a sweep's notice to an invoice says it is (its webhook's event name, for a webhook's).
SWEEP_NOTICE = "reconciliation"
PAYSTACK_VOLUME, PAYRECON_VOLUME, FEES, NET_SETTLED = (
    "paystack_volume",
    "payrecon_volume",
    "fees",
    "net_settled",
)


@dataclass
class RunWindow:
    """A run and its window, half-open: [since, until), on Paystack's creation time."""

    run_id: str
    since: datetime
    until: datetime
    page_size: int = 100


@dataclass
class RunStart:
    window: RunWindow
    trigger: str
    started_at: datetime
    requested_by: str | None = None


@dataclass
class Tally:
    """What pages add up to: kept by the workflow across pages and continues-as-new."""

    records_seen: int = 0
    records_matched: int = 0
    pages: int = 0
    # Per currency: paystack_volume, fees, net_settled (payrecon_volume is read at the end).
    totals: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, other: Tally) -> None:
        self.records_seen += other.records_seen
        self.records_matched += other.records_matched
        self.pages += other.pages
        for currency, amounts in other.totals.items():
            mine = self.totals.setdefault(currency, {})
            for name, amount in amounts.items():
                mine[name] = mine.get(name, 0) + amount

    def count(self, currency: str, name: str, amount: int) -> None:
        mine = self.totals.setdefault(currency, {})
        mine[name] = mine.get(name, 0) + amount


@dataclass
class HealTarget:
    discrepancy_id: str
    invoice_id: str


@dataclass
class TransactionsPage:
    window: RunWindow
    cursor: str | None = None


@dataclass
class TransactionsReport:
    next_cursor: str | None
    tally: Tally
    to_heal: list[HealTarget] = field(default_factory=list)


@dataclass
class SettlementsPage:
    window: RunWindow
    # Settlements dated in [since, until): those paying out the window's transactions.
    since: datetime
    until: datetime
    page: int = 1


@dataclass
class SettlementsReport:
    next_page: int | None
    tally: Tally
    # Settlements whose transactions need adding up (new, or changed on Paystack).
    to_add_up: list[int] = field(default_factory=list)


@dataclass
class SettlementTransactionsPage:
    window: RunWindow
    settlement_id: int
    page: int = 1
    # Running sums over the pages before this one.
    amount: int = 0
    fees: int = 0


@dataclass
class SettlementTransactionsReport:
    next_page: int | None
    amount: int
    fees: int
    tally: Tally


@dataclass
class AfterPaymentPage:
    """A page of Paystack's refunds or disputes created in the window."""

    window: RunWindow
    page: int = 1


@dataclass
class NotifyInvoice:
    """An invoice to ask to look again: at its refunds, or at this dispute."""

    invoice_id: str
    dispute_id: int | None = None


@dataclass
class AfterPaymentReport:
    next_page: int | None
    tally: Tally
    to_notify: list[NotifyInvoice] = field(default_factory=list)


@dataclass
class RefundRequestCheck:
    """What a discrepancy's refund workflow was started to do, to be held against the
    database before any money moves."""

    discrepancy_id: str
    transaction_id: int
    amount: int
    operator: str
    note: str


# The error type of a refund the database does not back: the workflow fails, no money moved.
REFUND_REFUSED = "RefundRefused"


@dataclass
class RefundOutcome:
    """How an operator's refund of a discrepancy's payment ended."""

    discrepancy_id: str
    refund_id: str
    paystack_refund_id: int | None
    status: str
    amount: int
    operator: str
    note: str
    failure: str | None = None


@dataclass
class BooksCheck:
    window: RunWindow
    unsettled_after_seconds: float
    now: datetime


@dataclass
class RunEnd:
    window: RunWindow
    tally: Tally
    finished_at: datetime
    error: str | None = None


@dataclass
class RunSummary:
    run_id: str
    status: str
    counts: dict[str, int]
    records_seen: int
    records_matched: int


class ReconciliationActivities:
    def __init__(
        self, paystack: PaystackClient, engine: Engine, temporal: Client, settings: Settings
    ) -> None:
        self._paystack = paystack
        self._engine = engine
        self._temporal = temporal
        self._settings = settings
        # Operators' events go to the endpoints of the callers who are operators now.
        self._operators = settings.operator_callers

    # --- the run's row ------------------------------------------------------------------

    @activity.defn(name="start_reconciliation_run")
    @heartbeating
    async def start_run(self, start: RunStart) -> None:
        window = start.window
        run = ReconciliationRun(
            id=window.run_id,
            trigger=start.trigger,
            window_from=window.since,
            window_to=window.until,
            status="running",
            started_at=start.started_at,
            requested_by=start.requested_by,
        )
        await asyncio.to_thread(books.start_run, self._engine, run)
        log.info("recon.started", run_id=window.run_id, since=window.since, until=window.until)

    @activity.defn(name="finish_reconciliation_run")
    @heartbeating
    async def finish_run(self, end: RunEnd) -> RunSummary:
        return await asyncio.to_thread(self._finish, end)

    def _finish(self, end: RunEnd) -> RunSummary:
        window = end.window
        with Session(self._engine) as session:
            for currency, amount in books.payrecon_volume(
                session, since=window.since, until=window.until
            ).items():
                end.tally.totals.setdefault(currency, {})[PAYRECON_VOLUME] = amount
        counts = books.run_counts(self._engine, window.run_id)
        status = "failed" if end.error else "completed"
        books.finish_run(
            self._engine,
            window.run_id,
            status=status,
            at=end.finished_at,
            counts=counts,
            totals=end.tally.totals,
            records_seen=end.tally.records_seen,
            records_matched=end.tally.records_matched,
            pages=end.tally.pages,
            error=end.error,
        )
        log.info("recon.finished", run_id=window.run_id, status=status, counts=counts)
        return RunSummary(
            window.run_id, status, counts, end.tally.records_seen, end.tally.records_matched
        )

    # --- transactions -------------------------------------------------------------------

    @activity.defn(name="reconcile_transactions_page")
    @heartbeating
    async def reconcile_transactions_page(self, request: TransactionsPage) -> TransactionsReport:
        window = request.window
        try:
            page = await self._paystack.list_transactions(
                since=window.since,
                until=window.until,
                per_page=window.page_size,
                cursor=request.cursor,
            )
        except PaystackError as error:
            raise _as_application_error(error) from error
        except MalformedRecord as error:
            raise ApplicationError(str(error), type=ErrorType.PAYSTACK_REJECTED) from error
        # Paystack's own bounds are not documented as half-open: ours are.
        records = [r for r in page.records if window.since <= r.created_at < window.until]
        report = await asyncio.to_thread(self._match_transactions, window, records)
        report.next_cursor = page.next_cursor
        activity.logger.debug("recon page: %d records", len(records))
        return report

    def _match_transactions(
        self, window: RunWindow, records: Sequence[TransactionRecord]
    ) -> TransactionsReport:
        now = datetime.now(UTC)
        tally = Tally(records_seen=len(records), pages=1)
        findings: list[Finding] = []
        with Session(self._engine) as session:
            invoices = books.invoice_facts(
                session, filter(None, (books.invoice_of(r.reference) for r in records))
            )
            books.upsert_transactions(session, records, seen_at=now)
            for record in records:
                invoice_id = books.invoice_of(record.reference)
                invoice = invoices.get(invoice_id) if invoice_id else None
                found = judge_transaction(
                    record,
                    invoice,
                    pricing=self._settings.payrecon_pricing,
                    account_country=self._settings.payrecon_account_country,
                    settled_before=window.until,
                )
                findings.extend(found)
                if invoice is not None and not found:
                    tally.records_matched += 1
                if record.status == "success":
                    tally.count(record.currency, PAYSTACK_VOLUME, record.amount)
                    tally.count(record.currency, FEES, record.fees or 0)
            sightings = record_and_stage(
                self._operators, session, findings, run_id=window.run_id, at=now
            )
            session.commit()
        to_heal = [
            HealTarget(sighting.discrepancy_id, sighting.invoice_id)
            for sighting in sightings
            if sighting.kind is DiscrepancyKind.MISSED_PAYMENT
            and sighting.open
            and sighting.invoice_id is not None
        ]
        return TransactionsReport(None, tally, to_heal=to_heal)

    @activity.defn(name="heal_missed_payment")
    @heartbeating
    async def heal_missed_payment(self, target: HealTarget) -> str:
        """Asks the invoice's workflow (its one writer; a completed invoice's is woken) to
        verify now, and records what that verify decided."""
        snapshot = await asyncio.to_thread(load_snapshot, self._engine, target.invoice_id)
        if snapshot is None:
            raise ApplicationError(f"no invoice {target.invoice_id}", non_retryable=True)
        check = await reach_invoice(
            self._temporal, self._settings, snapshot, InvoiceWorkflow.verify_now
        )
        status: InvoiceStatus = check.invoice.status
        healed = status in (InvoiceStatus.PAID, InvoiceStatus.NEEDS_REVIEW)
        await asyncio.to_thread(
            books.note_heal,
            self._engine,
            target.discrepancy_id,
            invoice_status=status.value,
            at=datetime.now(UTC),
            healed=healed,
        )
        log.info(
            "recon.healed" if healed else "recon.heal_found_unpaid",
            invoice_id=target.invoice_id,
            discrepancy_id=target.discrepancy_id,
            invoice_status=status.value,
        )
        return status.value

    # --- refunds and disputes -----------------------------------------------------------

    @activity.defn(name="reconcile_refunds_page")
    @heartbeating
    async def reconcile_refunds_page(self, request: AfterPaymentPage) -> AfterPaymentReport:
        """A page of the window's refunds against payrecon's: one it lacks, or holds with
        another amount or state, is a `refund_mismatch`, and its invoice is asked to look."""
        window = request.window
        try:
            page = await self._paystack.list_refunds(
                since=window.since, until=window.until, per_page=window.page_size, page=request.page
            )
        except PaystackError as error:
            raise _as_application_error(error) from error
        except MalformedRecord as error:
            raise ApplicationError(str(error), type=ErrorType.PAYSTACK_REJECTED) from error
        records = [
            r
            for r in page.records
            if r.created_at is not None and window.since <= r.created_at < window.until
        ]
        report = await asyncio.to_thread(self._match_refunds, window, records)
        report.next_page = request.page + 1 if page.next_cursor is not None else None
        return report

    def _match_refunds(self, window: RunWindow, records: list[RefundRecord]) -> AfterPaymentReport:
        tally = Tally(records_seen=len(records), pages=1)
        findings: list[Finding] = []
        with Session(self._engine) as session:
            owners = books.invoices_by_transaction(
                session, (r.transaction_id for r in records if r.transaction_id is not None)
            )
            by_paystack, by_own = books.refund_facts(
                session,
                (r.id for r in records),
                filter(None, (refund_id_in(r.merchant_note) for r in records)),
            )
            for record in records:
                ours = by_paystack.get(record.id) or by_own.get(
                    refund_id_in(record.merchant_note) or ""
                )
                invoice_id = owners.get(record.transaction_id) if record.transaction_id else None
                found = judge_refund(record, ours, invoice_id, settled_before=window.until)
                findings.extend(found)
                if ours is not None and not found:
                    tally.records_matched += 1
            sightings = record_and_stage(
                self._operators, session, findings, run_id=window.run_id, at=datetime.now(UTC)
            )
            session.commit()
        to_notify = [
            NotifyInvoice(s.invoice_id) for s in sightings if s.open and s.invoice_id is not None
        ]
        return AfterPaymentReport(None, tally, to_notify=to_notify)

    @activity.defn(name="reconcile_disputes_page")
    @heartbeating
    async def reconcile_disputes_page(self, request: AfterPaymentPage) -> AfterPaymentReport:
        """A page of the window's disputes: one open past its due date is a
        `dispute_overdue`; one payrecon does not show as Paystack does, its invoice is asked
        to look at."""
        window = request.window
        try:
            page = await self._paystack.list_disputes(
                since=window.since, until=window.until, per_page=window.page_size, page=request.page
            )
        except PaystackError as error:
            raise _as_application_error(error) from error
        except MalformedRecord as error:
            raise ApplicationError(str(error), type=ErrorType.PAYSTACK_REJECTED) from error
        report = await asyncio.to_thread(self._match_disputes, window, page.records)
        report.next_page = request.page + 1 if page.next_cursor is not None else None
        return report

    def _match_disputes(
        self, window: RunWindow, records: list[DisputeRecord]
    ) -> AfterPaymentReport:
        now = datetime.now(UTC)
        tally = Tally(records_seen=len(records), pages=1)
        findings: list[Finding] = []
        to_notify: list[NotifyInvoice] = []
        with Session(self._engine) as session:
            owners = books.invoices_by_transaction(
                session, (r.transaction_id for r in records if r.transaction_id is not None)
            )
            for record in records:
                invoice_id = owners.get(record.transaction_id) if record.transaction_id else None
                findings.extend(judge_dispute(record, invoice_id, now=now))
                ours = session.get(InvoiceDispute, record.id)
                shown = DisputeStatus.from_paystack(record.status).value
                if invoice_id is not None and (ours is None or ours.status != shown):
                    to_notify.append(NotifyInvoice(invoice_id, record.id))
                elif ours is not None:
                    tally.records_matched += 1
            record_and_stage(self._operators, session, findings, run_id=window.run_id, at=now)
            session.commit()
        return AfterPaymentReport(None, tally, to_notify=to_notify)

    @activity.defn(name="notify_invoice")
    @heartbeating
    async def notify_invoice(self, target: NotifyInvoice) -> None:
        """Asks an invoice's workflow (woken if it has completed) to look at its refunds, or
        at one dispute, on Paystack: what it finds there, its one writer records."""
        invoice_id, dispute_id = target.invoice_id, target.dispute_id
        snapshot = await asyncio.to_thread(load_snapshot, self._engine, invoice_id)
        if snapshot is None:
            return
        if dispute_id is None:
            await signal_invoice(
                self._temporal,
                self._settings,
                snapshot,
                InvoiceWorkflow.refund_notified,
                RefundNotice(event=SWEEP_NOTICE),
            )
        else:
            await signal_invoice(
                self._temporal,
                self._settings,
                snapshot,
                InvoiceWorkflow.dispute_notified,
                DisputeNotice(event=SWEEP_NOTICE, dispute_id=dispute_id),
            )
        log.info("recon.notified", invoice_id=invoice_id, dispute_id=dispute_id)

    @activity.defn(name="vet_discrepancy_refund")
    def vet_discrepancy_refund(self, request: RefundRequestCheck) -> None:
        """Refuses (for good) a refund the database does not show an operator asked for."""
        refusal = books.refund_refusal(
            self._engine,
            request.discrepancy_id,
            transaction_id=request.transaction_id,
            amount=request.amount,
            actor=request.operator,
            note=request.note,
        )
        if refusal is not None:
            log.warning(
                "recon.refund_refused", discrepancy_id=request.discrepancy_id, reason=refusal
            )
            raise ApplicationError(
                f"refund refused: {refusal}", type=REFUND_REFUSED, non_retryable=True
            )

    @activity.defn(name="settle_discrepancy_refund")
    def settle_discrepancy_refund(self, outcome: RefundOutcome) -> None:
        """A processed refund resolves its discrepancy with the operator's note; any other
        end is on its audit trail, and it stays open."""
        books.settle_refund(
            self._engine,
            outcome.discrepancy_id,
            processed=outcome.status == "processed",
            actor=outcome.operator,
            note=outcome.note,
            detail={
                "refund_id": outcome.refund_id,
                "paystack_refund_id": outcome.paystack_refund_id,
                "status": outcome.status,
                "amount": outcome.amount,
                "failure": outcome.failure,
            },
            at=datetime.now(UTC),
        )
        log.info(
            "recon.refund_settled",
            discrepancy_id=outcome.discrepancy_id,
            refund_id=outcome.refund_id,
            status=outcome.status,
        )

    # --- settlements --------------------------------------------------------------------

    @activity.defn(name="reconcile_settlements_page")
    @heartbeating
    async def reconcile_settlements_page(self, request: SettlementsPage) -> SettlementsReport:
        try:
            page = await self._paystack.list_settlements(
                since=request.since,
                until=request.until,
                per_page=request.window.page_size,
                page=request.page,
            )
        except PaystackError as error:
            raise _as_application_error(error) from error
        except MalformedRecord as error:
            raise ApplicationError(str(error), type=ErrorType.PAYSTACK_REJECTED) from error
        now = datetime.now(UTC)
        tally = Tally(pages=1)
        to_add_up = []

        def store() -> None:
            with Session(self._engine) as session:
                for settlement in page.records:
                    if not request.since <= settlement.settlement_date < request.until:
                        continue
                    tally.count(settlement.currency, NET_SETTLED, settlement.total_amount)
                    if books.upsert_settlement(session, settlement, seen_at=now):
                        to_add_up.append(settlement.id)
                session.commit()

        await asyncio.to_thread(store)
        next_page = request.page + 1 if page.next_cursor is not None else None
        return SettlementsReport(next_page=next_page, tally=tally, to_add_up=to_add_up)

    @activity.defn(name="reconcile_settlement_transactions_page")
    @heartbeating
    async def reconcile_settlement_transactions_page(
        self, request: SettlementTransactionsPage
    ) -> SettlementTransactionsReport:
        try:
            page = await self._paystack.settlement_transactions(
                request.settlement_id, per_page=request.window.page_size, page=request.page
            )
        except PaystackError as error:
            raise _as_application_error(error) from error
        except MalformedRecord as error:
            raise ApplicationError(str(error), type=ErrorType.PAYSTACK_REJECTED) from error
        amount = request.amount + sum(record.amount for record in page.records)
        fees = request.fees + sum(record.fees or 0 for record in page.records)
        last = page.next_cursor is None
        pricing = self._settings.payrecon_pricing
        country = self._settings.payrecon_account_country

        def store() -> None:
            now = datetime.now(UTC)
            with Session(self._engine) as session:
                books.upsert_transactions(
                    session, page.records, seen_at=now, settlement_id=request.settlement_id
                )
                # Paid out now, whatever window they were made in: their fees are final.
                fee_findings = [
                    replace(finding, invoice_id=books.invoice_of(record.reference))
                    for record in page.records
                    if (finding := judge_fee(record, pricing=pricing, account_country=country))
                ]
                record_and_stage(
                    self._operators, session, fee_findings, run_id=request.window.run_id, at=now
                )
                if last:
                    self._judge_settlement(session, request, amount, fees, now)
                session.commit()

        await asyncio.to_thread(store)
        return SettlementTransactionsReport(
            next_page=None if last else request.page + 1,
            amount=amount,
            fees=fees,
            tally=Tally(pages=1),
        )

    def _judge_settlement(
        self,
        session: Session,
        request: SettlementTransactionsPage,
        amount: int,
        fees: int,
        now: datetime,
    ) -> None:
        record = books.settlement_record_of(session, request.settlement_id)
        if record is None:
            return
        finding = judge_settlement(record, amount, fees)
        if finding is not None:
            record_and_stage(
                self._operators, session, [finding], run_id=request.window.run_id, at=now
            )
        else:
            books.resolve_key(
                session,
                finding_key(DiscrepancyKind.SETTLEMENT_MISMATCH, request.settlement_id),
                run_id=request.window.run_id,
                at=now,
            )
        books.mark_settlement_checked(session, request.settlement_id, now)

    # --- the books as a whole -----------------------------------------------------------

    @activity.defn(name="check_books")
    @heartbeating
    async def check_books(self, check: BooksCheck) -> None:
        """The checks that look from our side: paid invoices Paystack does not show as
        paid, paid invoices never settled; then what this run no longer sees is resolved."""
        await self._paid_not_on_paystack(check)
        await asyncio.to_thread(self._unsettled, check)
        await asyncio.to_thread(self._resolve_unseen, check)

    async def _paid_not_on_paystack(self, check: BooksCheck) -> None:
        window = check.window
        after = ""
        while True:
            missing = await asyncio.to_thread(self._paid_missing_batch, window, after)
            if not missing:
                return
            for invoice in missing:
                after = invoice.id
                reference = invoice.paystack_reference or invoice.id
                # Perhaps made just before the window: Paystack's verify tells for sure.
                try:
                    verification = await self._paystack.verify(reference)
                except PaystackError as error:
                    raise _as_application_error(error) from error
                if verification.found and verification.status == "success":
                    continue
                kind = DiscrepancyKind.PAID_NOT_ON_PAYSTACK
                finding = Finding(
                    kind=kind,
                    key=finding_key(kind, reference),
                    record_at=invoice.created_at,
                    invoice_id=invoice.id,
                    paystack_reference=reference,
                    details={
                        "paystack_status": verification.status if verification.found else None,
                        "found": verification.found,
                        "amount": invoice.amount_paid,
                        "currency": invoice.currency,
                    },
                )
                await asyncio.to_thread(self._store, window.run_id, [finding])

    def _paid_missing_batch(self, window: RunWindow, after: str) -> list[Invoice]:
        with Session(self._engine) as session:
            return books.paid_invoices_missing_from_books(
                session, since=window.since, until=window.until, after_id=after, limit=BATCH
            )

    def _unsettled(self, check: BooksCheck) -> None:
        cutoff = check.now - timedelta(seconds=check.unsettled_after_seconds)
        kind = DiscrepancyKind.UNSETTLED
        after = ""
        seen: set[str] = set()
        while True:
            with Session(self._engine) as session:
                rows = books.unsettled_invoices(
                    session, paid_before=cutoff, after_id=after, limit=BATCH
                )
                if not rows:
                    break
                findings = []
                for invoice, transaction in rows:
                    after = invoice.id
                    reference = invoice.paystack_reference or invoice.id
                    finding = Finding(
                        kind=kind,
                        key=finding_key(kind, reference),
                        record_at=invoice.paid_at or invoice.created_at,
                        invoice_id=invoice.id,
                        paystack_reference=reference,
                        details={
                            "paid_at": invoice.paid_at,
                            "amount": invoice.amount_paid,
                            "currency": invoice.currency,
                            "transaction_seen": transaction is not None,
                        },
                    )
                    findings.append(finding)
                    seen.add(finding.key)
                record_and_stage(
                    self._operators, session, findings, run_id=check.window.run_id, at=check.now
                )
                session.commit()
        # Checked over every paid invoice: one open and not seen now was settled since.
        with Session(self._engine) as session:
            books.resolve_open_except(session, kind, seen, run_id=check.window.run_id, at=check.now)
            session.commit()

    def _resolve_unseen(self, check: BooksCheck) -> None:
        window = check.window
        with Session(self._engine) as session:
            books.resolve_unseen(
                session,
                run_id=window.run_id,
                kinds=(*TRANSACTION_KINDS, *AFTER_PAYMENT_KINDS),
                since=window.since,
                until=window.until,
                at=check.now,
            )
            session.commit()

    def _store(self, run_id: str, findings: list[Finding]) -> None:
        with Session(self._engine) as session:
            record_and_stage(
                self._operators, session, findings, run_id=run_id, at=datetime.now(UTC)
            )
            session.commit()


def record_and_stage(
    operators: Set[str],
    session: Session,
    findings: Sequence[Finding],
    *,
    run_id: str,
    at: datetime,
) -> list[books.Sighting]:
    """Stores the findings, and beside each discrepancy this run opened its operator event
    in the outbox (in the same transaction: an event is stored exactly when its discrepancy
    opens, and the workers' delivery loops send it to operators' endpoints)."""
    sightings = books.record_findings(session, findings, run_id=run_id, at=at)
    for sighting in sightings:
        if not sighting.opened_here:
            continue
        row = session.get(Discrepancy, sighting.discrepancy_id)
        if row is None:
            continue
        body = {
            "type": EventType.RECONCILIATION_DISCREPANCY.value,
            "timestamp": at.isoformat(),
            "data": DiscrepancyOut.model_validate(row).model_dump(mode="json", exclude={"audit"}),
        }
        outbox.stage(
            session,
            OutboundEvent(
                id=discrepancy_event_id(sighting.discrepancy_id, run_id),
                type=EventType.RECONCILIATION_DISCREPANCY.value,
                caller=OPERATORS,
                invoice_id=row.invoice_id,
                created_at=at,
                payload=json.dumps(body, separators=(",", ":")),
            ),
            at,
            operators=operators,
        )
    return sightings


def discrepancy_event_id(discrepancy_id: str, run_id: str) -> str:
    """One event per opening of a discrepancy: the same id however often it is retried."""
    return f"evt_{discrepancy_id}_{hashlib.sha256(run_id.encode()).hexdigest()[:12]}"
