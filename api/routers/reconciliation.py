"""Reconciliation against Paystack's books, for operators: runs of the sweep (scheduled, or
started here for any window), the discrepancies they found, and their resolution.

Operator keys only: the books of every caller are here. Other callers get 403."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response, status
from sqlalchemy import Engine
from sqlmodel import Session
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from api.deps import (
    Caller,
    CallerDep,
    EngineDep,
    KeyCheckedFirst,
    Limit,
    Offset,
    SettingsDep,
    TemporalDep,
    current_caller,
)
from api.errors import temporal_call
from api.reconciliation_schemas import (
    DISCREPANCY_ID_PATTERN,
    RUN_ID_PATTERN,
    AuditEntryOut,
    DiscrepancyOut,
    DiscrepancyPage,
    ResolveDiscrepancy,
    RunOut,
    RunPage,
    StartRun,
)
from api.schemas import AUTHENTICATED, WITH_BODY, ErrorBody
from config import Settings
from db import reconciliation as books
from db.models import PaystackTransaction, ReconciliationRun
from domain.discrepancies import REFUNDABLE_KINDS, DiscrepancyKind, DiscrepancyStatus
from workflows.discrepancy_refund import (
    DiscrepancyRefundInput,
    DiscrepancyRefundWorkflow,
    discrepancy_refund_workflow_id,
)
from workflows.schedules import start_reconciliation

log = structlog.get_logger(__name__)


def operator_only(caller: CallerDep) -> Caller:
    if not caller.operator:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail="reconciliation is for operators: use a key marked ':operator'",
        )
    return caller


router = APIRouter(
    prefix="/reconciliation",
    tags=["reconciliation"],
    dependencies=[Depends(current_caller), Depends(operator_only)],
    route_class=KeyCheckedFirst,
    responses={
        **AUTHENTICATED,
        403: {"model": ErrorBody, "description": "Not an operator's key"},
        422: {"model": ErrorBody, "description": "Invalid input"},
    },
)

RunId = Annotated[str, Path(pattern=RUN_ID_PATTERN, description="The run's id")]
DiscrepancyId = Annotated[
    str, Path(pattern=DISCREPANCY_ID_PATTERN, description="`dsc_` and 24 hex")
]
Responses = dict[int | str, dict[str, Any]]
NO_RUN: Responses = {404: {"model": ErrorBody, "description": "No such run"}}
NO_DISCREPANCY: Responses = {404: {"model": ErrorBody, "description": "No such discrepancy"}}
# A cell starting with one of these is a formula to a spreadsheet.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
REPORT_COLUMNS = (
    "id",
    "kind",
    "status",
    "invoice_id",
    "paystack_reference",
    "amount",
    "currency",
    "first_seen_at",
    "last_seen_at",
    "resolved_at",
    "resolved_by",
    "resolution_note",
)


@router.post(
    "/runs",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Reconcile a window now",
    responses={**WITH_BODY, 503: {"model": ErrorBody, "description": "Temporal is unavailable"}},
)
async def start_run(
    body: StartRun,
    engine: EngineDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    caller: Annotated[Caller, Depends(operator_only)],
) -> RunOut:
    """Starts a run over `[from, to)` and answers at once; its progress is at
    `GET /reconciliation/runs/{id}`."""
    deadline = asyncio.get_running_loop().time() + settings.payrecon_create_timeout_seconds
    async with temporal_call(deadline):
        run = await start_reconciliation(
            temporal,
            settings,
            engine,
            since=body.window_from,
            until=body.window_to,
            requested_by=caller.name,
        )
    log.info("recon.requested", run_id=run.id, caller=caller.name)
    return RunOut.model_validate(run)


@router.get("/runs", summary="Runs, newest first")
def list_runs(engine: EngineDep, limit: Limit = 50, offset: Offset = 0) -> RunPage:
    rows, total = books.list_runs(engine, limit=limit, offset=offset)
    return RunPage(
        items=[RunOut.model_validate(row) for row in rows], total=total, limit=limit, offset=offset
    )


@router.get("/runs/{run_id}", summary="One run", responses=NO_RUN)
def get_run(run_id: RunId, engine: EngineDep) -> RunOut:
    return RunOut.model_validate(_run(engine, run_id))


@router.get(
    "/runs/{run_id}/report.csv",
    summary="The discrepancies one run saw, as CSV",
    response_class=Response,
    responses={**NO_RUN, 200: {"content": {"text/csv": {}}}},
)
def run_report(run_id: RunId, engine: EngineDep) -> Response:
    run = _run(engine, run_id)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(REPORT_COLUMNS)
    for row in books.run_discrepancies(engine, run.id):
        values: dict[str, Any] = {
            **row.model_dump(),
            "amount": row.details.get("amount"),
            "currency": row.details.get("currency"),
        }
        writer.writerow([report_cell(values.get(column)) for column in REPORT_COLUMNS])
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{run.id}.csv"'},
    )


@router.get("/discrepancies", summary="Discrepancies, newest first")
def list_discrepancies(
    engine: EngineDep,
    kind: DiscrepancyKind | None = None,
    status_filter: Annotated[DiscrepancyStatus | None, Query(alias="status")] = None,
    invoice_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> DiscrepancyPage:
    rows, total = books.list_discrepancies(
        engine,
        kind=kind.value if kind else None,
        status=status_filter.value if status_filter else None,
        invoice_id=invoice_id,
        limit=limit,
        offset=offset,
    )
    return DiscrepancyPage(
        items=[DiscrepancyOut.model_validate(row) for row in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get(
    "/discrepancies/{discrepancy_id}",
    summary="One discrepancy, with its audit trail",
    responses=NO_DISCREPANCY,
)
def get_discrepancy(discrepancy_id: DiscrepancyId, engine: EngineDep) -> DiscrepancyOut:
    found = books.get_discrepancy(engine, discrepancy_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no discrepancy {discrepancy_id}")
    row, audit = found
    answer = DiscrepancyOut.model_validate(row)
    answer.audit = [AuditEntryOut.model_validate(entry) for entry in audit]
    return answer


@router.post(
    "/discrepancies/{discrepancy_id}/resolve",
    summary="Resolve a discrepancy, with a note",
    responses={
        **NO_DISCREPANCY,
        **WITH_BODY,
        409: {"model": ErrorBody, "description": "Already resolved"},
    },
)
def resolve_discrepancy(
    discrepancy_id: DiscrepancyId,
    body: ResolveDiscrepancy,
    engine: EngineDep,
    caller: Annotated[Caller, Depends(operator_only)],
) -> DiscrepancyOut:
    """An operator's resolution stands: a later run that sees the same thing again does not
    open it again."""
    try:
        books.resolve(
            engine,
            discrepancy_id,
            actor=f"{books.OPERATOR_PREFIX}{caller.name}",
            note=body.note,
            at=datetime.now(UTC),
        )
    except LookupError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no discrepancy {discrepancy_id}") from None
    except books.AlreadyResolved:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"discrepancy {discrepancy_id} is already resolved"
        ) from None
    log.info("recon.resolved", discrepancy_id=discrepancy_id, caller=caller.name)
    return get_discrepancy(discrepancy_id, engine)


# The payments an operator may send back from their discrepancy: no invoice keeps them.


@router.post(
    "/discrepancies/{discrepancy_id}/refund",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Refund an orphan or duplicate payment; resolved once the refund is processed",
    responses={
        **WITH_BODY,
        404: {"model": ErrorBody, "description": "No such discrepancy"},
        409: {
            "model": ErrorBody,
            "description": "Not an orphan or duplicate payment, already resolved, or its "
            "transaction not on the books the sweep keeps",
        },
        503: {"model": ErrorBody, "description": "Temporal is unavailable (retry)"},
    },
)
async def refund_discrepancy(
    discrepancy_id: DiscrepancyId,
    body: ResolveDiscrepancy,
    engine: EngineDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    caller: Annotated[Caller, Depends(operator_only)],
) -> DiscrepancyOut:
    """Refunds the whole transaction through Paystack (one workflow per discrepancy: a
    repeat makes no second refund) and answers at once; the discrepancy is resolved with
    the note once Paystack has processed the refund, and its audit trail follows it."""
    found = books.get_discrepancy(engine, discrepancy_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no discrepancy {discrepancy_id}")
    row, _ = found
    if row.kind not in REFUNDABLE_KINDS:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"a {row.kind} is not refunded from here: only an orphan or duplicate payment",
        )
    if row.status == DiscrepancyStatus.RESOLVED.value:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"discrepancy {discrepancy_id} is already resolved"
        )
    with Session(engine) as session:
        transaction = books.transaction_by_reference(session, row.paystack_reference or "")
    if transaction is None:
        raise HTTPException(
            status.HTTP_409_CONFLICT, "its transaction is not on the books the sweep keeps"
        )
    actor = f"{books.OPERATOR_PREFIX}{caller.name}"
    # On the trail first: the refund's workflow makes no refund that the trail does not show
    # an operator asked for (books.refund_refusal).
    books.note_refund_requested(
        engine, discrepancy_id, actor=actor, note=body.note, at=datetime.now(UTC)
    )
    deadline = asyncio.get_running_loop().time() + settings.payrecon_create_timeout_seconds
    try:
        async with temporal_call(deadline):
            await _start_refund(temporal, settings, discrepancy_id, transaction, actor, body.note)
    except WorkflowAlreadyStartedError:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            "this discrepancy's payment was refunded once already: its audit trail says how "
            "that ended",
        ) from None
    log.info("recon.refund_requested", discrepancy_id=discrepancy_id, caller=caller.name)
    return get_discrepancy(discrepancy_id, engine)


async def _start_refund(
    temporal: Client,
    settings: Settings,
    discrepancy_id: str,
    transaction: PaystackTransaction,
    actor: str,
    note: str,
) -> None:
    await temporal.start_workflow(
        DiscrepancyRefundWorkflow.run,
        DiscrepancyRefundInput(
            discrepancy_id=discrepancy_id,
            transaction_id=transaction.id,
            amount=transaction.amount,
            operator=actor,
            note=note,
            paystack_task_queue=settings.temporal_paystack_task_queue,
            poll_schedule=settings.payrecon_refund_poll_schedule,
        ),
        id=discrepancy_refund_workflow_id(discrepancy_id),
        task_queue=settings.temporal_task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        static_summary=f"refund {transaction.currency} {transaction.amount / 100:.2f}",
    )


def _run(engine: Engine, run_id: str) -> ReconciliationRun:
    run = books.get_run(engine, run_id)
    if run is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no reconciliation run {run_id}")
    return run


def report_cell(value: Any) -> str:
    """One CSV cell. Text a spreadsheet would read as a formula (a Paystack reference or a
    customer's words can be anything) is neutralised with a leading quote, as OWASP
    recommends for CSV injection; numbers are numbers."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    text = str(value)
    if not isinstance(value, int | float) and text.startswith(FORMULA_STARTS):
        return "'" + text
    return text
