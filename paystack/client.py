"""A typed async client for the parts of Paystack's API that payrecon uses.

The same client talks to the local sandbox and to https://api.paystack.co; only the
base URL and the secret key differ.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from domain.reconcile import Verification

NOT_FOUND_MESSAGES = ("Transaction reference not found",)


class PaystackError(Exception):
    """An answer from Paystack that is not a success, or no answer at all."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.code = code

    @property
    def retryable(self) -> bool:
        # No answer, 5xx and 429 (rate limits are undocumented but real) may pass;
        # any other 4xx will be refused again.
        return self.status_code is None or self.status_code >= 500 or self.status_code == 429


@dataclass
class PaymentLink:
    reference: str
    authorization_url: str
    access_code: str


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


def verification_from_data(reference: str, data: dict[str, Any]) -> Verification:
    transaction_id = data.get("id")
    return Verification(
        reference=str(data.get("reference") or reference),
        found=True,
        status=data.get("status"),
        amount=parse_amount(data.get("amount")),
        requested_amount=parse_amount(data.get("requested_amount")),
        currency=data.get("currency"),
        paid_at=parse_timestamp(data.get("paid_at") or data.get("paidAt")),
        transaction_id=transaction_id if isinstance(transaction_id, int) else None,
        gateway_response=data.get("gateway_response"),
    )


class PaystackClient:
    def __init__(
        self,
        base_url: str,
        secret_key: str,
        *,
        timeout: float = 10.0,
        max_connections: int = 100,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {secret_key}", "Accept": "application/json"},
            timeout=timeout,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def initialize(
        self,
        *,
        reference: str,
        email: str,
        amount: int,
        currency: str,
        metadata: dict[str, Any] | None = None,
        callback_url: str | None = None,
    ) -> PaymentLink:
        body: dict[str, Any] = {
            "reference": reference,
            "email": email,
            "amount": amount,
            "currency": currency,
        }
        if metadata:
            body["metadata"] = metadata
        if callback_url:
            body["callback_url"] = callback_url
        data = await self._request("POST", "/transaction/initialize", json=body)
        return PaymentLink(
            reference=data["reference"],
            authorization_url=data["authorization_url"],
            access_code=data["access_code"],
        )

    async def verify(self, reference: str) -> Verification:
        try:
            data = await self._request("GET", f"/transaction/verify/{reference}")
        except PaystackError as error:
            # 404 per the OpenAPI description; 400 has been reported too.
            if error.status_code in (400, 404) and error.message in NOT_FOUND_MESSAGES:
                return Verification(reference=reference, found=False)
            raise
        return verification_from_data(reference, data)

    async def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as error:
            raise PaystackError(f"Paystack did not answer in time: {method} {path}") from error
        except httpx.TransportError as error:
            raise PaystackError(f"Paystack unreachable: {type(error).__name__}") from error
        try:
            envelope = response.json()
        except ValueError:
            envelope = None
        if not isinstance(envelope, dict):
            raise PaystackError(
                f"Paystack answered HTTP {response.status_code} without a JSON envelope",
                status_code=response.status_code,
            )
        if response.is_success and envelope.get("status") is True:
            return envelope.get("data")
        raise PaystackError(
            str(envelope.get("message") or f"HTTP {response.status_code}"),
            status_code=response.status_code,
            code=envelope.get("code"),
        )
