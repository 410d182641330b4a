"""How Paystack writes its values: timestamps, amounts, and the times it is given."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def parse_timestamp(value: Any) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    # Paystack's timestamps are UTC; one without a zone is read as UTC, not local time.
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def parse_amount(value: Any) -> int | None:
    """Amounts are whole subunits, never negative; some events send them as digit strings."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def paystack_time(moment: datetime) -> str:
    """A query's time as Paystack writes its own: UTC, milliseconds, `Z`."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def optional_text(value: Any) -> str | None:
    """A string Paystack may send as null or empty: None for both."""
    return value if isinstance(value, str) and value else None
