"""With Temporal unreachable the API says so (503), keeps every webhook it was sent, and
creates nothing; Paystack retries the delivery later."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from devstack.processes import free_port
from tests.conftest import API_KEY, Stack, another_api
from tests.helpers import INVOICE, charge_success, deliveries, post_webhook


@pytest.fixture(scope="module")
def api_without_temporal(stack: Stack) -> Iterator[Stack]:
    with another_api(
        stack,
        "api-no-temporal",
        TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}",
        PAYRECON_CREATE_TIMEOUT_SECONDS="3",
    ) as api:
        yield api


async def test_webhook_is_recorded_and_answered_503(api_without_temporal: Stack) -> None:
    reference = f"inv-{uuid.uuid4().hex[:24]}"
    response = await post_webhook(api_without_temporal, charge_success(reference))

    assert response.status_code == 503
    assert response.json() == {"outcome": "temporal_unavailable"}
    [delivery] = deliveries(api_without_temporal, reference)
    assert delivery.outcome == "temporal_unavailable"


async def test_create_and_cancel_answer_503_and_readyz_says_why(
    api_without_temporal: Stack,
) -> None:
    async with httpx.AsyncClient(
        base_url=api_without_temporal.api_url,
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=30,
    ) as client:
        created = await client.post("/invoices", json=INVOICE)
        cancelled = await client.post("/invoices/inv-000000000000000000000000/cancel")
        ready = await client.get("/readyz")

    assert created.status_code == 503
    assert "retry" in created.json()["detail"]
    assert cancelled.status_code == 503
    assert ready.status_code == 503
    assert ready.json() == {"status": "not_ready", "database": True, "temporal": False}
