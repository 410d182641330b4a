"""Events sent to the merchants' endpoints: send a stored one again."""

from __future__ import annotations

import asyncio
from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, HTTPException, Path, status
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine
from sqlmodel import Session
from temporalio.client import RPCTimeoutOrCancelledError
from temporalio.service import RPCError

from api.deps import CallerDep, EngineDep, KeyCheckedFirst, SettingsDep, TemporalDep, current_caller
from api.outbound_schemas import EVENT_ID_PATTERN, Redelivery
from api.schemas import ErrorBody
from db.models import OutboundEvent
from workflows.starter import redeliver_event

log = structlog.get_logger(__name__)

router = APIRouter(
    prefix="/events",
    tags=["events"],
    dependencies=[Depends(current_caller)],
    route_class=KeyCheckedFirst,
    responses={
        401: {"model": ErrorBody, "description": "Missing or invalid API key"},
        422: {"model": ErrorBody, "description": "Invalid input"},
    },
)

EventId = Annotated[
    str, Path(pattern=EVENT_ID_PATTERN, description="The event id (`webhook-id` as sent)")
]


def _event_caller(engine: Engine, event_id: str) -> str | None:
    with Session(engine) as session:
        event = session.get(OutboundEvent, event_id)
        return None if event is None else event.caller


@router.post(
    "/{event_id}/redeliver",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Send an event again, with its id and body, to its caller's endpoints as they are",
    responses={
        404: {"model": ErrorBody, "description": "No such event"},
        503: {"model": ErrorBody, "description": "Temporal unavailable"},
    },
)
async def redeliver(
    event_id: EventId,
    caller: CallerDep,
    settings: SettingsDep,
    engine: EngineDep,
    temporal: TemporalDep,
) -> Redelivery:
    owner = await run_in_threadpool(_event_caller, engine, event_id)
    # Another caller's event is as unknown as none.
    if owner is None or not caller.owns(owner):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no event {event_id}")
    deadline = asyncio.get_running_loop().time() + settings.payrecon_create_timeout_seconds
    try:
        async with asyncio.timeout_at(deadline):
            workflow_id = await redeliver_event(temporal, settings, event_id)
    # RuntimeError: the lazy client's first connect failed.
    except (RPCError, RPCTimeoutOrCancelledError, TimeoutError, RuntimeError) as error:
        log.warning("temporal.unavailable", error=str(error))
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail="the workflow service is unavailable; retry (a repeated redelivery is "
            "harmless: receivers deduplicate on webhook-id)",
        ) from error
    log.info(
        "event.redelivery_started", event_id=event_id, caller=caller.name, workflow_id=workflow_id
    )
    return Redelivery(event_id=event_id, workflow_id=workflow_id)
