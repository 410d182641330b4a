"""With Temporal unreachable the API says so where it must (create, cancel, readiness) and
still accepts webhooks: each is committed and relayed once Temporal answers again, by any
API process."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from devstack.processes import free_port
from tests.helpers import (
    INVOICE,
    charge_success,
    create_invoice,
    deliveries,
    eventually,
    post_webhook,
    signals_in_history,
)
from tests.stack import API_KEY, Stack, another_api


@pytest.fixture(scope="module")
def api_without_temporal(stack: Stack) -> Iterator[Stack]:
    with another_api(
        stack,
        "api-no-temporal",
        TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}",
        PAYRECON_CREATE_TIMEOUT_SECONDS="3",
        # It relays what it accepts itself, but leaves other rows to the stack's own API.
        PAYRECON_RELAY_SCAN_SECONDS="3600",
    ) as api:
        yield api


async def test_webhook_is_accepted_then_relayed_when_temporal_answers(
    stack: Stack, api: httpx.AsyncClient, api_without_temporal: Stack
) -> None:
    invoice = await create_invoice(api, due_in_seconds=600)

    response = await post_webhook(api_without_temporal, charge_success(invoice["id"]))
    assert response.status_code == 200
    assert response.json() == {"outcome": "queued"}

    def deferred() -> None:
        [delivery] = deliveries(stack, invoice["id"])
        assert delivery.outcome == "queued", delivery
        assert delivery.relay_attempts == 1 and delivery.detail == "temporal unavailable"

    await eventually(deferred)

    # The stack's API, which reaches Temporal, takes the delivery up once its retry is due.
    def relayed() -> None:
        [delivery] = deliveries(stack, invoice["id"])
        assert delivery.outcome == "signalled", delivery
        assert delivery.relay_after is None

    await eventually(relayed, within=15)
    # Signalled is the server's word that it took the signal; the history may show it only
    # once a workflow task open at the time completes.
    assert await signals_in_history(stack, invoice["id"], at_least=1) == ["payment_notified"]


async def test_with_ack_after_signal_a_webhook_gets_503_and_is_still_relayed(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    invoice = await create_invoice(api, due_in_seconds=600)
    event = charge_success(invoice["id"])
    with another_api(
        stack,
        "api-strict-no-temporal",
        TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}",
        PAYRECON_WEBHOOK_ACK="signalled",
        PAYRECON_RELAY_SCAN_SECONDS="3600",
    ) as strict:
        refused = await post_webhook(strict, event)
        # Paystack's retry finds the first delivery kept, so it is not queued twice.
        retried = await post_webhook(strict, event)

    assert refused.status_code == 503
    assert refused.json() == {"outcome": "temporal_unavailable"}
    assert retried.status_code == 200 and retried.json() == {"outcome": "duplicate"}

    def relayed() -> None:
        stored = deliveries(stack, invoice["id"])
        assert [(d.outcome, d.repeats) for d in stored] == [("signalled", 1)]

    await eventually(relayed, within=15)


async def test_with_ack_after_signal_a_webhook_answers_once_signalled(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    invoice = await create_invoice(api, due_in_seconds=600)
    with another_api(stack, "api-strict", PAYRECON_WEBHOOK_ACK="signalled") as strict:
        response = await post_webhook(strict, charge_success(invoice["id"]))

    assert response.status_code == 200 and response.json() == {"outcome": "signalled"}
    await eventually(lambda: _outcomes_are(stack, invoice["id"], ["signalled"]))


def _outcomes_are(stack: Stack, reference: str, expected: list[str]) -> None:
    assert [d.outcome for d in deliveries(stack, reference)] == expected


async def test_create_and_cancel_answer_503_and_readyz_says_why(
    api: httpx.AsyncClient, api_without_temporal: Stack
) -> None:
    invoice = await create_invoice(api, due_in_seconds=600)
    async with httpx.AsyncClient(
        base_url=api_without_temporal.api_url,
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=30,
    ) as client:
        created = await client.post("/invoices", json=INVOICE)
        cancelled = await client.post(f"/invoices/{invoice['id']}/cancel")
        unknown = await client.post("/invoices/inv-000000000000000000000000/cancel")
        ready = await client.get("/readyz")

    assert created.status_code == 503
    assert "retry" in created.json()["detail"]
    assert cancelled.status_code == 503
    # Its record says there is no such invoice: nothing to ask Temporal.
    assert unknown.status_code == 404
    assert ready.status_code == 503
    assert ready.json() == {"status": "not_ready", "database": True, "temporal": False}
