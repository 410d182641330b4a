"""The reconciliation sweep's tables: runs, Paystack's transactions and settlements as the
sweep saw them, and discrepancies with their append-only audit trail. Every write here is
idempotent, so an activity retried, or a run resumed after a crash, changes nothing twice."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, or_
from sqlmodel import Session, col, select

from db.models import (
    Discrepancy,
    DiscrepancyAudit,
    Invoice,
    InvoiceRefund,
    PaystackTransaction,
    ReconciliationRun,
    RunFinding,
    Settlement,
)
from domain.discrepancies import (
    REFUNDABLE_KINDS,
    DiscrepancyKind,
    DiscrepancyStatus,
    Finding,
    InvoiceFacts,
    RefundFacts,
)
from domain.invoice import InvoiceStatus, invoice_id_from_reference, is_invoice_reference
from paystack.settlements import SettlementRecord
from paystack.transactions import TransactionRecord

OPERATOR_PREFIX = "operator:"


class AlreadyResolved(Exception):
    pass


# Invoices whose payment should stand on Paystack's books as `success` and be paid out: paid,
# or refunded in part (a full refund reverses the transaction, and so explains it).
SETTLED_WHEN_PAID = [InvoiceStatus.PAID.value, InvoiceStatus.PARTIALLY_REFUNDED.value]
# Invoices that took a payment, whatever became of it since.
HOLDING_A_PAYMENT = [
    InvoiceStatus.PAID.value,
    InvoiceStatus.NEEDS_REVIEW.value,
    InvoiceStatus.PARTIALLY_REFUNDED.value,
    InvoiceStatus.REFUNDED.value,
]


def new_discrepancy_id() -> str:
    return "dsc_" + secrets.token_hex(12)


def run_actor(run_id: str) -> str:
    return f"run:{run_id}"


# --- runs -----------------------------------------------------------------------------


def start_run(engine: Engine, run: ReconciliationRun) -> ReconciliationRun:
    """The run's row, made once: a start retried (or the API's row) is kept as it is."""
    with Session(engine, expire_on_commit=False) as session:
        existing = session.get(ReconciliationRun, run.id)
        if existing is not None:
            return existing
        session.add(run)
        session.commit()
        return run


def delete_run(engine: Engine, run_id: str) -> None:
    """A run whose workflow never started."""
    with Session(engine) as session:
        run = session.get(ReconciliationRun, run_id)
        if run is not None:
            session.delete(run)
            session.commit()


def finish_run(
    engine: Engine,
    run_id: str,
    *,
    status: str,
    at: datetime,
    counts: dict[str, int],
    totals: dict[str, dict[str, int]],
    records_seen: int,
    records_matched: int,
    pages: int,
    error: str | None = None,
) -> None:
    with Session(engine) as session:
        run = session.get(ReconciliationRun, run_id)
        if run is None:
            raise LookupError(f"no reconciliation run {run_id}")
        run.status = status
        run.finished_at = at
        run.counts = counts
        run.totals = totals
        run.records_seen = records_seen
        run.records_matched = records_matched
        run.pages = pages
        run.error = error
        session.add(run)
        session.commit()


def get_run(engine: Engine, run_id: str) -> ReconciliationRun | None:
    with Session(engine) as session:
        return session.get(ReconciliationRun, run_id)


def list_runs(engine: Engine, *, limit: int, offset: int) -> tuple[list[ReconciliationRun], int]:
    with Session(engine) as session:
        total = session.exec(select(func.count()).select_from(ReconciliationRun)).one()
        rows = session.exec(
            select(ReconciliationRun)
            .order_by(col(ReconciliationRun.started_at).desc(), col(ReconciliationRun.id))
            .offset(offset)
            .limit(limit)
        ).all()
        return list(rows), total


def last_completed_run(engine: Engine) -> ReconciliationRun | None:
    with Session(engine) as session:
        return session.exec(
            select(ReconciliationRun)
            .where(ReconciliationRun.status == "completed")
            .order_by(col(ReconciliationRun.finished_at).desc())
            .limit(1)
        ).first()


# --- Paystack's books -------------------------------------------------------------------


def invoice_facts(session: Session, invoice_ids: Iterable[str]) -> dict[str, InvoiceFacts]:
    wanted = sorted(set(invoice_ids))
    if not wanted:
        return {}
    rows = session.exec(select(Invoice).where(col(Invoice.id).in_(wanted))).all()
    return {
        row.id: InvoiceFacts(
            invoice_id=row.id,
            status=InvoiceStatus(row.status),
            amount=row.amount,
            currency=row.currency,
            paystack_reference=row.paystack_reference,
            paystack_transaction_id=row.paystack_transaction_id,
            amount_paid=row.amount_paid,
        )
        for row in rows
    }


def invoice_of(reference: str) -> str | None:
    return invoice_id_from_reference(reference) if is_invoice_reference(reference) else None


def invoices_by_transaction(session: Session, transaction_ids: Iterable[int]) -> dict[int, str]:
    """The invoice each Paystack transaction id paid, where one did."""
    wanted = sorted(set(transaction_ids))
    if not wanted:
        return {}
    statement = select(Invoice.paystack_transaction_id, Invoice.id).where(
        col(Invoice.paystack_transaction_id).in_(wanted)
    )
    return {tx: invoice_id for tx, invoice_id in session.exec(statement) if tx is not None}


def refund_facts(
    session: Session, paystack_ids: Iterable[int], refund_ids: Iterable[str]
) -> tuple[dict[int, RefundFacts], dict[str, RefundFacts]]:
    """payrecon's refunds by Paystack's id, and by payrecon's own (a refund whose Paystack
    id it has not learned yet)."""
    statement = select(InvoiceRefund).where(
        or_(
            col(InvoiceRefund.paystack_refund_id).in_(sorted(set(paystack_ids))),
            col(InvoiceRefund.id).in_(sorted(set(refund_ids))),
        )
    )
    by_paystack: dict[int, RefundFacts] = {}
    by_own: dict[str, RefundFacts] = {}
    for row in session.exec(statement):
        facts = RefundFacts(row.id, row.invoice_id, row.amount, row.status)
        by_own[row.id] = facts
        if row.paystack_refund_id is not None:
            by_paystack[row.paystack_refund_id] = facts
    return by_paystack, by_own


def upsert_transactions(
    session: Session,
    records: Sequence[TransactionRecord],
    *,
    seen_at: datetime,
    settlement_id: int | None = None,
) -> None:
    """Paystack's records as seen now; a settlement's page also links each to it."""
    if not records:
        return
    ids = [record.id for record in records]
    existing = {
        row.id: row
        for row in session.exec(
            select(PaystackTransaction).where(col(PaystackTransaction.id).in_(ids))
        ).all()
    }
    for record in records:
        row = existing.get(record.id)
        if row is None:
            row = PaystackTransaction(
                id=record.id,
                reference=record.reference,
                invoice_id=invoice_of(record.reference),
                status=record.status,
                amount=record.amount,
                currency=record.currency,
                created_at=record.created_at,
                seen_at=seen_at,
            )
        row.status = record.status
        row.amount = record.amount
        row.currency = record.currency
        row.fees = record.fees
        row.channel = record.channel
        row.card_country = record.card_country
        row.paid_at = record.paid_at
        row.seen_at = seen_at
        if settlement_id is not None:
            row.settlement_id = settlement_id
        session.add(row)


def upsert_settlement(session: Session, record: SettlementRecord, *, seen_at: datetime) -> bool:
    """Stores the settlement; True when its transactions need adding up (new, changed on
    Paystack since, or never added up)."""
    row = session.get(Settlement, record.id)
    if row is None:
        row = Settlement(
            id=record.id,
            status=record.status,
            currency=record.currency,
            total_processed=record.total_processed,
            total_fees=record.total_fees,
            deductions=record.deductions,
            total_amount=record.total_amount,
            settlement_date=record.settlement_date,
            paystack_updated_at=record.updated_at,
            seen_at=seen_at,
        )
        session.add(row)
        return True
    unchanged = row.checked_at is not None and row.paystack_updated_at == record.updated_at
    row.status = record.status
    row.currency = record.currency
    row.total_processed = record.total_processed
    row.total_fees = record.total_fees
    row.deductions = record.deductions
    row.total_amount = record.total_amount
    row.settlement_date = record.settlement_date
    row.paystack_updated_at = record.updated_at
    row.seen_at = seen_at
    session.add(row)
    return not unchanged


def mark_settlement_checked(session: Session, settlement_id: int, at: datetime) -> None:
    row = session.get(Settlement, settlement_id)
    if row is not None:
        row.checked_at = at
        session.add(row)


def transactions_by_reference(
    engine: Engine, references: Sequence[str]
) -> dict[str, PaystackTransaction]:
    """Invoices' transactions as the sweep last saw them: their settlement and fees."""
    if not references:
        return {}
    with Session(engine) as session:
        rows = session.exec(
            select(PaystackTransaction).where(col(PaystackTransaction.reference).in_(references))
        ).all()
        return {row.reference: row for row in rows}


def unsettled_invoices(
    session: Session, *, paid_before: datetime, after_id: str, limit: int
) -> list[tuple[Invoice, PaystackTransaction | None]]:
    """Paid invoices, paid before `paid_before`, whose transaction is in no settlement, in
    id order from `after_id` (a page at a time: memory does not grow with the books)."""
    statement = (
        select(Invoice, PaystackTransaction)
        .join(
            PaystackTransaction,
            col(PaystackTransaction.reference) == col(Invoice.paystack_reference),
            isouter=True,
        )
        .where(
            col(Invoice.status).in_(SETTLED_WHEN_PAID),
            col(Invoice.paid_at) < paid_before,
            col(Invoice.id) > after_id,
            col(PaystackTransaction.settlement_id).is_(None),
        )
        .order_by(col(Invoice.id))
        .limit(limit)
    )
    return [(invoice, transaction) for invoice, transaction in session.exec(statement).all()]


def paid_invoices_missing_from_books(
    session: Session, *, since: datetime, until: datetime, after_id: str, limit: int
) -> list[Invoice]:
    """Paid invoices made in the window whose reference no sweep has seen succeed."""
    statement = (
        select(Invoice)
        .join(
            PaystackTransaction,
            col(PaystackTransaction.reference) == col(Invoice.paystack_reference),
            isouter=True,
        )
        .where(
            col(Invoice.status).in_(SETTLED_WHEN_PAID),
            col(Invoice.created_at) >= since,
            col(Invoice.created_at) < until,
            col(Invoice.id) > after_id,
            or_(
                col(PaystackTransaction.id).is_(None), col(PaystackTransaction.status) != "success"
            ),
        )
        .order_by(col(Invoice.id))
        .limit(limit)
    )
    return list(session.exec(statement).all())


def payrecon_volume(session: Session, *, since: datetime, until: datetime) -> dict[str, int]:
    """What payrecon holds as paid for the window's transactions, per currency."""
    statement = (
        select(Invoice.currency, func.sum(Invoice.amount_paid))
        .join(
            PaystackTransaction,
            col(PaystackTransaction.reference) == col(Invoice.paystack_reference),
        )
        .where(
            col(Invoice.status).in_(HOLDING_A_PAYMENT),
            col(Invoice.amount_paid).is_not(None),
            col(PaystackTransaction.created_at) >= since,
            col(PaystackTransaction.created_at) < until,
        )
        .group_by(Invoice.currency)
    )
    return {currency: int(total or 0) for currency, total in session.exec(statement).all()}


# --- discrepancies ----------------------------------------------------------------------


@dataclass(frozen=True)
class Sighting:
    discrepancy_id: str
    kind: DiscrepancyKind
    invoice_id: str | None
    # Opened (first, or again after a run resolved it) by this run: told to operators.
    opened_here: bool
    open: bool


def record_findings(
    session: Session, findings: Sequence[Finding], *, run_id: str, at: datetime
) -> list[Sighting]:
    """Each finding stored once by its key: a new one opened, one seen before updated. One
    an operator resolved stays resolved; one a run resolved opens again."""
    if not findings:
        return []
    keys = [finding.key for finding in findings]
    existing = {
        row.key: row
        for row in session.exec(select(Discrepancy).where(col(Discrepancy.key).in_(keys))).all()
    }
    sightings = []
    actor = run_actor(run_id)
    for finding in findings:
        row = existing.get(finding.key)
        if row is None:
            row = Discrepancy(
                id=new_discrepancy_id(),
                key=finding.key,
                kind=finding.kind.value,
                status=DiscrepancyStatus.OPEN.value,
                invoice_id=finding.invoice_id,
                paystack_reference=finding.paystack_reference,
                details=_jsonable(finding.details),
                record_at=finding.record_at,
                first_seen_at=at,
                last_seen_at=at,
                first_run_id=run_id,
                last_run_id=run_id,
                opened_run_id=run_id,
            )
            existing[finding.key] = row
            session.add(row)
            _audit(session, row.id, at, actor, "opened", detail=row.details)
            sightings.append(
                Sighting(row.id, finding.kind, row.invoice_id, opened_here=True, open=True)
            )
            continue
        row.last_seen_at = at
        row.last_run_id = run_id
        row.details = {**row.details, **_jsonable(finding.details)}
        reopened = row.status == DiscrepancyStatus.RESOLVED.value and not (
            row.resolved_by or ""
        ).startswith(OPERATOR_PREFIX)
        if reopened:
            row.opened_run_id = run_id
            row.status = DiscrepancyStatus.OPEN.value
            row.resolved_at = row.resolved_by = row.resolution_note = None
            _audit(session, row.id, at, actor, "reopened", detail=row.details)
        session.add(row)
        sightings.append(
            Sighting(
                row.id,
                finding.kind,
                row.invoice_id,
                opened_here=row.opened_run_id == run_id,
                open=row.status == DiscrepancyStatus.OPEN.value,
            )
        )
    _link_to_run(session, run_id, sightings)
    return sightings


def _link_to_run(session: Session, run_id: str, sightings: Sequence[Sighting]) -> None:
    ids = {sighting.discrepancy_id: sighting.kind for sighting in sightings}
    linked = set(
        session.exec(
            select(RunFinding.discrepancy_id).where(
                RunFinding.run_id == run_id, col(RunFinding.discrepancy_id).in_(list(ids))
            )
        ).all()
    )
    for discrepancy_id, kind in ids.items():
        if discrepancy_id not in linked:
            session.add(RunFinding(run_id=run_id, discrepancy_id=discrepancy_id, kind=kind.value))


def resolve_unseen(
    session: Session,
    *,
    run_id: str,
    kinds: Sequence[DiscrepancyKind],
    since: datetime,
    until: datetime,
    at: datetime,
) -> int:
    """Open discrepancies of `kinds` about records in [since, until) that this run did not
    see again: what caused them is gone."""
    rows = session.exec(
        select(Discrepancy).where(
            Discrepancy.status == DiscrepancyStatus.OPEN.value,
            col(Discrepancy.kind).in_([kind.value for kind in kinds]),
            col(Discrepancy.record_at) >= since,
            col(Discrepancy.record_at) < until,
            Discrepancy.last_run_id != run_id,
        )
    ).all()
    actor = run_actor(run_id)
    for row in rows:
        _resolve(session, row, at, actor, f"not seen again by {actor}")
    return len(rows)


def resolve(
    engine: Engine, discrepancy_id: str, *, actor: str, note: str, at: datetime
) -> Discrepancy:
    """An operator's (or a heal's) resolution; AlreadyResolved if it was."""
    with Session(engine, expire_on_commit=False) as session:
        row = session.get(Discrepancy, discrepancy_id, with_for_update=True)
        if row is None:
            raise LookupError(discrepancy_id)
        if row.status == DiscrepancyStatus.RESOLVED.value:
            raise AlreadyResolved(discrepancy_id)
        _resolve(session, row, at, actor, note)
        session.commit()
        return row


def note_refund_requested(
    engine: Engine, discrepancy_id: str, *, actor: str, note: str, at: datetime
) -> None:
    with Session(engine) as session:
        _audit(session, discrepancy_id, at, actor, "refund_requested", note=note)
        session.commit()


def refund_refusal(
    engine: Engine,
    discrepancy_id: str,
    *,
    transaction_id: int,
    amount: int,
    actor: str,
    note: str,
) -> str | None:
    """Why a refund of this discrepancy's payment must not be made as asked, or None: it
    must be a refundable kind, still open, its transaction (on the books the sweep keeps)
    the one named for the amount named, and an operator's request for it, with this very
    note, recorded by the API. A workflow started any other way moves no money."""
    with Session(engine) as session:
        row = session.get(Discrepancy, discrepancy_id)
        if row is None:
            return f"no discrepancy {discrepancy_id}"
        if row.kind not in REFUNDABLE_KINDS:
            return f"a {row.kind} is not refunded"
        if row.status == DiscrepancyStatus.RESOLVED.value:
            return "the discrepancy is resolved"
        transaction = transaction_by_reference(session, row.paystack_reference or "")
        if transaction is None or (transaction.id, transaction.amount) != (transaction_id, amount):
            return "the transaction or the amount is not the discrepancy's"
        asked = select(DiscrepancyAudit).where(
            DiscrepancyAudit.discrepancy_id == discrepancy_id,
            DiscrepancyAudit.action == "refund_requested",
            DiscrepancyAudit.actor == actor,
            DiscrepancyAudit.note == note,
        )
        if session.exec(asked).first() is None:
            return "no operator asked for this refund through payrecon's API"
    return None


def settle_refund(
    engine: Engine,
    discrepancy_id: str,
    *,
    processed: bool,
    actor: str,
    note: str,
    detail: dict[str, Any],
    at: datetime,
) -> None:
    """The end of an operator's refund of the discrepancy's payment: on its trail, and, once
    processed, the discrepancy resolved with the operator's note (unless it already is)."""
    with Session(engine) as session:
        row = session.get(Discrepancy, discrepancy_id, with_for_update=True)
        if row is None:
            return
        action = "refund_processed" if processed else f"refund_{detail['status']}"
        _audit(session, discrepancy_id, at, actor, action, detail=_jsonable(detail))
        if processed and row.status != DiscrepancyStatus.RESOLVED.value:
            _resolve(session, row, at, actor, note)
        session.commit()


def transaction_by_reference(session: Session, reference: str) -> PaystackTransaction | None:
    statement = select(PaystackTransaction).where(PaystackTransaction.reference == reference)
    return session.exec(statement).first()


def note_heal(
    engine: Engine, discrepancy_id: str, *, invoice_status: str, at: datetime, healed: bool
) -> None:
    """What the heal's verify decided, on the discrepancy and its trail."""
    with Session(engine) as session:
        row = session.get(Discrepancy, discrepancy_id, with_for_update=True)
        if row is None:
            return
        row.details = {
            **row.details,
            "heal": {"invoice_status": invoice_status, "at": at.isoformat()},
        }
        session.add(row)
        detail = {"invoice_status": invoice_status}
        _audit(session, row.id, at, "heal", "healed" if healed else "heal_tried", detail=detail)
        if healed and row.status == DiscrepancyStatus.OPEN.value:
            _resolve(session, row, at, "heal", f"verified now: the invoice is {invoice_status}")
        session.commit()


def resolve_key(session: Session, key: str, *, run_id: str, at: datetime) -> None:
    """The subject of `key` was checked again and is fine now."""
    row = session.exec(select(Discrepancy).where(Discrepancy.key == key)).first()
    if row is not None and row.status == DiscrepancyStatus.OPEN.value:
        actor = run_actor(run_id)
        _resolve(session, row, at, actor, f"checked again by {actor}: it adds up")


def resolve_open_except(
    session: Session, kind: DiscrepancyKind, keys: set[str], *, run_id: str, at: datetime
) -> None:
    """For a kind checked over all of the books: every open one this run did not find."""
    rows = session.exec(
        select(Discrepancy).where(
            Discrepancy.status == DiscrepancyStatus.OPEN.value, Discrepancy.kind == kind.value
        )
    ).all()
    actor = run_actor(run_id)
    for row in rows:
        if row.key not in keys:
            _resolve(session, row, at, actor, f"not seen again by {actor}")


def run_counts(engine: Engine, run_id: str) -> dict[str, int]:
    """The discrepancies this run saw, by kind."""
    with Session(engine) as session:
        rows = session.exec(
            select(RunFinding.kind, func.count())
            .where(RunFinding.run_id == run_id)
            .group_by(RunFinding.kind)
        ).all()
        return {kind: count for kind, count in rows}


def run_discrepancies(engine: Engine, run_id: str) -> list[Discrepancy]:
    """The discrepancies this run saw, as they stand now."""
    with Session(engine) as session:
        return list(
            session.exec(
                select(Discrepancy)
                .join(RunFinding, col(RunFinding.discrepancy_id) == col(Discrepancy.id))
                .where(RunFinding.run_id == run_id)
                .order_by(col(Discrepancy.kind), col(Discrepancy.id))
            ).all()
        )


def settlement_record_of(session: Session, settlement_id: int) -> SettlementRecord | None:
    row = session.get(Settlement, settlement_id)
    if row is None:
        return None
    return SettlementRecord(
        id=row.id,
        status=row.status,
        currency=row.currency,
        total_processed=row.total_processed,
        total_fees=row.total_fees,
        deductions=row.deductions,
        total_amount=row.total_amount,
        settlement_date=row.settlement_date,
        updated_at=row.paystack_updated_at,
    )


def get_discrepancy(
    engine: Engine, discrepancy_id: str
) -> tuple[Discrepancy, list[DiscrepancyAudit]] | None:
    with Session(engine) as session:
        row = session.get(Discrepancy, discrepancy_id)
        if row is None:
            return None
        audit = session.exec(
            select(DiscrepancyAudit)
            .where(DiscrepancyAudit.discrepancy_id == discrepancy_id)
            .order_by(col(DiscrepancyAudit.id))
        ).all()
        return row, list(audit)


def list_discrepancies(
    engine: Engine,
    *,
    kind: str | None,
    status: str | None,
    invoice_id: str | None,
    limit: int,
    offset: int,
) -> tuple[list[Discrepancy], int]:
    conditions: list[Any] = []
    if kind is not None:
        conditions.append(Discrepancy.kind == kind)
    if status is not None:
        conditions.append(Discrepancy.status == status)
    if invoice_id is not None:
        conditions.append(Discrepancy.invoice_id == invoice_id)
    with Session(engine) as session:
        total = session.exec(select(func.count()).select_from(Discrepancy).where(*conditions)).one()
        rows = session.exec(
            select(Discrepancy)
            .where(*conditions)
            .order_by(col(Discrepancy.first_seen_at).desc(), col(Discrepancy.id))
            .offset(offset)
            .limit(limit)
        ).all()
        return list(rows), total


def open_counts(engine: Engine) -> dict[str, int]:
    with Session(engine) as session:
        rows = session.exec(
            select(Discrepancy.kind, func.count())
            .where(Discrepancy.status == DiscrepancyStatus.OPEN.value)
            .group_by(Discrepancy.kind)
        ).all()
        return {kind: count for kind, count in rows}


@dataclass(frozen=True)
class SweepFigures:
    """What the metrics show of the sweep."""

    open: dict[str, int] = field(default_factory=dict)
    healed: int = 0
    last_success_at: datetime | None = None
    records_seen: int = 0
    records_matched: int = 0


def sweep_figures(engine: Engine) -> SweepFigures:
    last = last_completed_run(engine)
    with Session(engine) as session:
        healed = session.exec(
            select(func.count())
            .select_from(DiscrepancyAudit)
            .where(DiscrepancyAudit.action == "healed")
        ).one()
    return SweepFigures(
        open=open_counts(engine),
        healed=healed,
        last_success_at=last.finished_at if last else None,
        records_seen=last.records_seen if last else 0,
        records_matched=last.records_matched if last else 0,
    )


def _resolve(session: Session, row: Discrepancy, at: datetime, actor: str, note: str) -> None:
    row.status = DiscrepancyStatus.RESOLVED.value
    row.resolved_at = at
    row.resolved_by = actor
    row.resolution_note = note
    session.add(row)
    _audit(session, row.id, at, actor, "resolved", note=note)


def _audit(
    session: Session,
    discrepancy_id: str,
    at: datetime,
    actor: str,
    action: str,
    *,
    note: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    session.add(
        DiscrepancyAudit(
            discrepancy_id=discrepancy_id,
            at=at,
            actor=actor,
            action=action,
            note=note,
            detail=detail or {},
        )
    )


def _jsonable(details: dict[str, Any]) -> dict[str, Any]:
    return {
        key: value.isoformat() if isinstance(value, datetime) else value
        for key, value in details.items()
    }
