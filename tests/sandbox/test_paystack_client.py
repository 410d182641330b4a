"""payrecon's own Paystack client against the sandbox, over real HTTP, for refunds and
disputes: every answer parsed into its record, and Paystack's refusals raised with their
words and status codes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from paystack.client import PaystackClient, PaystackError
from sandbox.controls import SandboxControls
from tests.sandbox.support import SECRET, paid


@pytest.fixture
async def client(sandbox_url: str) -> AsyncIterator[PaystackClient]:
    paystack = PaystackClient(sandbox_url, SECRET)
    yield paystack
    await paystack.aclose()


@pytest.fixture
async def controls(sandbox_url: str) -> AsyncIterator[SandboxControls]:
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=5) as http:
        yield SandboxControls(http)


async def test_refunds_created_listed_fetched_and_found_by_their_note(
    client: PaystackClient,
    controls: SandboxControls,
    paystack: httpx.Client,
    http: httpx.Client,
) -> None:
    paid(paystack, http, "client-r1")
    made = await client.create_refund(
        transaction="client-r1", amount=20_000, merchant_note="payrecon rf_000001"
    )
    assert (made.amount, made.status, made.transaction_reference) == (
        20_000,
        "pending",
        "client-r1",
    )
    rest = await client.create_refund(
        transaction=made.transaction_id or 0, amount=None, merchant_note="payrecon rf_000002"
    )
    assert rest.amount == 30_000
    listed = await client.list_refunds(transaction="client-r1")
    assert [r.merchant_note for r in listed.records] == ["payrecon rf_000002", "payrecon rf_000001"]
    assert listed.next_cursor is None
    await controls.settle_refund(made.id, "needs-attention")
    fetched = await client.fetch_refund(made.id)
    assert fetched.status == "needs-attention" and fetched.transaction_id == made.transaction_id
    retried = await client.retry_refund(
        made.id, currency="NGN", account_number="0123456789", bank_id="9"
    )
    assert retried.status == "processing"
    with pytest.raises(PaystackError) as refused:
        await client.create_refund(transaction="client-r1", amount=1, merchant_note="x")
    assert refused.value.status_code == 400
    assert refused.value.message == "Transaction has been fully reversed"
    assert not refused.value.retryable


async def test_disputes_listed_fetched_and_resolved_with_uploaded_evidence(
    client: PaystackClient,
    controls: SandboxControls,
    paystack: httpx.Client,
    http: httpx.Client,
) -> None:
    paid(paystack, http, "client-d1")
    opened = await controls.open_dispute("client-d1", refund_amount=10_000)
    [listed] = (await client.list_disputes(transaction="client-d1")).records
    assert listed.id == opened["id"] and listed.open and listed.due_at is not None
    assert (listed.transaction_reference, listed.refund_amount) == ("client-d1", 10_000)
    upload = await client.dispute_upload_url(listed.id, "receipt.pdf")
    await client.upload_evidence(upload, b"%PDF-1.4 delivered")
    resolved = await client.resolve_dispute(
        listed.id,
        resolution="merchant-accepted",
        message="Refunding the customer",
        refund_amount=10_000,
        uploaded_filename=upload.file_name,
    )
    assert (resolved.status, resolved.resolution, resolved.open) == (
        "resolved",
        "merchant-accepted",
        False,
    )
    assert (await client.fetch_dispute(listed.id)).resolved_at is not None
    [refund] = (await client.list_refunds(transaction="client-d1")).records
    assert (refund.amount, refund.dispute_id) == (10_000, listed.id)
    assert (await client.list_disputes(status="resolved")).records[0].id == listed.id
    with pytest.raises(PaystackError) as missing:
        await client.fetch_dispute(1)
    assert missing.value.status_code == 404
