"""Events sent to the merchants' endpoints: send a stored one again."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, HTTPException, Path, status
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine

from api.deps import Caller, CallerDep, EngineDep, KeyCheckedFirst, SettingsDep, current_caller
from api.outbound_schemas import EVENT_ID_PATTERN, Redelivery
from api.schemas import AUTHENTICATED, ErrorBody
from db.engine import write_session
from db.models import OutboundEvent
from outbound import outbox

log = structlog.get_logger(__name__)

router = APIRouter(
    prefix="/events",
    tags=["events"],
    dependencies=[Depends(current_caller)],
    route_class=KeyCheckedFirst,
    responses={
        **AUTHENTICATED,
        422: {"model": ErrorBody, "description": "Invalid input"},
    },
)

EventId = Annotated[
    str, Path(pattern=EVENT_ID_PATTERN, description="The event id (`webhook-id` as sent)")
]


def redeliver_owned(
    engine: Engine, event_id: str, caller: Caller, operators: frozenset[str]
) -> list[int] | None:
    """New deliveries of the caller's event (an operator's: any event), or None: no such
    event, or another caller's (as unknown as none)."""
    with write_session(engine) as session:
        event = session.get(OutboundEvent, event_id)
        if event is None or not caller.owns(event.caller):
            return None
        return outbox.redeliver(session, event_id, datetime.now(UTC), operators=operators)


@router.post(
    "/{event_id}/redeliver",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Send an event again, with its id and body, to its caller's endpoints as they are",
    responses={404: {"model": ErrorBody, "description": "No such event"}},
)
async def redeliver(
    event_id: EventId, caller: CallerDep, engine: EngineDep, settings: SettingsDep
) -> Redelivery:
    delivery_ids = await run_in_threadpool(
        redeliver_owned, engine, event_id, caller, settings.operator_callers
    )
    if delivery_ids is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no event {event_id}")
    log.info(
        "event.redelivery_queued", event_id=event_id, caller=caller.name, deliveries=delivery_ids
    )
    return Redelivery(event_id=event_id, delivery_ids=delivery_ids)
