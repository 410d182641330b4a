"""The activity that starts the telling of a transition: the event's own workflow
(workflows/events.py), started from outside the invoice's workflow so that the two share
no fate: the invoice goes on, and ends, whatever the merchant's endpoints do."""

from __future__ import annotations

import asyncio

import structlog
from sqlalchemy import Engine
from sqlmodel import Session
from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from db.models import OutboundEvent
from workflows.events import EventInput, EventWorkflow, event_workflow_id

log = structlog.get_logger(__name__)


class Announcer:
    def __init__(self, client: Client, engine: Engine) -> None:
        self._client = client
        self._engine = engine

    @activity.defn(name="announce_event")
    async def announce_event(self, event: EventInput) -> bool:
        """Starts the event's workflow; False if it was told before: its workflow stored it,
        or is running or kept by Temporal (one per event id, ever: an announce retried,
        replayed, or repeated by a run resumed from the record tells nothing twice)."""
        if await asyncio.to_thread(self._stored, event.event_id):
            return False
        try:
            await self._client.start_workflow(
                EventWorkflow.run,
                event,
                id=event_workflow_id(event.event_id),
                task_queue=event.policy.task_queue or activity.info().task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                static_summary=event.event_id,
            )
        except WorkflowAlreadyStartedError:
            return False
        log.info("event.announced", event_id=event.event_id)
        return True

    def _stored(self, event_id: str) -> bool:
        with Session(self._engine) as session:
            return session.get(OutboundEvent, event_id) is not None
