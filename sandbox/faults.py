"""The live fault configuration, its random draws and the injected-fault counters.

Draws happen synchronously when a webhook is scheduled or an API call arrives,
never inside background tasks, so a seed gives the same faults for the same
sequence of calls. Webhooks, initialize and verify draw from separate streams:
how often a client polls verify cannot shift which webhooks are dropped.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sandbox.fault_config import Chance, Count, EndpointFaults, FaultConfig, InitializeFaults, merge
from sandbox.retry_schedule import retry_offsets

Endpoint = Literal["initialize", "verify", "refund"]
STREAMS = ("webhooks", "initialize", "verify", "refund")
FAULT_COUNTERS = (
    "dropped",
    "duplicated",
    "delayed",
    "reordered",
    "bad_signature",
    "retried",
    "retry_exhausted",
    "initialize_error",
    "initialize_timeout",
    "initialize_latency",
    "initialize_after_commit",
    "verify_error",
    "verify_timeout",
    "verify_latency",
    "refund_error",
    "refund_timeout",
    "refund_latency",
    "refund_after_commit",
)


@dataclass(frozen=True)
class WebhookPlan:
    """What happens to one scheduled webhook delivery."""

    drop: bool = False
    extra_copies: int = 0
    delay_s: float = 0.0
    reorder: bool = False
    hold_s: float = 0.0
    bad_signature: bool = False
    # Seconds after the first attempt at which a failed delivery is tried again.
    retry_offsets: tuple[float, ...] = ()


@dataclass(frozen=True)
class CallPlan:
    """What happens to one API call."""

    endpoint: Endpoint
    latency_s: float = 0.0
    error_status: int | None = None
    timeout_s: float | None = None
    after_commit: bool = False

    @property
    def faulty(self) -> bool:
        return self.error_status is not None or self.timeout_s is not None


class Faults:
    def __init__(self, config: FaultConfig) -> None:
        self.config = config
        self.counters: Counter[str] = Counter()
        self._streams: dict[str, random.Random] = {}
        self._seed(config.seed)

    # Configuration

    def update(self, changes: Mapping[str, Any]) -> FaultConfig:
        """Merges a partial config; raises pydantic.ValidationError and then changes nothing."""
        self.config = merge(self.config, changes)
        # Posting a seed, even the same one, restarts the sequence: that is what repeats a run.
        if "seed" in changes:
            self._seed(self.config.seed)
        return self.config

    def turn_off(self) -> None:
        self.config = FaultConfig()
        self._seed(None)

    def reset(self) -> None:
        self.turn_off()
        self.counters.clear()

    def stats(self) -> dict[str, int]:
        return {name: self.counters[name] for name in FAULT_COUNTERS}

    def count(self, name: str, amount: int = 1) -> None:
        self.counters[name] += amount

    # Draws

    def plan_webhook(self) -> WebhookPlan:
        faults = self.config.webhooks
        if self._fires(faults, "drop", "webhooks"):
            self.count("dropped")
            # A dropped delivery uses up no other fault: counts stay for the next one.
            return WebhookPlan(drop=True)
        extra = faults.duplicate_copies if self._fires(faults, "duplicate", "webhooks") else 0
        delay_s = 0.0
        if self._fires(faults, "delay", "webhooks"):
            delay_s = self._uniform_ms(faults.delay_ms, "webhooks") / 1000
            self.count("delayed")
        reorder = self._fires(faults, "reorder", "webhooks")
        bad_signature = self._fires(faults, "bad_signature", "webhooks")
        self.count("duplicated", extra)
        self.count("reordered", int(reorder))
        self.count("bad_signature", int(bad_signature))
        retry = faults.retry
        return WebhookPlan(
            extra_copies=extra,
            delay_s=delay_s,
            reorder=reorder,
            hold_s=faults.reorder_hold_ms / 1000,
            bad_signature=bad_signature,
            retry_offsets=retry_offsets(retry.mode, retry.time_factor) if retry.enabled else (),
        )

    def plan_call(self, endpoint: Endpoint, reference: str | None = None) -> CallPlan:
        """Draws only; the caller counts a fault when it is actually applied."""
        faults: EndpointFaults = getattr(self.config.api, endpoint)
        if faults.only_references is not None and reference not in faults.only_references:
            return CallPlan(endpoint=endpoint)
        timeout_s: float | None = None
        error_status: int | None = None
        if self._fires(faults, "timeout_rate", endpoint):
            timeout_s = faults.timeout_seconds
        elif self._fires(faults, "error_rate", endpoint):
            error_status = self._streams[endpoint].choice(faults.error_statuses)
        after_commit = False
        if (timeout_s is not None or error_status is not None) and isinstance(
            faults, InitializeFaults
        ):
            after_commit = self._fires(faults, "after_commit", endpoint)
        return CallPlan(
            endpoint=endpoint,
            latency_s=self._uniform_ms(faults.latency_ms, endpoint) / 1000,
            error_status=error_status,
            timeout_s=timeout_s,
            after_commit=after_commit,
        )

    def _fires(self, owner: Any, field: str, stream: str) -> bool:
        chance: Chance = getattr(owner, field)
        if isinstance(chance, Count):
            if chance.count <= 0:
                return False
            chance.count -= 1
            return True
        # No draw for 0 and 1: a fault that is off or always on uses up no random numbers.
        if chance <= 0:
            return False
        if chance >= 1:
            return True
        return self._streams[stream].random() < chance

    def _uniform_ms(self, bounds: tuple[float, float], stream: str) -> float:
        low, high = bounds
        if high <= low:
            return low
        return self._streams[stream].uniform(low, high)

    def _seed(self, seed: int | None) -> None:
        # Not for security: repeatable test faults are the point.
        self._streams = {
            name: random.Random(f"{seed}:{name}") if seed is not None else random.Random()  # noqa: S311
            for name in STREAMS
        }
