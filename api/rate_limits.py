"""A request rate per caller (PAYRECON_CALLER_RATE_LIMIT): a token bucket per API key's
name, in each API process, refilled at the rate and holding twice as much, so a short burst
passes and a flood is answered 429 with the seconds until the next request would pass.
Only authenticated routes count (api/deps.py's KeyCheckedFirst): never Paystack's webhooks,
the checkout return, health, metrics or the codec."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from fastapi import HTTPException, status
from prometheus_client import Counter, Gauge

from config import Settings

BURST_FACTOR = 2

RATE_LIMITED = Counter("payrecon_api_rate_limited", "Requests answered 429, by caller", ["caller"])
LIMITS = Gauge(
    "payrecon_limit",
    "The limits in force: caller_rate (requests/s, 0 off), endpoints_per_caller, "
    "deliveries_per_endpoint (at once, per worker)",
    ["limit"],
)


def publish_limits(settings: Settings) -> None:
    LIMITS.labels(limit="caller_rate").set(settings.payrecon_caller_rate_limit)
    LIMITS.labels(limit="endpoints_per_caller").set(settings.payrecon_max_endpoints_per_caller)
    LIMITS.labels(limit="deliveries_per_endpoint").set(
        settings.payrecon_delivery_concurrency_per_endpoint
    )


@dataclass
class _Bucket:
    tokens: float
    at: float


class CallerRateLimits:
    """`rate` requests a second per caller, `BURST_FACTOR * rate` at once; 0 turns it off."""

    def __init__(self, rate: float) -> None:
        self._rate = rate
        self._capacity = rate * BURST_FACTOR
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def wait_for(self, caller: str, now: float | None = None) -> float:
        """Takes one request's token: 0 if the caller may go on, else the seconds until a
        token is there (nothing is taken then)."""
        if self._rate <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        with self._lock:
            bucket = self._buckets.setdefault(caller, _Bucket(self._capacity, now))
            bucket.tokens = min(self._capacity, bucket.tokens + (now - bucket.at) * self._rate)
            bucket.at = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return 0.0
            return (1 - bucket.tokens) / self._rate

    def check(self, caller: str) -> None:
        """Raises the 429 a caller over its rate gets."""
        wait = self.wait_for(caller)
        if wait > 0:
            RATE_LIMITED.labels(caller=caller).inc()
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                detail=f"over this caller's {self._rate:g} requests a second "
                f"(PAYRECON_CALLER_RATE_LIMIT); try again in {wait:.2f} s",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
