"""A Paystack client library no one here wrote, pypaystack2, unchanged but for its base URL,
drives the sandbox through initialize, verify, list, fetch, totals, timeline, refunds and
disputes, and parses every answer with its own pydantic models: where the sandbox strays
from Paystack's shapes, the library's `Response.data` comes back None and this fails."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pypaystack2 import PaystackClient
from pypaystack2.base_clients import AbstractAPIClient
from pypaystack2.models.response_models import (
    Dispute,
    InitTransaction,
    Refund,
    Transaction,
    TransactionLog,
    TransactionTotal,
)

from tests.sandbox.support import SECRET

AMOUNT = 50_000


@pytest.fixture
def library(sandbox_url: str, monkeypatch: pytest.MonkeyPatch) -> PaystackClient:
    monkeypatch.setattr(AbstractAPIClient, "_BASE_URL", sandbox_url)
    return PaystackClient(secret_key=SECRET)


def parsed(response: Any, model: type[Any]) -> Any:
    """The answer's data as the library's model, or a failure saying what did not parse."""
    assert response.status_code == 200, (response.message, response.raw)
    data = response.data
    items = data if isinstance(data, list) else [data]
    assert data is not None and all(isinstance(item, model) for item in items), response.raw
    return data


def test_the_library_parses_every_answer_it_gets(
    library: PaystackClient, http: httpx.Client
) -> None:
    made = parsed(
        library.transactions.initialize(amount=AMOUNT, email="ada@example.com", reference="lib-1"),
        InitTransaction,
    )
    assert made.reference == "lib-1" and made.authorization_url.startswith("http")
    assert http.post("/_sandbox/transactions/lib-1/pay", json={"outcome": "success"}).is_success

    verified = parsed(library.transactions.verify(reference="lib-1"), Transaction)
    assert (verified.status, verified.amount, verified.reference) == ("success", AMOUNT, "lib-1")
    [listed] = parsed(library.transactions.get_transactions(), Transaction)
    assert listed.id == verified.id
    fetched = parsed(library.transactions.get_transaction(verified.id), Transaction)
    assert fetched.reference == "lib-1"
    totals = parsed(library.transactions.totals(), TransactionTotal)
    assert totals.total_transactions == 1 and totals.total_volume == AMOUNT
    timeline = parsed(library.transactions.get_timeline("lib-1"), TransactionLog)
    assert timeline.success and timeline.attempts >= 1

    refund = parsed(library.refunds.create(transaction="lib-1", amount=10_000), Refund)
    assert (refund.amount, refund.status) == (10_000, "pending")
    [listed_refund] = parsed(library.refunds.get_refunds(), Refund)
    assert listed_refund.id == refund.id
    assert parsed(library.refunds.get_refund(refund.id), Refund).amount == 10_000

    opened = http.post("/_sandbox/disputes", json={"transaction": "lib-1"}).json()["data"]
    [dispute] = parsed(
        library.disputes.get_disputes(start_date="2020-01-01", end_date="2100-01-01"), Dispute
    )
    assert dispute.id == opened["id"]
    assert parsed(library.disputes.get_dispute(dispute.id), Dispute).id == dispute.id
    assert parsed(library.disputes.get_transaction_disputes(verified.id), Dispute).id == dispute.id
