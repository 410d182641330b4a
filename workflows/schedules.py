"""The Temporal schedules payrecon keeps, made or brought up to date by every worker at
start and by `payrecon temporal setup` (so a changed setting takes effect at the next
deploy); and the reconciliation runs an operator starts on demand, from the API or CLI."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import Engine
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from config import Settings
from db import reconciliation as books
from db.models import ReconciliationRun
from workflows.reconciliation import (
    DAILY_RECONCILIATION_SCHEDULE_ID,
    RECONCILIATION_SCHEDULE_ID,
    ReconciliationInput,
    ReconciliationWorkflow,
    Trigger,
)
from workflows.retention import RETENTION_SCHEDULE_ID, RetentionInput, WebhookRetentionWorkflow

log = structlog.get_logger(__name__)


def retention_schedule(settings: Settings) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            WebhookRetentionWorkflow.run,
            RetentionInput(retention_days=settings.payrecon_webhook_retention_days),
            id=RETENTION_SCHEDULE_ID,
            task_queue=settings.temporal_task_queue,
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(days=1))]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


def reconciliation_input(settings: Settings, trigger: Trigger) -> ReconciliationInput:
    return ReconciliationInput(
        trigger=trigger,
        page_size=settings.payrecon_recon_page_size,
        unsettled_after_seconds=settings.payrecon_unsettled_after_days * 86400,
        paystack_task_queue=settings.temporal_paystack_task_queue,
        trailing_seconds=settings.payrecon_recon_window_seconds,
        grace_seconds=settings.payrecon_recon_grace_seconds,
    )


async def start_reconciliation(
    temporal: Client,
    settings: Settings,
    engine: Engine,
    *,
    since: datetime,
    until: datetime,
    requested_by: str | None,
) -> ReconciliationRun:
    """A run over [since, until) now: its row first (so it can be read at once), then its
    workflow; if that never starts, no row is left saying `running`."""
    run = ReconciliationRun(
        id="recon_" + secrets.token_hex(12),
        trigger=Trigger.ON_DEMAND.value,
        window_from=since.astimezone(UTC),
        window_to=until.astimezone(UTC),
        status="running",
        started_at=datetime.now(UTC),
        requested_by=requested_by,
    )
    await asyncio.to_thread(books.start_run, engine, run)
    run_input = reconciliation_input(settings, Trigger.ON_DEMAND)
    run_input.window_from, run_input.window_to = run.window_from, run.window_to
    run_input.requested_by = requested_by
    try:
        await temporal.start_workflow(
            ReconciliationWorkflow.run,
            run_input,
            id=run.id,
            task_queue=settings.temporal_task_queue,
            static_summary=f"reconcile {run.window_from:%Y-%m-%d %H:%M} to {run.window_to:%H:%M}",
        )
    except BaseException:
        await asyncio.to_thread(books.delete_run, engine, run.id)
        raise
    return run


def reconciliation_schedule(settings: Settings) -> Schedule:
    """Every PAYRECON_RECON_INTERVAL_SECONDS over the trailing window."""
    return Schedule(
        action=ScheduleActionStartWorkflow(
            ReconciliationWorkflow.run,
            reconciliation_input(settings, Trigger.SCHEDULED),
            id=RECONCILIATION_SCHEDULE_ID,
            task_queue=settings.temporal_task_queue,
        ),
        spec=ScheduleSpec(
            intervals=[
                ScheduleIntervalSpec(
                    every=timedelta(seconds=settings.payrecon_recon_interval_seconds)
                )
            ]
        ),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


def daily_reconciliation_schedule(settings: Settings) -> Schedule:
    """At 00:30 UTC, over the whole previous day (its webhooks long in by then)."""
    return Schedule(
        action=ScheduleActionStartWorkflow(
            ReconciliationWorkflow.run,
            reconciliation_input(settings, Trigger.DAILY),
            id=DAILY_RECONCILIATION_SCHEDULE_ID,
            task_queue=settings.temporal_task_queue,
        ),
        spec=ScheduleSpec(cron_expressions=["30 0 * * *"]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.BUFFER_ONE),
    )


async def ensure_schedules(client: Client, settings: Settings) -> None:
    for schedule_id, schedule in (
        (RETENTION_SCHEDULE_ID, retention_schedule(settings)),
        (RECONCILIATION_SCHEDULE_ID, reconciliation_schedule(settings)),
        (DAILY_RECONCILIATION_SCHEDULE_ID, daily_reconciliation_schedule(settings)),
    ):
        await _ensure(client, schedule_id, schedule)


async def _ensure(client: Client, schedule_id: str, schedule: Schedule) -> None:
    try:
        await client.create_schedule(schedule_id, schedule)
        log.info("schedule.created", schedule_id=schedule_id)
    except ScheduleAlreadyRunningError:
        # A pause an operator set stays: only the action, spec and policy follow settings.
        def replaced(current: ScheduleUpdateInput) -> ScheduleUpdate:
            schedule.state = current.description.schedule.state
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(schedule_id).update(replaced)
