"""Stored deliveries are deleted after the retention period by a Temporal schedule: the
schedule as the worker makes it, and one run of it against the stack's database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlmodel import col
from temporalio.client import (
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionStartWorkflow,
    ScheduleIntervalSpec,
)

from db.engine import write_transaction
from db.models import WebhookDelivery
from inbox import store
from inbox.outcomes import Intake
from paystack.events import parse_webhook
from tests.helpers import eventually, keep_history
from tests.stack import Stack
from workflows.retention import RETENTION_SCHEDULE_ID
from workflows.schedules import ensure_schedules


def _stored(stack: Stack, reference: str, outcome: Intake, age: timedelta) -> int:
    body = f'{{"event": "charge.success", "data": {{"reference": "{reference}"}}}}'.encode()
    delivery_id = store.record_delivery(stack.engine, parse_webhook(body), body, outcome)
    with write_transaction(stack.engine) as connection:
        connection.execute(
            update(WebhookDelivery)
            .where(col(WebhookDelivery.id) == delivery_id)
            .values(received_at=datetime.now(UTC) - age)
        )
    return delivery_id


async def test_the_retention_schedule_deletes_relayed_deliveries_past_the_period(
    stack: Stack,
) -> None:
    suffix = datetime.now(UTC).strftime("%H%M%S%f")
    old = _stored(stack, f"ret-old-{suffix}", Intake.IGNORED, timedelta(days=91))
    old_queued = _stored(stack, f"ret-queued-{suffix}", Intake.QUEUED, timedelta(days=91))
    recent = _stored(stack, f"ret-recent-{suffix}", Intake.IGNORED, timedelta(days=89))

    await ensure_schedules(stack.temporal, stack.settings)
    await ensure_schedules(stack.temporal, stack.settings)  # again: brought up to date
    handle = stack.temporal.get_schedule_handle(RETENTION_SCHEDULE_ID)
    described = await handle.describe()
    assert described.schedule.spec.intervals == [ScheduleIntervalSpec(every=timedelta(days=1))]
    action = described.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert action.task_queue == stack.settings.temporal_task_queue

    await handle.trigger()

    def deleted() -> None:
        assert store.get_delivery(stack.engine, old) is None

    await eventually(deleted, within=20)
    assert store.get_delivery(stack.engine, old_queued) is not None
    assert store.get_delivery(stack.engine, recent) is not None

    [run] = (await handle.describe()).info.recent_actions[-1:]
    assert isinstance(run.action, ScheduleActionExecutionStartWorkflow)
    workflow = stack.temporal.get_workflow_handle(run.action.workflow_id)
    assert await workflow.result() >= 1
    await keep_history(await workflow.fetch_history(), "webhook_retention")
