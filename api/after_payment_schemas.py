"""The shapes of money after payment: a refund asked for, a refund as the API shows it, the
customer's bank account for a refund that needs attention; a dispute as the API shows it,
and the merchant's answer to one."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Annotated

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from api.schemas import MAX_AMOUNT
from domain.disputes import DisputeResolution
from domain.invoice import Currency
from domain.refunds import RefundStatus


class CreateRefund(BaseModel):
    """A refund of an invoice's payment: all that is refundable when `amount` is left out."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"amount": 100000, "reason": "Order 1042 returned"}]},
    )

    amount: Annotated[
        int | None,
        Field(
            strict=True,
            gt=0,
            le=MAX_AMOUNT,
            description="In the currency's subunit; default: all that is refundable",
        ),
    ] = None
    reason: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=500,
            description="Why; sent to Paystack as the customer's note",
        ),
    ] = None

    def fingerprint(self) -> str:
        """A digest of the body as sent, to tell a repeat from a different request."""
        canonical = json.dumps(
            self.model_dump(mode="json", exclude_none=True), sort_keys=True, separators=(",", ":")
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


class RefundOut(BaseModel):
    """A refund as the API shows it; validated from the workflow's `Refund` or its row."""

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "rf_3f1a0c9e8b7d6a5f4e3d2c1b",
                    "invoice_id": "inv-5f0c8a1e2b3d4c5e6f7a8b9c",
                    "amount": 100000,
                    "currency": "NGN",
                    "status": "pending",
                    "reason": "Order 1042 returned",
                    "paystack_refund_id": 3018284,
                    "initiated_by": "api:shop",
                    "failure_reason": None,
                    "created_at": "2026-11-23T10:00:00Z",
                    "updated_at": "2026-11-23T10:00:01Z",
                    "revision": 4,
                }
            ]
        },
    )

    id: str = Field(validation_alias=AliasChoices("refund_id", "id"))
    invoice_id: str
    amount: int = Field(description="In the currency's subunit")
    currency: str
    status: RefundStatus = Field(
        description="requested (Paystack has not confirmed it yet), pending, processing, "
        "processed, failed, needs_attention (waits for the customer's bank account: "
        "POST /refunds/{id}/retry)"
    )
    reason: str | None
    paystack_refund_id: int | None
    initiated_by: str = Field(
        description="api:<caller name>, paystack_dashboard (made outside payrecon) or dispute"
    )
    failure_reason: str | None = Field(None, description="Paystack's words when it refused")
    created_at: datetime
    updated_at: datetime
    revision: int = Field(
        description="The invoice's revision at the refund's last change: the higher, the newer"
    )


class RefundPage(BaseModel):
    items: list[RefundOut]
    total: int
    limit: int
    offset: int


class RetryRefund(BaseModel):
    """The customer's bank account, for Paystack to send a refund that needs attention to."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"currency": "NGN", "account_number": "0123456789", "bank_id": "9"}]
        },
    )

    currency: Currency
    account_number: Annotated[str, Field(pattern=r"^[0-9]{6,20}$")]
    bank_id: Annotated[str, Field(pattern=r"^[0-9]{1,10}$", description="Paystack's bank id")]


class ResolveDispute(BaseModel):
    """The merchant's answer to a dispute, forwarded to Paystack."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "resolution": "declined",
                    "message": "Delivered on 2026-11-20; signed receipt attached",
                    "refund_amount": 0,
                    "uploaded_filename": "qesp8a4df1xejihd9x5q.pdf",
                }
            ]
        },
    )

    resolution: DisputeResolution = Field(description="merchant_accepted or declined")
    message: Annotated[str, Field(min_length=1, max_length=1000)]
    refund_amount: Annotated[
        int, Field(strict=True, ge=0, le=MAX_AMOUNT, description="In the subunit")
    ]
    uploaded_filename: Annotated[
        str,
        Field(
            pattern=r"^[A-Za-z0-9._-]{1,200}$",
            description="The file name GET /disputes/{id}/upload-url gave",
        ),
    ]
    evidence: Annotated[int | None, Field(strict=True, ge=1, le=2**63 - 1)] = None


class UploadUrlOut(BaseModel):
    signed_url: str = Field(description="PUT the evidence file here")
    file_name: str = Field(description="Resolve the dispute with this uploaded_filename")
