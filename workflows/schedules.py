"""The Temporal schedules payrecon keeps, made or brought up to date by every worker at
start (so a changed setting takes effect at the next deploy)."""

from __future__ import annotations

from datetime import timedelta

import structlog
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


async def ensure_schedules(client: Client, settings: Settings) -> None:
    schedule = retention_schedule(settings)
    try:
        await client.create_schedule(RETENTION_SCHEDULE_ID, schedule)
        log.info("schedule.created", schedule_id=RETENTION_SCHEDULE_ID)
    except ScheduleAlreadyRunningError:

        def replaced(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(RETENTION_SCHEDULE_ID).update(replaced)
