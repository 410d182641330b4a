"""The merchants' webhook endpoints: where payrecon sends the events of their invoices.

An endpoint belongs to the caller whose key made it: it receives that caller's invoices'
events (an operator's also receives operator events), and only that caller sees it (an
operator sees every one). Its signing secret is shown once, when it is made or rotated, and
kept encrypted under the payload codec's keys (outbound/secrets.py).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit

import structlog
from fastapi import APIRouter, Depends, HTTPException, Path, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from sqlalchemy import Engine, Float, Integer, Text, cast, func, literal, null, union_all
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from api.deps import (
    Caller,
    CallerDep,
    EngineDep,
    KeyCheckedFirst,
    Limit,
    Offset,
    SettingsDep,
    current_caller,
)
from api.outbound_schemas import (
    ENDPOINT_ID_PATTERN,
    CreateWebhookEndpoint,
    EventAttemptOut,
    EventAttemptPage,
    UpdateWebhookEndpoint,
    WebhookEndpointOut,
    WebhookEndpointPage,
    WebhookEndpointWithSecret,
)
from api.schemas import AUTHENTICATED, WITH_BODY, ErrorBody
from config import Settings
from db.engine import write_session
from db.models import EventAttempt, EventDelivery, UTCDateTime, WebhookEndpoint
from outbound.outbox import PENDING
from outbound.secrets import new_secret, seal
from outbound.urls import check_endpoint_url

log = structlog.get_logger(__name__)

# A receiver rolls its secret over within this: until then the old one signs as well.
PREVIOUS_SECRET_VALID_FOR = timedelta(hours=24)

router = APIRouter(
    prefix="/webhook-endpoints",
    tags=["webhook endpoints"],
    dependencies=[Depends(current_caller)],
    route_class=KeyCheckedFirst,
    responses={
        **AUTHENTICATED,
        422: {"model": ErrorBody, "description": "Invalid input"},
    },
)

EndpointId = Annotated[
    str, Path(pattern=ENDPOINT_ID_PATTERN, description="The endpoint id: `we_` and 24 hex")
]
Responses = dict[int | str, dict[str, Any]]
NOT_FOUND: Responses = {404: {"model": ErrorBody, "description": "No such endpoint"}}


async def _checked_url(url: str, settings: Settings) -> str:
    """The URL normalised, or a 422 on `url` saying what is wrong with it. Its host is
    resolved on the event loop, with a timeout, before any write lock is taken."""
    try:
        return await check_endpoint_url(url, development_mode=settings.payrecon_development_mode)
    except ValueError as refused:
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("body", "url"), "msg": str(refused), "input": url}]
        ) from None


def _visible(session: Session, endpoint_id: str, caller: Caller) -> WebhookEndpoint:
    """The endpoint, if this caller may see it; another caller's is as unknown as none."""
    row = session.get(WebhookEndpoint, endpoint_id)
    if row is None or not caller.owns(row.caller):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no webhook endpoint {endpoint_id}")
    return row


def _with_secret(row: WebhookEndpoint, secret: str) -> WebhookEndpointWithSecret:
    shown = WebhookEndpointOut.model_validate(row).model_dump()
    return WebhookEndpointWithSecret.model_validate({**shown, "secret": secret})


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Add an endpoint; its signing secret is in the answer, this once",
    responses=WITH_BODY,
)
async def create_endpoint(
    body: CreateWebhookEndpoint, caller: CallerDep, settings: SettingsDep, engine: EngineDep
) -> WebhookEndpointWithSecret:
    url = await _checked_url(body.url, settings)
    secret = new_secret()
    now = datetime.now(UTC)
    row = WebhookEndpoint(
        id=f"we_{secrets.token_hex(12)}",
        caller=caller.name,
        url=url,
        events=[event.value for event in body.events],
        description=body.description,
        enabled=True,
        secret=seal(settings.codec_keys, secret),
        created_at=now,
        updated_at=now,
    )
    created = _with_secret(row, secret)
    await run_in_threadpool(_insert, engine, row, settings.payrecon_max_endpoints_per_caller)
    # The host only: a URL's path or query may hold the receiver's own token.
    log.info(
        "webhook_endpoint.created",
        endpoint_id=created.id,
        caller=caller.name,
        host=urlsplit(url).hostname,
        events=created.events,
    )
    return created


def _insert(engine: Engine, row: WebhookEndpoint, most: int) -> None:
    """Counted and added in one write transaction: two creates at once cannot both pass."""
    with write_session(engine) as session:
        count = select(func.count()).select_from(WebhookEndpoint)
        if session.exec(count.where(WebhookEndpoint.caller == row.caller)).one() >= most:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                detail=f"this caller has {most} webhook endpoints, the most "
                "PAYRECON_MAX_ENDPOINTS_PER_CALLER allows: delete one first",
            )
        session.add(row)


@router.get("", summary="List endpoints, newest first")
def list_endpoints(
    engine: EngineDep,
    caller: CallerDep,
    limit: Limit = 50,
    offset: Offset = 0,
) -> WebhookEndpointPage:
    with Session(engine) as session:
        query = select(WebhookEndpoint)
        count = select(func.count()).select_from(WebhookEndpoint)
        if not caller.operator:
            query = query.where(WebhookEndpoint.caller == caller.name)
            count = count.where(WebhookEndpoint.caller == caller.name)
        query = query.order_by(col(WebhookEndpoint.created_at).desc(), col(WebhookEndpoint.id))
        rows = session.exec(query.offset(offset).limit(limit)).all()
        return WebhookEndpointPage(
            items=[WebhookEndpointOut.model_validate(row) for row in rows],
            total=session.exec(count).one(),
            limit=limit,
            offset=offset,
        )


@router.get("/{endpoint_id}", summary="Read one endpoint", responses=NOT_FOUND)
def get_endpoint(
    endpoint_id: EndpointId, engine: EngineDep, caller: CallerDep
) -> WebhookEndpointOut:
    with Session(engine) as session:
        return WebhookEndpointOut.model_validate(_visible(session, endpoint_id, caller))


@router.patch(
    "/{endpoint_id}",
    summary="Change an endpoint's url, events, description, or turn it off and on",
    responses={**NOT_FOUND, **WITH_BODY},
)
async def update_endpoint(
    endpoint_id: EndpointId,
    body: UpdateWebhookEndpoint,
    caller: CallerDep,
    settings: SettingsDep,
    engine: EngineDep,
) -> WebhookEndpointOut:
    url = await _checked_url(body.url, settings) if body.url is not None else None
    updated = await run_in_threadpool(_update, engine, endpoint_id, body, caller, url)
    given = body.model_fields_set
    if given:
        log.info(
            "webhook_endpoint.updated",
            endpoint_id=endpoint_id,
            caller=caller.name,
            fields=sorted(given),
            enabled=updated.enabled,
        )
    return updated


def _update(
    engine: Engine,
    endpoint_id: str,
    body: UpdateWebhookEndpoint,
    caller: Caller,
    url: str | None,
) -> WebhookEndpointOut:
    given = body.model_fields_set
    with write_session(engine) as session:
        row = _visible(session, endpoint_id, caller)
        if url is not None:
            row.url = url
        if body.events is not None:
            row.events = [event.value for event in body.events]
        if "description" in given:
            row.description = body.description
        if body.enabled is not None:
            row.enabled = body.enabled
            if body.enabled:
                # Turned on again by its owner: its failing streak starts afresh.
                row.disabled_reason = None
                row.failing_since = None
        if given:
            row.updated_at = datetime.now(UTC)
            session.add(row)
        return WebhookEndpointOut.model_validate(row)


@router.delete(
    "/{endpoint_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete an endpoint: nothing more is sent to it",
    responses=NOT_FOUND,
)
def delete_endpoint(endpoint_id: EndpointId, engine: EngineDep, caller: CallerDep) -> Response:
    with write_session(engine) as session:
        session.delete(_visible(session, endpoint_id, caller))
    log.info("webhook_endpoint.deleted", endpoint_id=endpoint_id, caller=caller.name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{endpoint_id}/rotate-secret",
    summary="Give an endpoint a new signing secret; the old one signs too for 24 hours",
    responses=NOT_FOUND,
)
def rotate_secret(
    endpoint_id: EndpointId, caller: CallerDep, settings: SettingsDep, engine: EngineDep
) -> WebhookEndpointWithSecret:
    secret = new_secret()
    now = datetime.now(UTC)
    with write_session(engine) as session:
        row = _visible(session, endpoint_id, caller)
        # The secret being replaced, as sealed: a secret older than it stops signing now.
        row.previous_secret = row.secret
        row.previous_secret_expires_at = now + PREVIOUS_SECRET_VALID_FOR
        row.secret = seal(settings.codec_keys, secret)
        row.updated_at = now
        session.add(row)
        rotated = _with_secret(row, secret)
    log.info("webhook_endpoint.secret_rotated", endpoint_id=endpoint_id, caller=caller.name)
    return rotated


@router.get(
    "/{endpoint_id}/deliveries",
    summary="The endpoint's deliveries, newest first: each attempt, and each one still due "
    "its first",
    responses=NOT_FOUND,
)
def list_deliveries(
    endpoint_id: EndpointId,
    engine: EngineDep,
    caller: CallerDep,
    limit: Limit = 50,
    offset: Offset = 0,
) -> EventAttemptPage:
    with Session(engine) as session:
        _visible(session, endpoint_id, caller)
        made: Any = sa_select(
            col(EventAttempt.event_id),
            col(EventAttempt.attempt),
            col(EventAttempt.attempted_at),
            col(EventAttempt.outcome),
            col(EventAttempt.status_code),
            col(EventAttempt.latency_ms),
            col(EventAttempt.error),
            col(EventAttempt.next_attempt_at),
            col(EventAttempt.attempted_at).label("at"),
        ).where(col(EventAttempt.endpoint_id) == endpoint_id)
        # Visible from the moment it is due: a delivery not yet tried once.
        due: Any = sa_select(
            col(EventDelivery.event_id),
            (col(EventDelivery.attempts) + 1).label("attempt"),
            cast(null(), UTCDateTime()).label("attempted_at"),
            literal(PENDING).label("outcome"),
            cast(null(), Integer()).label("status_code"),
            cast(null(), Float()).label("latency_ms"),
            cast(null(), Text()).label("error"),
            col(EventDelivery.due_at).label("next_attempt_at"),
            col(EventDelivery.due_at).label("at"),
        ).where(
            col(EventDelivery.endpoint_id) == endpoint_id,
            col(EventDelivery.status) == PENDING,
            col(EventDelivery.attempts) == 0,
        )
        listed = union_all(made, due).subquery()
        query = (
            sa_select(listed)
            .order_by(listed.c.at.desc(), listed.c.attempt.desc())
            .offset(offset)
            .limit(limit)
        )
        rows = session.execute(query).mappings().all()
        total = session.execute(sa_select(func.count()).select_from(listed)).scalar_one()
    return EventAttemptPage(
        items=[EventAttemptOut.model_validate(dict(row)) for row in rows],
        total=total,
        limit=limit,
        offset=offset,
    )
