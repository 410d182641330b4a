"""The reconciliation API's shapes: runs, discrepancies and their audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from domain.discrepancies import DiscrepancyKind, DiscrepancyStatus

RUN_ID_PATTERN = r"^[A-Za-z0-9:_.+-]{1,100}$"
DISCREPANCY_ID_PATTERN = r"^dsc_[0-9a-f]{24}$"
# An on-demand window longer than this is refused: split it, or let the daily runs go.
MAX_WINDOW_DAYS = 366


class StartRun(BaseModel):
    """A window of Paystack's books to reconcile now: [from, to), UTC."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        json_schema_extra={
            "examples": [{"from": "2026-11-23T00:00:00Z", "to": "2026-11-24T00:00:00Z"}]
        },
    )

    window_from: AwareDatetime = Field(alias="from")
    window_to: AwareDatetime = Field(alias="to")

    @model_validator(mode="after")
    def _ordered(self) -> StartRun:
        if self.window_from >= self.window_to:
            raise ValueError("'from' must be before 'to'")
        if (self.window_to - self.window_from).days > MAX_WINDOW_DAYS:
            raise ValueError(f"a window is at most {MAX_WINDOW_DAYS} days")
        return self


class CurrencyTotals(BaseModel):
    paystack_volume: int = 0
    payrecon_volume: int = 0
    fees: int = 0
    net_settled: int = 0


class RunOut(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "recon_5b0c1d2e3f4a5b6c7d8e9f0a",
                    "trigger": "on_demand",
                    "window_from": "2026-11-23T00:00:00Z",
                    "window_to": "2026-11-24T00:00:00Z",
                    "status": "completed",
                    "started_at": "2026-11-24T00:30:00.120000Z",
                    "finished_at": "2026-11-24T00:30:04.870000Z",
                    "counts": {"orphan_payment": 1, "missed_payment": 1},
                    "totals": {
                        "NGN": {
                            "paystack_volume": 12500000,
                            "payrecon_volume": 12450000,
                            "fees": 187500,
                            "net_settled": 9800000,
                        }
                    },
                    "records_seen": 312,
                    "records_matched": 310,
                    "pages": 6,
                    "error": None,
                }
            ]
        },
    )

    id: str
    trigger: str
    window_from: datetime
    window_to: datetime
    status: str
    started_at: datetime
    finished_at: datetime | None
    counts: dict[str, int]
    totals: dict[str, CurrencyTotals]
    records_seen: int
    records_matched: int
    pages: int
    error: str | None


class RunPage(BaseModel):
    items: list[RunOut]
    total: int
    limit: int
    offset: int


class AuditEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    actor: str
    action: str
    note: str | None
    detail: dict[str, Any]


class DiscrepancyOut(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "dsc_0a1b2c3d4e5f60718293a4b5",
                    "kind": "orphan_payment",
                    "status": "open",
                    "invoice_id": None,
                    "paystack_reference": "T685312322670591",
                    "details": {
                        "transaction_id": 4100000123,
                        "paystack_status": "success",
                        "amount": 250000,
                        "currency": "NGN",
                    },
                    "first_seen_at": "2026-11-24T00:30:02Z",
                    "last_seen_at": "2026-11-24T00:45:02Z",
                    "resolved_at": None,
                    "resolution_note": None,
                    "audit": [],
                }
            ]
        },
    )

    id: str
    kind: DiscrepancyKind
    status: DiscrepancyStatus
    invoice_id: str | None
    paystack_reference: str | None
    details: dict[str, Any]
    first_seen_at: datetime
    last_seen_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None
    resolution_note: str | None
    audit: list[AuditEntryOut] = Field(
        default_factory=list, description="Every change, oldest first (on a single one only)"
    )


class DiscrepancyPage(BaseModel):
    items: list[DiscrepancyOut]
    total: int
    limit: int
    offset: int


class ResolveDiscrepancy(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"note": "a donation through the payment page"}]},
    )

    note: str = Field(min_length=1, max_length=2000)
