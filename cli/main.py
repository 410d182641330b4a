"""`payrecon`: the operator's command line.

    payrecon invoices list --status needs_review
    payrecon invoices show inv-…           (with its state history, webhook deliveries, timeline)
    payrecon invoices reverify inv-…       (ask Paystack again, now)
    payrecon webhooks redeliver 42         (hand a stored delivery to its invoice again)
    payrecon events redeliver evt_…        (send an event to its caller's endpoints again)
    payrecon temporal setup                (search attributes and schedules, idempotently)
    payrecon recon run --from … --to …     (reconcile a window of Paystack's books now)
    payrecon recon show [RUN]              (a run: counts, totals, what it found)
    payrecon recon discrepancies --status open
    payrecon recon resolve dsc_… --note "…"

It reads the same settings (environment variables) as the API and the worker.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, NoReturn

import typer
from sqlalchemy import Engine
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError

from config import Settings, get_settings
from db import queries, timeline
from db import reconciliation as books
from db.engine import make_engine, write_session
from db.models import Discrepancy, InvoiceTimelineEntry
from db.projection import load_snapshot
from domain.discrepancies import DiscrepancyKind, DiscrepancyStatus
from domain.invoice import InvoiceSnapshot, InvoiceStatus
from inbox import store
from inbox.outcomes import Intake, Relay
from inbox.relayer import redeliver
from lifecycle import exit_process
from outbound import outbox
from paystack.events import MalformedWebhook, parse_webhook
from temporal_config import connect
from workflows.invoice import InvoiceWorkflow
from workflows.schedules import ensure_schedules, start_reconciliation
from workflows.starter import reach_invoice
from workflows.types import SEARCH_ATTRIBUTES

app = typer.Typer(
    help="Operate payrecon: invoices, webhook deliveries, the Temporal namespace.",
    no_args_is_help=True,
)
invoices_app = typer.Typer(help="Find, inspect and re-drive invoices.", no_args_is_help=True)
webhooks_app = typer.Typer(help="Stored Paystack deliveries.", no_args_is_help=True)
temporal_app = typer.Typer(help="The Temporal namespace payrecon uses.", no_args_is_help=True)
events_app = typer.Typer(help="Events sent to merchants' endpoints.", no_args_is_help=True)
app.add_typer(invoices_app, name="invoices")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(temporal_app, name="temporal")
recon_app = typer.Typer(help="Reconciliation against Paystack's books.", no_args_is_help=True)
app.add_typer(events_app, name="events")
app.add_typer(recon_app, name="recon")


def _engine(settings: Settings) -> Engine:
    return make_engine(settings.database_url)


def _fail(message: str) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(1)


def _money(amount: int | None, currency: str) -> str:
    return "-" if amount is None else f"{currency} {amount / 100:,.2f}"


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _table(rows: list[list[str]], headers: list[str]) -> None:
    widths = [
        max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)
    ]
    for line in (headers, *rows):
        typer.echo(
            "  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True))
        )


@invoices_app.command("list")
def list_invoices(
    status: Annotated[InvoiceStatus | None, typer.Option(help="Only this status")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
) -> None:
    """Invoices, newest first."""
    engine = _engine(get_settings())
    rows, total = queries.list_invoices(
        engine, status=status.value if status else None, limit=limit, offset=0
    )
    _table(
        [
            [
                row.id,
                row.status,
                row.review_reason or "",
                _money(row.amount, row.currency),
                row.customer_email,
                _when(row.created_at),
                _when(row.due_at),
            ]
            for row in rows
        ],
        ["id", "status", "review", "amount", "customer", "created (UTC)", "due (UTC)"],
    )
    typer.echo(f"{len(rows)} of {total}")


@invoices_app.command("show")
def show_invoice(invoice_id: str) -> None:
    """One invoice: its record, state history, webhook deliveries, workflow and timeline."""
    settings = get_settings()
    engine = _engine(settings)
    row = queries.get_invoice(engine, invoice_id)
    if row is None:
        _fail(f"no invoice {invoice_id}")
    review = f" / {row.review_reason}" if row.review_reason else ""
    paid = _money(row.amount_paid, row.currency)
    for label, value in [
        ("invoice", f"{row.id}  ({row.status}{review})"),
        ("amount", f"{_money(row.amount, row.currency)}, paid {paid}"),
        ("customer", row.customer_email),
        ("reference", f"{row.paystack_reference}, transaction {row.paystack_transaction_id}"),
        ("payment link", row.authorization_url or "-"),
        ("created", _when(row.created_at)),
        ("due", _when(row.due_at)),
        ("paid", _when(row.paid_at)),
    ]:
        typer.echo(f"{label:<13}{value}")
    typer.echo("\nstate history")
    _table(
        [
            [str(c.revision), c.status, c.review_reason or "", _when(c.changed_at)]
            for c in queries.status_history(engine, invoice_id)
        ],
        ["rev", "status", "reason", "at (UTC)"],
    )
    typer.echo("\nwebhook deliveries")
    references = {invoice_id, row.paystack_reference or invoice_id}
    _table(
        [
            [str(d.id), d.event, d.outcome, _when(d.received_at)]
            for reference in sorted(references)
            for d in store.deliveries_for(engine, reference)
        ],
        ["id", "event", "outcome", "received (UTC)"],
    )
    typer.echo("\nworkflow")
    typer.echo(asyncio.run(_describe(row.workflow_id)))
    typer.echo("\ntimeline")
    _table(
        [
            [_when_exactly(e.at), e.kind, _summary(e.kind, e.detail)]
            for e in _timeline(engine, row.id)
        ],
        ["at (UTC)", "kind", "what"],
    )


def _timeline(engine: Engine, invoice_id: str) -> list[InvoiceTimelineEntry]:
    """Every entry, oldest first, a page at a time."""
    entries: list[InvoiceTimelineEntry] = []
    while True:
        page, total = timeline.page(engine, invoice_id, limit=500, offset=len(entries))
        entries.extend(page)
        if not page or len(entries) >= total:
            return entries


def _when_exactly(moment: datetime) -> str:
    # Milliseconds: a webhook, its verify and the status it leads to share a second.
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _summary(kind: str, detail: dict[str, Any]) -> str:
    """One line for an entry: the fields a reader looks for first, then the rest."""
    shown = dict(detail)
    words: list[str] = []
    if kind == timeline.TimelineKind.STATUS_CHANGED:
        reason = shown.pop("review_reason", None)
        words.append(f"{shown.pop('status', '?')}{f' / {reason}' if reason else ''}")
    elif kind == timeline.TimelineKind.WEBHOOK_RECEIVED:
        words += [str(shown.pop("event", "?")), str(shown.pop("outcome", "?"))]
    elif kind == timeline.TimelineKind.PAYSTACK_VERIFIED:
        found = shown.pop("found", True)
        status = shown.pop("paystack_status", None)
        gateway = shown.pop("gateway_response", None)
        words.append(
            f"{status or '-'}{f' ({gateway})' if gateway else ''}" if found else "not found"
        )
        amount, currency = shown.pop("amount", None), shown.pop("currency", None)
        if amount is not None and currency:
            words.append(_money(amount, currency))
    elif kind == timeline.TimelineKind.CANCEL_REQUESTED:
        words.append(f"by {shown.pop('caller', '?')}")
    words += [f"{key}={value}" for key, value in shown.items() if value is not None]
    return ", ".join(words)


async def _describe(workflow_id: str) -> str:
    client = await connect()
    try:
        description = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as error:
        return f"{workflow_id}: {error.message}"
    status = description.status.name if description.status else "?"
    return f"{workflow_id}  run {description.run_id}  {status}, {description.history_length} events"


@invoices_app.command("reverify")
def reverify(invoice_id: str) -> None:
    """Ask Paystack now, outside the poll schedule, through the invoice's workflow: its open
    run, or a new run resumed from its record if it has completed."""
    settings = get_settings()
    recorded = load_snapshot(_engine(settings), invoice_id)
    if recorded is None:
        _fail(f"no invoice {invoice_id}")

    async def send() -> InvoiceSnapshot:
        client = await connect()
        verified: InvoiceSnapshot = await reach_invoice(
            client, settings, recorded, InvoiceWorkflow.reverify
        )
        return verified

    try:
        invoice = asyncio.run(send())
    except (RPCError, WorkflowUpdateFailedError) as error:
        _fail(f"{invoice_id}: verify not done: {error}")
    reason = f" ({invoice.review_reason.value})" if invoice.review_reason else ""
    typer.echo(
        f"{invoice_id}: verified; {invoice.status.value}{reason}, revision {invoice.revision}"
    )


@webhooks_app.command("redeliver")
def redeliver_delivery(delivery_id: int) -> None:
    """Hand a stored, correctly signed delivery to its owner again."""
    settings = get_settings()
    engine = _engine(settings)
    stored = store.get_delivery(engine, delivery_id)
    if stored is None:
        _fail(f"no delivery {delivery_id}")
    try:
        event = parse_webhook(stored.redacted_body.encode())
    except MalformedWebhook as error:
        _fail(f"delivery {delivery_id} does not parse: {error}")

    async def send() -> Intake | Relay:
        client = await connect(lazy=True)
        return await redeliver(client, settings, engine, event)

    # Queued again and leased to this command; if Temporal does not take it, the API's
    # relayers do.
    detail = f"redelivered by an operator (was {stored.outcome})"
    lease = datetime.now(UTC) + timedelta(seconds=settings.payrecon_relay_lease_seconds)
    store.requeue_delivery(engine, delivery_id, relay_after=lease, detail=detail)
    outcome = asyncio.run(send())
    if outcome is Relay.TEMPORAL_UNAVAILABLE:
        store.retry_delivery_later(engine, delivery_id, datetime.now(UTC), detail)
        _fail(
            f"delivery {delivery_id} queued again: Temporal is unavailable, "
            "the API will relay it when Temporal answers"
        )
    store.finish_deliveries(engine, [(delivery_id, outcome.value)], detail)
    typer.echo(f"delivery {delivery_id} redelivered: {outcome.value}")


@events_app.command("redeliver")
def redeliver_stored_event(event_id: str) -> None:
    """Send a stored event again, with its id and body, to its caller's endpoints as they
    are now (enabled ones, taking its type): the workers' delivery loops send it."""
    settings = get_settings()
    with write_session(_engine(settings)) as session:
        delivery_ids = outbox.redeliver(
            session, event_id, datetime.now(UTC), operators=settings.operator_callers
        )
    if delivery_ids is None:
        _fail(f"no event {event_id}")
    shown = ", ".join(map(str, delivery_ids)) or "none: no endpoint takes it now"
    typer.echo(f"event {event_id}: redelivery queued, deliveries {shown}")


@temporal_app.command("setup")
def setup() -> None:
    """Register payrecon's search attributes on the namespace (existing ones are kept), and
    make or update its schedules (the reconciliation sweeps, the webhook retention)."""
    added = asyncio.run(_add_search_attributes())
    typer.echo(f"added {', '.join(added)}" if added else "all search attributes already registered")
    asyncio.run(_ensure_schedules())
    typer.echo(
        "schedules: payrecon-reconciliation, payrecon-reconciliation-daily, "
        "payrecon-webhook-retention"
    )


async def _ensure_schedules() -> None:
    await ensure_schedules(await connect(), get_settings())


async def _add_search_attributes() -> list[str]:
    client = await connect()
    existing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    known: dict[str, Any] = {**existing.custom_attributes, **existing.system_attributes}
    missing = {
        key.name: IndexedValueType.ValueType(key.indexed_value_type.value)
        for key in SEARCH_ATTRIBUTES
        if key.name not in known
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
        )
    return sorted(missing)


@recon_app.command("run")
def recon_run(
    since: Annotated[
        datetime | None, typer.Option("--from", help="Start of the window (UTC if no zone)")
    ] = None,
    until: Annotated[
        datetime | None, typer.Option("--to", help="End of the window, excluded")
    ] = None,
    wait: Annotated[bool, typer.Option(help="Wait for the run, then show it")] = True,
) -> None:
    """Reconcile [from, to) now; by default the scheduled window: the trailing day, ending
    the grace period before now."""
    settings = get_settings()
    end = (
        _utc(until)
        if until
        else datetime.now(UTC) - timedelta(seconds=settings.payrecon_recon_grace_seconds)
    )
    start = (
        _utc(since) if since else end - timedelta(seconds=settings.payrecon_recon_window_seconds)
    )
    if start >= end:
        _fail("--from must be before --to")
    engine = _engine(settings)

    async def run() -> str:
        temporal = await connect()
        started = await start_reconciliation(
            temporal, settings, engine, since=start, until=end, requested_by="cli"
        )
        typer.echo(f"run {started.id}: {_when(start)} to {_when(end)} (UTC)")
        if wait:
            await temporal.get_workflow_handle(started.id).result()
        return started.id

    try:
        run_id = asyncio.run(run())
    except RPCError as error:
        _fail(f"not started: {error}")
    if wait:
        _show_run(engine, run_id)


@recon_app.command("show")
def recon_show(
    run_id: Annotated[str | None, typer.Argument(help="Default: the newest")] = None,
) -> None:
    """A run: its window, counts by kind, totals per currency, and what it found."""
    engine = _engine(get_settings())
    if run_id is None:
        newest, _ = books.list_runs(engine, limit=1, offset=0)
        if not newest:
            _fail("no reconciliation runs yet")
        run_id = newest[0].id
    _show_run(engine, run_id)


def _show_run(engine: Engine, run_id: str) -> None:
    run = books.get_run(engine, run_id)
    if run is None:
        _fail(f"no reconciliation run {run_id}")
    _table(
        [
            ["run", run.id],
            ["trigger", run.trigger],
            ["window (UTC)", f"{_when(run.window_from)} to {_when(run.window_to)}"],
            ["status", run.status + (f": {run.error}" if run.error else "")],
            ["started / finished", f"{_when(run.started_at)} / {_when(run.finished_at)}"],
            ["records seen / matched", f"{run.records_seen} / {run.records_matched}"],
            ["Paystack pages", str(run.pages)],
        ],
        ["", ""],
    )
    typer.echo("")
    counts = [[kind, str(count)] for kind, count in sorted(run.counts.items())]
    _table(counts or [["(none)", "0"]], ["discrepancies seen", "count"])
    typer.echo("")
    _table(
        [
            [currency] + [_money(totals.get(name), currency) for name in TOTALS]
            for currency, totals in sorted(run.totals.items())
        ]
        or [["-"] * (len(TOTALS) + 1)],
        ["currency", *TOTALS],
    )
    found = books.run_discrepancies(engine, run.id)
    if found:
        typer.echo("")
        _discrepancy_table(found)


TOTALS = ("paystack_volume", "payrecon_volume", "fees", "net_settled")


@recon_app.command("discrepancies")
def recon_discrepancies(
    kind: Annotated[DiscrepancyKind | None, typer.Option(help="Only this kind")] = None,
    status: Annotated[DiscrepancyStatus | None, typer.Option(help="open or resolved")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
) -> None:
    """Discrepancies, newest first."""
    rows, total = books.list_discrepancies(
        _engine(get_settings()),
        kind=kind.value if kind else None,
        status=status.value if status else None,
        invoice_id=None,
        limit=limit,
        offset=0,
    )
    _discrepancy_table(rows)
    typer.echo(f"{len(rows)} of {total}")


def _discrepancy_table(rows: list[Discrepancy]) -> None:
    _table(
        [
            [
                row.id,
                row.kind,
                row.status,
                row.invoice_id or "-",
                row.paystack_reference or "-",
                _money(row.details.get("amount"), str(row.details.get("currency") or "")),
                _when(row.last_seen_at),
            ]
            for row in rows
        ],
        ["id", "kind", "status", "invoice", "reference", "amount", "last seen (UTC)"],
    )


@recon_app.command("resolve")
def recon_resolve(
    discrepancy_id: str,
    note: Annotated[str, typer.Option(help="Why it is resolved: kept in its audit trail")],
) -> None:
    """Resolve a discrepancy by hand; a later run seeing it again does not open it again."""
    if not note.strip():
        _fail("--note must say why")
    try:
        books.resolve(
            _engine(get_settings()),
            discrepancy_id,
            actor=f"{books.OPERATOR_PREFIX}cli",
            note=note,
            at=datetime.now(UTC),
        )
    except LookupError:
        _fail(f"no discrepancy {discrepancy_id}")
    except books.AlreadyResolved:
        _fail(f"discrepancy {discrepancy_id} is already resolved")
    typer.echo(f"discrepancy {discrepancy_id}: resolved")


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def main() -> None:
    try:
        app()
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        if isinstance(exit_.code, str):
            typer.echo(exit_.code, err=True)
    exit_process(code)


if __name__ == "__main__":
    main()
