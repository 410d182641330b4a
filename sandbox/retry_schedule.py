"""When Paystack tries a webhook again after an answer other than 200.

Paystack's documentation: live mode retries every 3 minutes for the first 4
tries, then hourly for 72 hours; test mode hourly for 10 hours. Read here as:
retries at +3, +6, +9 and +12 minutes after the first attempt, then every hour
after that, none later than 72 hours after the first attempt.
"""

from __future__ import annotations

from typing import Literal

RetryMode = Literal["live", "test"]

MINUTE = 60.0
HOUR = 3600.0
LIVE_QUICK_TRIES = 4
LIVE_QUICK_INTERVAL = 3 * MINUTE
LIVE_HORIZON = 72 * HOUR
TEST_HORIZON = 10 * HOUR


def retry_offsets(mode: RetryMode, time_factor: float = 1.0) -> tuple[float, ...]:
    """Seconds after the first attempt at which each retry is due, scaled by time_factor."""
    if mode == "live":
        quick = [LIVE_QUICK_INTERVAL * n for n in range(1, LIVE_QUICK_TRIES + 1)]
        offsets = _hourly(quick[-1], LIVE_HORIZON, quick)
    else:
        offsets = _hourly(0.0, TEST_HORIZON, [])
    return tuple(offset * time_factor for offset in offsets)


def _hourly(start: float, horizon: float, offsets: list[float]) -> list[float]:
    due = start + HOUR
    while due <= horizon:
        offsets.append(due)
        due += HOUR
    return offsets
