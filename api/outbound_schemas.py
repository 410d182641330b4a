"""Request and response bodies of the merchants' webhook endpoints and their events."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator
from pydantic.json_schema import SkipJsonSchema

from domain.events import EventType
from outbound.urls import MAX_URL_LENGTH

MAX_DESCRIPTION_LENGTH = 500
ENDPOINT_ID_PATTERN = r"^we_[0-9a-f]{24}$"
# Event ids are `evt_<invoice id>_<revision>` (domain/events.py), at most 100 characters.
EVENT_ID_PATTERN = r"^[A-Za-z0-9._-]{1,100}$"

URL_DESCRIPTION = (
    "Where payrecon POSTs the events. Outside development mode: https, and a host on the "
    "public internet (not loopback, private or link-local); redirects are not followed"
)
EVENTS_DESCRIPTION = "The event types it receives; empty (the default): every type"

EndpointUrl = Annotated[
    str, Field(min_length=1, max_length=MAX_URL_LENGTH, description=URL_DESCRIPTION)
]
Description = Annotated[str, Field(max_length=MAX_DESCRIPTION_LENGTH)]
EventTypes = Annotated[list[EventType], Field(description=EVENTS_DESCRIPTION)]

ENDPOINT_EXAMPLE: dict[str, JsonValue] = {
    "id": "we_5f0c8a1e2b3d4c5e6f7a8b9c",
    "url": "https://shop.example.com/payrecon/events",
    "events": ["invoice.paid", "invoice.needs_review"],
    "description": "Order service",
    "enabled": True,
    "disabled_reason": None,
    "created_at": "2026-11-23T10:00:00Z",
    "updated_at": "2026-11-23T10:00:00Z",
}
# Made up, for the docs: no endpoint has it.
SECRET_EXAMPLE = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # noqa: S105


def _each_once(events: list[EventType]) -> list[EventType]:
    """Repeats say nothing more: kept once each, in the order given."""
    return list(dict.fromkeys(events))


class CreateWebhookEndpoint(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://shop.example.com/payrecon/events",
                    "events": ["invoice.paid", "invoice.needs_review"],
                    "description": "Order service",
                }
            ]
        },
    )

    url: EndpointUrl
    events: EventTypes = Field(default_factory=list)
    description: Description | None = None

    @field_validator("events")
    @classmethod
    def _events_once(cls, events: list[EventType]) -> list[EventType]:
        return _each_once(events)


class UpdateWebhookEndpoint(BaseModel):
    """Only the fields given change. `null` clears the description; it is refused for
    the others, which always have a value."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"enabled": True}, {"events": ["invoice.paid"]}]},
    )

    # SkipJsonSchema: absent is allowed, null is not; the validator below refuses it.
    url: EndpointUrl | SkipJsonSchema[None] = None
    events: EventTypes | SkipJsonSchema[None] = None
    enabled: (
        Annotated[
            bool,
            Field(
                strict=True,
                description="false stops deliveries; true starts them again and clears "
                "disabled_reason",
            ),
        ]
        | SkipJsonSchema[None]
    ) = None
    description: Description | None = None

    @field_validator("url", "events", "enabled", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Runs only for fields present in the body: absent ones keep their default.
        if value is None:
            raise ValueError("must not be null; leave the field out to keep it as it is")
        return value

    @field_validator("events")
    @classmethod
    def _events_once(cls, events: list[EventType] | None) -> list[EventType] | None:
        return None if events is None else _each_once(events)


class WebhookEndpointOut(BaseModel):
    """An endpoint as the API shows it: never its signing secret."""

    model_config = ConfigDict(
        from_attributes=True, json_schema_extra={"examples": [ENDPOINT_EXAMPLE]}
    )

    id: str = Field(description="`we_` and 24 hex digits")
    url: str
    events: list[str] = Field(description=EVENTS_DESCRIPTION)
    description: str | None
    enabled: bool = Field(
        description="false: nothing is sent to it (turned off, answered 410 Gone, or every "
        "delivery failed for 5 days; see disabled_reason)"
    )
    disabled_reason: str | None = Field(description="Why payrecon disabled it, if it did")
    created_at: datetime
    updated_at: datetime


class WebhookEndpointWithSecret(WebhookEndpointOut):
    """An endpoint just made, or whose secret was just rotated: with the secret, shown
    this once."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{**ENDPOINT_EXAMPLE, "secret": SECRET_EXAMPLE}]}
    )

    secret: str = Field(
        description="The signing secret (Standard Webhooks, `whsec_…`): verify each "
        "delivery's `webhook-signature` with it. Shown only now; payrecon keeps it encrypted"
    )


class WebhookEndpointPage(BaseModel):
    items: list[WebhookEndpointOut]
    total: int
    limit: int
    offset: int


class EventAttemptOut(BaseModel):
    """One attempt to deliver one event to the endpoint, or a delivery due its first."""

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "event_id": "evt_inv-5f0c8a1e2b3d4c5e6f7a8b9c_2",
                    "attempt": 2,
                    "attempted_at": "2026-11-23T10:00:05Z",
                    "outcome": "failed",
                    "status_code": 502,
                    "latency_ms": 312.5,
                    "error": "Bad Gateway",
                    "next_attempt_at": "2026-11-23T10:05:05Z",
                }
            ]
        },
    )

    event_id: str
    attempt: int = Field(description="1 for the first attempt, then 2, 3, …")
    attempted_at: datetime | None = Field(description="null: due, not yet tried")
    outcome: str = Field(
        description="pending (due at next_attempt_at, not yet tried); delivered; failed "
        "(tried again at next_attempt_at); gave_up (the last attempt failed); "
        "endpoint_disabled"
    )
    status_code: int | None = Field(description="The endpoint's HTTP status; null: no answer")
    latency_ms: float | None
    error: str | None = Field(description="What went wrong: the start of the answer, or why")
    next_attempt_at: datetime | None


class EventAttemptPage(BaseModel):
    items: list[EventAttemptOut]
    total: int
    limit: int
    offset: int


class Redelivery(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"event_id": "evt_inv-5f0c8a1e2b3d4c5e6f7a8b9c_2", "delivery_ids": [812]}]
        }
    )

    event_id: str
    delivery_ids: list[int] = Field(
        description="The new deliveries, one per endpoint that takes the event now, each due "
        "at once: see GET /webhook-endpoints/{id}/deliveries"
    )
