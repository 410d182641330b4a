"""A typed async client for the parts of Paystack's API that payrecon uses.

The same client talks to the local sandbox and to https://api.paystack.co; only the
base URL and the secret key differ.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx

from domain.verification import Verification
from paystack.disputes import DisputeRecord, UploadUrl, dispute_record
from paystack.fields import parse_amount, parse_timestamp, paystack_time
from paystack.refunds import RefundRecord, refund_record
from paystack.settlements import SettlementRecord, settlement_record
from paystack.transactions import Page, TransactionRecord, transaction_record

if TYPE_CHECKING:
    from config import Settings

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

    async def list_transactions(
        self,
        *,
        since: datetime,
        until: datetime,
        per_page: int,
        cursor: str | None = None,
    ) -> Page[TransactionRecord]:
        """One page of `GET /transaction` in cursor mode, newest first: cursors stay put
        while new transactions arrive, where page numbers would shift under them."""
        params: dict[str, str | int] = {
            "from": paystack_time(since),
            "to": paystack_time(until),
            "perPage": per_page,
            "use_cursor": "true",
        }
        if cursor is not None:
            params["next"] = cursor
        data, meta = await self._request_page("GET", "/transaction", params=params)
        following = meta.get("next")
        return Page(
            records=[transaction_record(item) for item in data],
            next_cursor=following if isinstance(following, str) and following else None,
        )

    async def list_settlements(
        self, *, since: datetime, until: datetime, per_page: int, page: int
    ) -> Page[SettlementRecord]:
        params: dict[str, str | int] = {
            "from": paystack_time(since),
            "to": paystack_time(until),
            "perPage": per_page,
            "page": page,
        }
        data, meta = await self._request_page("GET", "/settlement", params=params)
        return Page(
            records=[settlement_record(item) for item in data],
            next_cursor=str(page + 1) if _has_next_page(meta, page) else None,
        )

    async def settlement_transactions(
        self, settlement_id: int, *, per_page: int, page: int
    ) -> Page[TransactionRecord]:
        params = {"perPage": per_page, "page": page}
        path = f"/settlement/{settlement_id}/transactions"
        data, meta = await self._request_page("GET", path, params=params)
        return Page(
            records=[transaction_record(item) for item in data],
            next_cursor=str(page + 1) if _has_next_page(meta, page) else None,
        )

    # --- refunds ------------------------------------------------------------------------

    async def create_refund(
        self,
        *,
        transaction: str | int,
        amount: int | None,
        merchant_note: str,
        customer_note: str | None = None,
    ) -> RefundRecord:
        """Queues a refund (all that is left when `amount` is None). Paystack takes no
        idempotency key: before retrying one that went unanswered, look for
        `merchant_note` among `list_refunds(transaction=…)`."""
        body: dict[str, Any] = {"transaction": str(transaction), "merchant_note": merchant_note}
        if amount is not None:
            body["amount"] = amount
        if customer_note:
            body["customer_note"] = customer_note
        return refund_record(await self._request("POST", "/refund", json=body))

    async def list_refunds(
        self,
        *,
        transaction: str | int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        per_page: int = 50,
        page: int = 1,
    ) -> Page[RefundRecord]:
        params: dict[str, str | int] = {"perPage": per_page, "page": page}
        if since is not None:
            params["from"] = paystack_time(since)
        if until is not None:
            params["to"] = paystack_time(until)
        if transaction is not None:
            params["transaction"] = str(transaction)
        data, meta = await self._request_page("GET", "/refund", params=params)
        return Page(
            records=[refund_record(item) for item in data],
            next_cursor=str(page + 1) if _has_next_page(meta, page) else None,
        )

    async def fetch_refund(self, refund_id: int) -> RefundRecord:
        return refund_record(await self._request("GET", f"/refund/{refund_id}"))

    async def retry_refund(
        self, refund_id: int, *, currency: str, account_number: str, bank_id: str
    ) -> RefundRecord:
        """Sends the customer's bank account for a refund that needs attention."""
        details = {"currency": currency, "account_number": account_number, "bank_id": bank_id}
        path = f"/refund/retry_with_customer_details/{refund_id}"
        data = await self._request("POST", path, json={"refund_account_details": details})
        return refund_record(data)

    # --- disputes -----------------------------------------------------------------------

    async def list_disputes(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        transaction: str | int | None = None,
        status: str | None = None,
        per_page: int = 50,
        page: int = 1,
    ) -> Page[DisputeRecord]:
        params: dict[str, str | int] = {"perPage": per_page, "page": page}
        if since is not None:
            params["from"] = paystack_time(since)
        if until is not None:
            params["to"] = paystack_time(until)
        if transaction is not None:
            params["transaction"] = str(transaction)
        if status is not None:
            params["status"] = status
        data, meta = await self._request_page("GET", "/dispute", params=params)
        return Page(
            records=[dispute_record(item) for item in data],
            next_cursor=str(page + 1) if _has_next_page(meta, page) else None,
        )

    async def fetch_dispute(self, dispute_id: int) -> DisputeRecord:
        return dispute_record(await self._request("GET", f"/dispute/{dispute_id}"))

    async def dispute_upload_url(self, dispute_id: int, file_name: str) -> UploadUrl:
        data = await self._request(
            "GET", f"/dispute/{dispute_id}/upload_url", params={"upload_filename": file_name}
        )
        if not isinstance(data, dict) or not data.get("signedUrl") or not data.get("fileName"):
            raise PaystackError(f"Paystack answered no upload URL for dispute {dispute_id}")
        return UploadUrl(signed_url=str(data["signedUrl"]), file_name=str(data["fileName"]))

    async def upload_evidence(
        self, upload: UploadUrl, content: bytes, content_type: str = "application/pdf"
    ) -> None:
        """PUTs the file where Paystack said; the secret key is not sent there."""
        try:
            async with httpx.AsyncClient(timeout=self._http.timeout) as plain:
                answer = await plain.put(
                    upload.signed_url, content=content, headers={"Content-Type": content_type}
                )
        except httpx.TransportError as error:
            raise PaystackError(f"evidence upload failed: {type(error).__name__}") from error
        if not answer.is_success:
            raise PaystackError(
                f"evidence upload answered HTTP {answer.status_code}",
                status_code=answer.status_code,
            )

    async def resolve_dispute(
        self,
        dispute_id: int,
        *,
        resolution: str,
        message: str,
        refund_amount: int,
        uploaded_filename: str,
        evidence: int | None = None,
    ) -> DisputeRecord:
        body: dict[str, Any] = {
            "resolution": resolution,
            "message": message,
            "refund_amount": refund_amount,
            "uploaded_filename": uploaded_filename,
        }
        if evidence is not None:
            body["evidence"] = evidence
        data = await self._request("PUT", f"/dispute/{dispute_id}/resolve", json=body)
        return dispute_record(data)

    async def _request_page(
        self, method: str, path: str, **kwargs: Any
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        envelope = await self._envelope(method, path, **kwargs)
        data, meta = envelope.get("data"), envelope.get("meta")
        if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
            raise PaystackError(f"Paystack answered {path} without a list of records")
        return data, meta if isinstance(meta, dict) else {}

    async def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        return (await self._envelope(method, path, **kwargs)).get("data")

    async def _envelope(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
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
            return envelope
        raise PaystackError(
            str(envelope.get("message") or f"HTTP {response.status_code}"),
            status_code=response.status_code,
            code=envelope.get("code"),
        )


def _has_next_page(meta: dict[str, Any], page: int) -> bool:
    page_count = meta.get("pageCount")
    return isinstance(page_count, int) and page < page_count


def make_paystack_client(settings: Settings) -> PaystackClient:
    """The client every payrecon process uses, as the settings say."""
    return PaystackClient(
        settings.paystack_base_url,
        settings.paystack_secret_key.get_secret_value(),
        timeout=settings.paystack_timeout_seconds,
    )
