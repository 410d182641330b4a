"""What the sandbox may break on purpose, and how often.

Every fault takes either a probability (0..1) or `{"count": N}`: the next N
chances fire, then the fault stays off. Remaining counts live in the config
itself, so GET /_sandbox/faults shows what is left. Defaults: everything off.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

# Strict: `true` or "0.5" is more likely a mistake than a probability.
Probability = Annotated[float, Field(ge=0, le=1, strict=True)]
# An upper bound that catches a seconds-for-milliseconds mix-up (10 minutes).
MAX_MS = 600_000.0


class _Strict(BaseModel):
    # A misspelt fault name must be a 422, not a silently ignored key.
    model_config = ConfigDict(extra="forbid")


class Count(_Strict):
    """Fire on the next `count` chances, then stay off."""

    count: int = Field(ge=0, le=1_000_000, strict=True)


Chance = Probability | Count


def _ordered(bounds: tuple[float, float]) -> tuple[float, float]:
    if bounds[0] > bounds[1]:
        raise ValueError("must be [low, high] with low <= high")
    return bounds


MsRange = Annotated[
    tuple[Annotated[float, Field(ge=0, le=MAX_MS)], Annotated[float, Field(ge=0, le=MAX_MS)]],
    AfterValidator(_ordered),
]


def _error_statuses(statuses: list[int]) -> list[int]:
    # Injected errors are the retryable kind: rate limiting and server errors.
    for status in statuses:
        if status != 429 and not 500 <= status <= 599:
            raise ValueError(f"{status} is not 429 or a 5xx status")
    return statuses


class RetryConfig(_Strict):
    """Paystack's redelivery of webhooks that did not get a 200."""

    enabled: bool = False
    # Scales the schedule: 0.001 turns 3 minutes into 0.18 s and 72 hours into ~4 minutes.
    time_factor: float = Field(1.0, gt=0, le=1000)
    # "live": every 3 minutes for 4 tries, then hourly for 72 hours; "test": hourly for 10 hours.
    mode: Literal["live", "test"] = "live"


class WebhookFaults(_Strict):
    drop: Chance = 0.0
    duplicate: Chance = 0.0
    duplicate_copies: int = Field(2, ge=1, le=50)
    delay: Chance = 0.0
    delay_ms: MsRange = (100.0, 1000.0)
    reorder: Chance = 0.0
    reorder_hold_ms: float = Field(2000.0, ge=0, le=MAX_MS)
    bad_signature: Chance = 0.0
    retry: RetryConfig = Field(default_factory=RetryConfig)


class EndpointFaults(_Strict):
    error_rate: Chance = 0.0
    error_statuses: Annotated[list[int], Field(min_length=1), AfterValidator(_error_statuses)] = [
        500,
        502,
        503,
        429,
    ]
    # Added to every call, faulty or not; [0, 0] is no latency.
    latency_ms: MsRange = (0.0, 0.0)
    timeout_rate: Chance = 0.0
    timeout_seconds: float = Field(30.0, gt=0, le=600)
    # Only calls for these references meet the faults (and use up counts); null: every call.
    only_references: list[str] | None = Field(None, max_length=1000)


class InitializeFaults(EndpointFaults):
    # Chance that an injected error or timeout strikes after the transaction (or refund) was
    # created: the answer is lost, the thing exists.
    after_commit: Chance = 0.0


class ApiFaults(_Strict):
    initialize: InitializeFaults = Field(default_factory=InitializeFaults)
    verify: EndpointFaults = Field(default_factory=EndpointFaults)
    # POST /refund, whose lost answer must not lead to a second refund.
    refund: InitializeFaults = Field(default_factory=InitializeFaults)


class FaultConfig(_Strict):
    # Same seed, same sequence of calls: same faults.
    seed: int | None = None
    webhooks: WebhookFaults = Field(default_factory=WebhookFaults)
    api: ApiFaults = Field(default_factory=ApiFaults)


def merge(current: FaultConfig, update: Mapping[str, Any]) -> FaultConfig:
    """`update` laid over `current`, key by key; raises pydantic.ValidationError."""
    return FaultConfig.model_validate(_deep_merge(current.model_dump(mode="json"), update))


def _deep_merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        old = merged.get(key)
        # Objects merge; anything else (numbers, lists, {"count"} over a float) replaces.
        if isinstance(old, dict) and isinstance(value, Mapping):
            merged[key] = _deep_merge(old, value)
        else:
            merged[key] = value
    return merged
