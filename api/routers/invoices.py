"""Invoices: create (with its payment link), read, find, cancel, and the invoice's timeline."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

import structlog
from fastapi import (
    APIRouter,
    Depends,
    Header,
    HTTPException,
    Path,
    Query,
    Request,
    Response,
    status,
)
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import AwareDatetime, EmailStr
from sqlalchemy import Engine
from temporalio.client import (
    Client,
    RPCTimeoutOrCancelledError,
    WorkflowUpdateFailedError,
    WorkflowUpdateStage,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

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
from api.errors import refused, temporal_call, unavailable
from api.schemas import (
    AUTHENTICATED,
    WITH_BODY,
    CreateInvoice,
    DisputeOut,
    ErrorBody,
    InvoiceOut,
    InvoicePage,
    TimelineEntryOut,
    TimelinePage,
)
from config import CodecKey, Settings
from db import queries, timeline
from db import reconciliation as books
from db.models import Invoice
from db.projection import apply_snapshot, snapshot_of
from db.timeline import TimelineKind
from domain.invoice import DEFAULT_CALLER, INVOICE_ID_PATTERN, InvoiceRequest, InvoiceStatus
from workflows.invoice import InvoiceWorkflow
from workflows.starter import invoice_start, reach_invoice
from workflows.types import OpenInvoice, PaymentCheck, workflow_id_for

log = structlog.get_logger(__name__)

router = APIRouter(
    prefix="/invoices",
    tags=["invoices"],
    dependencies=[Depends(current_caller)],
    route_class=KeyCheckedFirst,
    responses=AUTHENTICATED,
)

InvoiceId = Annotated[str, Path(pattern=INVOICE_ID_PATTERN, description="The invoice id")]
# As the Idempotency-Key header takes them.
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]+$"
METADATA_PARAM = re.compile(r"^metadata\[(?P<key>[A-Za-z0-9_.-]{1,64})\]$")
MAX_METADATA_FILTERS = 5
# Metadata is at most 4 KiB in all; no single value to look for is longer.
MAX_METADATA_VALUE_CHARS = 4096


# Ids keyed for this use alone: the codec keys encrypt payloads too.
INVOICE_ID_PURPOSE = b"payrecon invoice id\0"


def invoice_ids_for(caller: str, idempotency_key: str, keys: Sequence[CodecKey]) -> list[str]:
    """The ids the same caller's same Idempotency-Key may name, the one a new invoice gets
    first: keyed (HMAC) with each codec key, newest first, so nobody without the key can
    work out an invoice's id (the checkout return needs none) and an id made before a key
    rotation is still found; then the id of before keyed ids (a plain SHA-256)."""
    # Keys are printable ASCII: with a NUL between, no named caller's input is a bare key.
    scoped = idempotency_key if caller == DEFAULT_CALLER else f"{caller}\0{idempotency_key}"
    keyed = [
        hmac.new(key.key, INVOICE_ID_PURPOSE + scoped.encode(), hashlib.sha256).hexdigest()
        for key in keys
    ]
    unkeyed = hashlib.sha256(scoped.encode()).hexdigest()
    return [f"inv-{digest[:24]}" for digest in [*keyed, unkeyed]]


def invoice_id_for(caller: str, idempotency_key: str, keys: Sequence[CodecKey]) -> str:
    """The id a new invoice for this caller's Idempotency-Key gets."""
    return invoice_ids_for(caller, idempotency_key, keys)[0]


def known_invoice_id(
    engine: Engine, caller: str, idempotency_key: str, keys: Sequence[CodecKey]
) -> str:
    """The id this key already names (made before a codec key rotation, or before ids were
    keyed), or else a new invoice's. A create retried across such a change finds its
    invoice: every invoice's row is written before its payment link is handed out."""
    current, *earlier = invoice_ids_for(caller, idempotency_key, keys)
    if earlier and not queries.invoice_exists(engine, current):
        for invoice_id in earlier:
            if queries.invoice_exists(engine, invoice_id):
                return invoice_id
    return current


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create an invoice and get its payment link",
    responses={
        200: {"model": InvoiceOut, "description": "The invoice this Idempotency-Key created"},
        **WITH_BODY,
        409: {"model": ErrorBody, "description": "Idempotency-Key reused with another body"},
        422: {"model": ErrorBody, "description": "Invalid input"},
        503: {"model": ErrorBody, "description": "Paystack or Temporal unavailable"},
    },
)
async def create_invoice(
    body: CreateInvoice,
    response: Response,
    caller: CallerDep,
    settings: SettingsDep,
    engine: EngineDep,
    temporal: TemporalDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=255,
            pattern=IDEMPOTENCY_KEY_PATTERN,
            description="Repeat a create safely: the same key returns the same invoice",
        ),
    ] = None,
) -> InvoiceOut:
    if not settings.payrecon_development_mode:
        allowed = settings.payrecon_redirect_hosts.get(caller.name, frozenset())
        if problems := body.redirect_refusals(allowed):
            raise RequestValidationError(problems)
    if idempotency_key is None:
        invoice_id = f"inv-{secrets.token_hex(12)}"
    else:
        invoice_id = await run_in_threadpool(
            known_invoice_id, engine, caller.name, idempotency_key, settings.codec_keys
        )
    request_id = uuid.uuid4().hex
    fingerprint = body.fingerprint()
    request = InvoiceRequest(
        invoice_id=invoice_id,
        customer_email=str(body.customer_email),
        amount=body.amount,
        currency=body.currency,
        due_at=body.resolve_due_at(datetime.now(UTC), settings.payrecon_default_due_in),
        description=body.description,
        metadata=body.metadata or {},
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
        caller=caller.name,
        success_url=body.success_url,
        cancel_url=body.cancel_url,
        send_invoice_email=body.send_invoice_email,
    )
    start = invoice_start(settings, request, request_id=request_id)
    bound = log.bind(invoice_id=invoice_id, workflow_id=workflow_id_for(invoice_id))
    deadline = asyncio.get_running_loop().time() + settings.payrecon_create_timeout_seconds
    try:
        async with temporal_call(deadline):
            opened = await temporal.execute_update_with_start_workflow(
                InvoiceWorkflow.open_invoice,
                OpenInvoice(fingerprint=fingerprint, request_id=request_id),
                start_workflow_operation=start,
            )
    except WorkflowAlreadyStartedError:
        # The invoice's workflow has completed: answer from its record.
        return await _existing_invoice(engine, invoice_id, fingerprint, response)
    if opened.unrecorded is not None:
        # Decided and in the workflow's history: recorded before the link is handed out,
        # so a payment for it always finds its row.
        change = opened.unrecorded
        await run_in_threadpool(apply_snapshot, engine, change.invoice, change.events)
    if not opened.created:
        response.status_code = status.HTTP_200_OK
    bound.info("invoice.opened", created=opened.created)
    return InvoiceOut.model_validate(opened.invoice)


async def _existing_invoice(
    engine: Engine, invoice_id: str, fingerprint: str, response: Response
) -> InvoiceOut:
    row = await run_in_threadpool(queries.get_invoice, engine, invoice_id)
    if row is None:
        raise HTTPException(status.HTTP_409_CONFLICT, detail="this Idempotency-Key is spent")
    if row.fingerprint != fingerprint:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail="this Idempotency-Key was already used with a different request body",
        )
    response.status_code = status.HTTP_200_OK
    return InvoiceOut.model_validate(row)


def _invalid(name: str, message: str, given: Any) -> dict[str, Any]:
    """One 422 problem, shaped as FastAPI's own."""
    return {"type": "value_error", "loc": ["query", name], "msg": message, "input": given}


def metadata_filters(request: Request) -> dict[str, str]:
    """The `metadata[<key>]=<value>` parameters: dynamic names, so read from the query
    string itself. Anything named like one but not one is a 422 naming it."""
    found: dict[str, str] = {}
    problems: list[dict[str, Any]] = []
    for name, value in request.query_params.multi_items():
        if name != "metadata" and not name.startswith("metadata["):
            continue
        match = METADATA_PARAM.match(name)
        if match is None:
            problems.append(
                _invalid(
                    name,
                    "must be metadata[<key>]=<value>, the key 1 to 64 characters of "
                    "A-Z a-z 0-9 _ . -",
                    value,
                )
            )
        elif match["key"] in found:
            problems.append(_invalid(name, "must be given once", value))
        elif len(value) > MAX_METADATA_VALUE_CHARS:
            problems.append(
                _invalid(name, f"must be at most {MAX_METADATA_VALUE_CHARS} characters", value)
            )
        elif "\x00" in value:
            problems.append(_invalid(name, "must not hold a NUL character", value))
        else:
            found[match["key"]] = value
    if len(found) > MAX_METADATA_FILTERS:
        problems.append(
            _invalid("metadata", f"at most {MAX_METADATA_FILTERS} metadata filters", sorted(found))
        )
    if problems:
        raise RequestValidationError(problems)
    return found


def _in_utc(name: str, moment: datetime | None) -> datetime | None:
    # Year 9999 west of Greenwich is past the last datetime once in UTC.
    try:
        return None if moment is None else moment.astimezone(UTC)
    except OverflowError:
        raise RequestValidationError(
            [_invalid(name, "must be within years 1 to 9999 in UTC", str(moment))]
        ) from None


@router.get(
    "",
    summary="List and find invoices, newest first",
    responses={422: {"model": ErrorBody, "description": "A filter is malformed"}},
)
def list_invoices(
    engine: EngineDep,
    caller: CallerDep,
    metadata: Annotated[dict[str, str], Depends(metadata_filters)],
    status_filter: Annotated[InvoiceStatus | None, Query(alias="status")] = None,
    customer_email: Annotated[
        EmailStr | None, Query(description="The customer's email, as given at creation")
    ] = None,
    idempotency_key: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=255,
            pattern=IDEMPOTENCY_KEY_PATTERN,
            description="The Idempotency-Key the invoice was created with (yours)",
        ),
    ] = None,
    created_after: Annotated[
        AwareDatetime | None, Query(description="Created at or after (with a time zone)")
    ] = None,
    created_before: Annotated[
        AwareDatetime | None, Query(description="Created before (with a time zone)")
    ] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> InvoicePage:
    """Every filter given must hold. `metadata[<key>]=<value>` (up to five; the key of
    A-Z a-z 0-9 _ . -) matches the metadata value under that key compared as text, so
    `metadata[learner_id]=77` finds both `77` and `"77"`."""
    after = _in_utc("created_after", created_after)
    before = _in_utc("created_before", created_before)
    if after and before and after > before:
        raise RequestValidationError(
            [_invalid("created_after", "must not be after created_before", str(created_after))]
        )
    rows, total = queries.list_invoices(
        engine,
        status=status_filter.value if status_filter else None,
        limit=limit,
        offset=offset,
        # Callers find their own invoices, by their own Idempotency-Keys; operators, any.
        caller=None if caller.operator else caller.name,
        where=queries.InvoiceFilter(
            # Stored as EmailStr made it: the domain in lower case, the rest as given.
            customer_email=str(customer_email) if customer_email else None,
            idempotency_key=idempotency_key,
            metadata=metadata,
            created_after=after,
            created_before=before,
        ),
    )
    return InvoicePage(
        items=with_books(engine, [InvoiceOut.model_validate(row) for row in rows]),
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get(
    "/{invoice_id}",
    summary="Read one invoice",
    responses={404: {"model": ErrorBody, "description": "No such invoice"}},
)
def get_invoice(invoice_id: InvoiceId, engine: EngineDep, caller: CallerDep) -> InvoiceOut:
    invoice = InvoiceOut.model_validate(visible_invoice(engine, invoice_id, caller))
    return with_books(engine, [invoice])[0]


def with_books(engine: Engine, invoices: list[InvoiceOut]) -> list[InvoiceOut]:
    """Adds each invoice's disputes (rows of their own), and what the reconciliation sweep
    saw of each payment on Paystack's books: the settlement that paid it out, its fees, and
    what is left after them."""
    seen = books.transactions_by_reference(
        engine, [i.paystack_reference for i in invoices if i.paystack_reference and i.paid_at]
    )
    disputes = queries.disputes_of(engine, [i.id for i in invoices])
    for invoice in invoices:
        invoice.disputes = [DisputeOut.model_validate(row) for row in disputes[invoice.id]]
        transaction = seen.get(invoice.paystack_reference or "")
        if transaction is None or transaction.id != invoice.paystack_transaction_id:
            continue
        invoice.settlement_id = transaction.settlement_id
        invoice.fees = transaction.fees
        if transaction.fees is not None and invoice.amount_paid is not None:
            invoice.net_amount = invoice.amount_paid - transaction.fees
    return invoices


def visible_invoice(engine: Engine, invoice_id: str, caller: Caller) -> Invoice:
    """The invoice, if this caller may see it; another caller's is as unknown as none."""
    row = invoice_seen_by(engine, invoice_id, caller)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no invoice {invoice_id}")
    return row


def invoice_seen_by(engine: Engine, invoice_id: str, caller: Caller) -> Invoice | None:
    """The invoice, or None if there is none or it is another caller's. So are its
    refunds and disputes seen, or not."""
    row = queries.get_invoice(engine, invoice_id)
    return row if row is not None and caller.owns(row.caller) else None


@router.get(
    "/{invoice_id}/events",
    summary="The invoice's timeline: everything that happened to it, oldest first",
    responses={404: {"model": ErrorBody, "description": "No such invoice"}},
)
def invoice_events(
    invoice_id: InvoiceId,
    engine: EngineDep,
    caller: CallerDep,
    limit: Limit = 50,
    offset: Offset = 0,
) -> TimelinePage:
    """Status changes, webhooks received (with their outcome), each verify with Paystack's
    answer (a declined attempt: `paystack_status` `failed` and the bank's
    `gateway_response`), cancels, deliveries to your endpoints, emails sent."""
    visible_invoice(engine, invoice_id, caller)
    entries, total = timeline.page(engine, invoice_id, limit=limit, offset=offset)
    return TimelinePage(
        items=[TimelineEntryOut.model_validate(entry) for entry in entries],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.post(
    "/{invoice_id}/verify",
    summary="Ask Paystack now, and answer the invoice as it stands after",
    responses={
        404: {"model": ErrorBody, "description": "No such invoice"},
        503: {"model": ErrorBody, "description": "Temporal unavailable"},
    },
)
async def verify_invoice(
    invoice_id: InvoiceId,
    settings: SettingsDep,
    engine: EngineDep,
    temporal: TemporalDep,
    caller: CallerDep,
) -> InvoiceOut:
    """Through the invoice's workflow, its one writer (a completed invoice's is woken for
    it). Within 2 s of Paystack's last answer for the invoice, that answer stands: no new
    call to Paystack."""
    row = await run_in_threadpool(visible_invoice, engine, invoice_id, caller)
    deadline = asyncio.get_running_loop().time() + settings.payrecon_create_timeout_seconds
    async with temporal_call(deadline):
        check: PaymentCheck = await reach_invoice(
            temporal, settings, snapshot_of(row), InvoiceWorkflow.verify_now
        )
    log.info(
        "invoice.verified_now",
        invoice_id=invoice_id,
        status=check.invoice.status.value,
        paystack_status=check.paystack_status,
    )
    return InvoiceOut.model_validate(check.invoice)


@router.post(
    "/{invoice_id}/cancel",
    summary="Cancel an unpaid invoice (after one last verify with Paystack)",
    responses={
        202: {"model": InvoiceOut, "description": "Cancel accepted; Paystack has not answered yet"},
        404: {"model": ErrorBody, "description": "No such invoice"},
        409: {"model": ErrorBody, "description": "The invoice is already final"},
        503: {"model": ErrorBody, "description": "Temporal unavailable"},
    },
)
async def cancel_invoice(
    invoice_id: InvoiceId,
    response: Response,
    settings: SettingsDep,
    engine: EngineDep,
    temporal: TemporalDep,
    caller: CallerDep,
) -> InvoiceOut:
    # Its row is written before its payment link is handed out: a caller can name no
    # invoice of theirs that has none.
    await run_in_threadpool(visible_invoice, engine, invoice_id, caller)
    # On the timeline before the workflow hears of it, so its last verify and the status
    # it ends in come after it; taken back when the cancel is refused or not accepted.
    noted = await run_in_threadpool(
        timeline.record,
        engine,
        invoice_id,
        TimelineKind.CANCEL_REQUESTED,
        datetime.now(UTC),
        caller=caller.name,
    )
    try:
        return await _cancel(invoice_id, response, settings, engine, temporal)
    except Exception:
        await run_in_threadpool(timeline.forget, engine, noted)
        raise


async def _cancel(
    invoice_id: str, response: Response, settings: Settings, engine: Engine, temporal: Client
) -> InvoiceOut:
    handle = temporal.get_workflow_handle(workflow_id_for(invoice_id))
    deadline = asyncio.get_running_loop().time() + settings.payrecon_create_timeout_seconds
    try:
        # Accepted means written to the workflow's history: from then on the cancel holds
        # whatever fails. Until then it may be lost (a server restart drops it), so a
        # timeout before acceptance is a 503 to retry, never a 202.
        async with temporal_call(deadline):
            update = await handle.start_update(
                InvoiceWorkflow.cancel, wait_for_stage=WorkflowUpdateStage.ACCEPTED
            )
    except RPCError as error:  # no open run: the invoice is final, or unknown
        row = await run_in_threadpool(queries.get_invoice, engine, invoice_id)
        if row is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, detail=f"no invoice {invoice_id}"
            ) from error
        raise HTTPException(
            status.HTTP_409_CONFLICT, detail=f"the invoice is already {row.status}"
        ) from error
    try:
        async with asyncio.timeout_at(deadline):
            snapshot = await update.result()
    except WorkflowUpdateFailedError as error:  # refused by its validator, or by its handler
        raise refused(error) from error
    except (TimeoutError, RPCTimeoutOrCancelledError, RPCError) as error:
        # Accepted, and the workflow finishes it: the last verify is still under way.
        row = await run_in_threadpool(queries.get_invoice, engine, invoice_id)
        if row is None:  # accepted while its first record was being written
            raise unavailable(error) from error
        response.status_code = status.HTTP_202_ACCEPTED
        return InvoiceOut.model_validate(row)
    log.info("invoice.cancel_answered", invoice_id=invoice_id, status=snapshot.status.value)
    return InvoiceOut.model_validate(snapshot)
