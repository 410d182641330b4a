"""Activities that deliver events to the merchants' endpoints (workflows/events.py decides
when): store an event once with the endpoints it goes to, and make one signed attempt to
one endpoint, recording what came of it.

An attempt's answer decides: 2xx delivered; 410 Gone disables the endpoint; anything else
(or no answer) is retried by the workflow. An endpoint whose every delivery has failed for
the policy's `disable_after` is disabled too, and says why.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import httpx
import structlog
from pydantic import BaseModel
from sqlalchemy import Engine
from sqlmodel import Session, select
from temporalio import activity

from api.after_payment_schemas import RefundOut
from api.schemas import DisputeOut, InvoiceOut
from config import CodecKey
from db import timeline
from db.engine import write_session
from db.models import EventAttempt, OutboundEvent, WebhookEndpoint
from db.timeline import TimelineKind
from domain.events import EventType, InvoiceEvent
from outbound.secrets import unseal
from outbound.signing import signed_headers
from outbound.urls import UnsafeDestination, ensure_public_destination

log = structlog.get_logger(__name__)

GONE = 410
# What of a merchant's answer is kept: enough to debug, never a page of HTML.
ERROR_CHARS = 300


class DeliveryOutcome(StrEnum):
    DELIVERED = "delivered"
    # Failed; the workflow tries again at `next_attempt_at`.
    FAILED = "failed"
    # Failed, and it was the last attempt.
    GAVE_UP = "gave_up"
    # Not sent, or never again: the endpoint answered 410, failed too long, or is gone.
    ENDPOINT_DISABLED = "endpoint_disabled"


@dataclass
class DeliveryAttempt:
    event_id: str
    endpoint_id: str
    attempt: int
    # When the next attempt is due if this one fails; None: this is the last.
    next_attempt_at: datetime | None
    timeout: float
    # An endpoint failing for this long is disabled.
    disable_after: float


@dataclass
class _Answer:
    status_code: int | None
    error: str | None
    latency_ms: float


def event_payload(event: InvoiceEvent) -> str:
    """The body every attempt sends: `{type, timestamp, data}`, the invoice as the API shows
    it (for a refund's or a dispute's event, that refund or dispute), with its revision so a
    receiver can drop an older event."""
    invoice = event.invoice
    shown: BaseModel = InvoiceOut.model_validate(invoice)
    if event.refund is not None:
        shown = RefundOut.model_validate(event.refund)
    elif event.dispute is not None:
        shown = DisputeOut.model_validate(event.dispute)
    body = {
        "type": event.type.value,
        "timestamp": invoice.updated_at.isoformat(),
        "data": shown.model_dump(mode="json"),
    }
    return json.dumps(body, separators=(",", ":"))


def receives(endpoint: WebhookEndpoint, event_type: EventType) -> bool:
    if event_type.for_operators_only and not endpoint.operator:
        return False
    return not endpoint.events or event_type.value in endpoint.events


class EventActivities:
    def __init__(
        self,
        engine: Engine,
        http: httpx.AsyncClient,
        codec_keys: Sequence[CodecKey],
        *,
        development_mode: bool,
    ) -> None:
        self._engine = engine
        self._http = http
        self._codec_keys = list(codec_keys)
        self._development_mode = development_mode

    @activity.defn(name="store_event")
    def store_event(self, event: InvoiceEvent) -> list[str]:
        """Stores the event (once: its id is the transition's) and answers the endpoints
        it goes to: its caller's enabled endpoints that take its type."""
        with write_session(self._engine) as session:
            if session.get(OutboundEvent, event.event_id) is None:
                session.add(
                    OutboundEvent(
                        id=event.event_id,
                        type=event.type.value,
                        caller=event.caller,
                        invoice_id=event.invoice.invoice_id,
                        created_at=event.invoice.updated_at,
                        payload=event_payload(event),
                    )
                )
        targets = self._targets(event.caller, event.type)
        log.info(
            "event.stored",
            event_id=event.event_id,
            event_type=event.type.value,
            invoice_id=event.invoice.invoice_id,
            endpoints=len(targets),
        )
        return targets

    @activity.defn(name="redelivery_targets")
    def redelivery_targets(self, event_id: str) -> list[str]:
        """A stored event's endpoints as they are now, for a redelivery."""
        with Session(self._engine) as session:
            event = session.get(OutboundEvent, event_id)
        if event is None:
            return []
        return self._targets(event.caller, EventType(event.type))

    def _targets(self, caller: str, event_type: EventType) -> list[str]:
        # An operator event goes to every operator's endpoints; any other, to its caller's.
        belongs = (
            WebhookEndpoint.operator == True  # noqa: E712
            if event_type.for_operators_only
            else WebhookEndpoint.caller == caller
        )
        with Session(self._engine) as session:
            query = select(WebhookEndpoint).where(
                belongs,
                WebhookEndpoint.enabled == True,  # noqa: E712
            )
            endpoints = session.exec(query).all()
        return sorted(endpoint.id for endpoint in endpoints if receives(endpoint, event_type))

    @activity.defn(name="deliver_event")
    async def deliver_event(self, attempt: DeliveryAttempt) -> DeliveryOutcome:
        bound = log.bind(
            event_id=attempt.event_id, endpoint_id=attempt.endpoint_id, attempt=attempt.attempt
        )
        loaded = await asyncio.to_thread(self._load, attempt)
        if loaded is None:
            bound.info("event.endpoint_gone")
            return DeliveryOutcome.ENDPOINT_DISABLED
        endpoint, event = loaded
        answer = await self._post(endpoint, event, attempt.timeout)
        outcome = await asyncio.to_thread(self._record, attempt, event, answer)
        bound.info(
            "event.attempted",
            event_type=event.type,
            invoice_id=event.invoice_id,
            outcome=outcome.value,
            status_code=answer.status_code,
            error=answer.error,
            latency_ms=round(answer.latency_ms, 1),
        )
        return outcome

    def _load(self, attempt: DeliveryAttempt) -> tuple[WebhookEndpoint, OutboundEvent] | None:
        with Session(self._engine) as session:
            endpoint = session.get(WebhookEndpoint, attempt.endpoint_id)
            event = session.get(OutboundEvent, attempt.event_id)
        if endpoint is None or event is None or not endpoint.enabled:
            return None
        return endpoint, event

    def _secrets(self, endpoint: WebhookEndpoint, now: datetime) -> list[str]:
        secrets = [unseal(self._codec_keys, endpoint.secret)]
        expires = endpoint.previous_secret_expires_at
        if endpoint.previous_secret is not None and expires is not None and now < expires:
            secrets.append(unseal(self._codec_keys, endpoint.previous_secret))
        return secrets

    async def _post(
        self, endpoint: WebhookEndpoint, event: OutboundEvent, timeout_seconds: float
    ) -> _Answer:
        started = time.perf_counter()
        status_code: int | None = None
        error: str | None = None
        try:
            await ensure_public_destination(endpoint.url, development_mode=self._development_mode)
            headers = signed_headers(
                event.id,
                event.payload,
                self._secrets(endpoint, datetime.now(UTC)),
                datetime.now(UTC),
            )
            # Redirects are not followed: a merchant's URL must not lead us to our own network.
            response = await self._http.post(
                endpoint.url,
                content=event.payload,
                headers=headers,
                timeout=timeout_seconds,
                follow_redirects=False,
            )
            status_code = response.status_code
            if not response.is_success:
                error = response.text[:ERROR_CHARS] or response.reason_phrase
        except UnsafeDestination as unsafe:
            error = str(unsafe)
        except httpx.HTTPError as failure:
            error = f"{type(failure).__name__}: {failure}"[:ERROR_CHARS]
        return _Answer(status_code, error, (time.perf_counter() - started) * 1000)

    def _record(
        self, attempt: DeliveryAttempt, event: OutboundEvent, answer: _Answer
    ) -> DeliveryOutcome:
        """The attempt, what it means for the endpoint, and the invoice's timeline: one
        transaction."""
        now = datetime.now(UTC)
        with write_session(self._engine) as session:
            endpoint = session.get(WebhookEndpoint, attempt.endpoint_id, with_for_update=True)
            outcome = _outcome_of(answer, attempt)
            if endpoint is not None:
                outcome = _apply_to_endpoint(endpoint, outcome, answer, attempt, now)
                session.add(endpoint)
            session.add(
                EventAttempt(
                    event_id=attempt.event_id,
                    endpoint_id=attempt.endpoint_id,
                    attempt=attempt.attempt,
                    attempted_at=now,
                    outcome=outcome.value,
                    status_code=answer.status_code,
                    latency_ms=answer.latency_ms,
                    error=answer.error,
                    next_attempt_at=(
                        attempt.next_attempt_at if outcome is DeliveryOutcome.FAILED else None
                    ),
                )
            )
            if event.invoice_id is not None:
                timeline.add(
                    session,
                    event.invoice_id,
                    TimelineKind.EVENT_DELIVERY,
                    now,
                    event_id=event.id,
                    type=event.type,
                    endpoint_id=attempt.endpoint_id,
                    attempt=attempt.attempt,
                    outcome=outcome.value,
                    status_code=answer.status_code,
                )
        return outcome


def _outcome_of(answer: _Answer, attempt: DeliveryAttempt) -> DeliveryOutcome:
    code = answer.status_code
    if code is not None and 200 <= code < 300:
        return DeliveryOutcome.DELIVERED
    if code == GONE:
        return DeliveryOutcome.ENDPOINT_DISABLED
    return DeliveryOutcome.FAILED if attempt.next_attempt_at else DeliveryOutcome.GAVE_UP


def _apply_to_endpoint(
    endpoint: WebhookEndpoint,
    outcome: DeliveryOutcome,
    answer: _Answer,
    attempt: DeliveryAttempt,
    now: datetime,
) -> DeliveryOutcome:
    """Keeps the endpoint's failing streak; disables it on 410 or a streak too long."""
    if outcome is DeliveryOutcome.DELIVERED:
        endpoint.failing_since = None
        return outcome
    reason: str | None = None
    if outcome is DeliveryOutcome.ENDPOINT_DISABLED:
        reason = "answered 410 Gone"
    elif endpoint.failing_since is None:
        endpoint.failing_since = now
    elif now - endpoint.failing_since >= timedelta(seconds=attempt.disable_after):
        reason = f"every delivery failed since {endpoint.failing_since.isoformat()}"
    if reason is None:
        return outcome
    endpoint.enabled = False
    endpoint.disabled_reason = reason
    endpoint.updated_at = now
    log.warning(
        "webhook_endpoint.disabled",
        endpoint_id=endpoint.id,
        caller=endpoint.caller,
        reason=reason,
        status_code=answer.status_code,
    )
    return DeliveryOutcome.ENDPOINT_DISABLED
