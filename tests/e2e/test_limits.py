"""Limits per caller: a request rate on the authenticated routes (429 with Retry-After,
never on Paystack's webhooks), and a cap on webhook endpoints (409 naming it)."""

from __future__ import annotations

import re

import httpx

from tests.helpers import api_client, charge_success, post_webhook
from tests.stack import API_KEY, OTHER_CALLER_KEY, Stack, another_api


async def test_a_caller_over_its_rate_is_answered_429_and_webhooks_never_are(
    stack: Stack,
) -> None:
    with another_api(stack, "api-rate-limited", PAYRECON_CALLER_RATE_LIMIT="2") as limited:
        async with api_client(limited.api_url, API_KEY) as api:
            answers = [await api.get("/invoices", params={"limit": 1}) for _ in range(10)]
            # A burst of twice the rate passes; then one a second.
            assert [a.status_code for a in answers[:4]] == [200] * 4
            refused = [a for a in answers if a.status_code == 429]
            assert refused, [a.status_code for a in answers]
            assert int(refused[0].headers["Retry-After"]) >= 1
            assert "PAYRECON_CALLER_RATE_LIMIT" in refused[0].json()["detail"]
        # Each caller has a bucket of its own.
        async with api_client(limited.api_url, OTHER_CALLER_KEY) as shop:
            assert (await shop.get("/invoices", params={"limit": 1})).status_code == 200
        # Paystack's webhooks are never counted.
        for _ in range(10):
            answered = await post_webhook(limited, charge_success("inv-nobody"))
            assert answered.status_code == 200
        async with httpx.AsyncClient(base_url=limited.api_url) as local:
            metrics = (await local.get("/metrics")).text
        counted = re.search(
            r'^payrecon_api_rate_limited_total\{caller="default"\} (\S+)$', metrics, re.M
        )
        assert counted is not None and float(counted[1]) == len(refused)
        assert 'payrecon_limit{limit="caller_rate"} 2.0' in metrics


async def test_one_endpoint_past_the_cap_is_a_409_naming_it(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    have = (await api.get("/webhook-endpoints", params={"limit": 1})).json()["total"]
    cap = str(have + 1)
    with another_api(stack, "api-endpoint-cap", PAYRECON_MAX_ENDPOINTS_PER_CALLER=cap) as capped:
        async with api_client(capped.api_url, API_KEY) as client:
            body = {"url": "http://127.0.0.1:9/hooks"}
            made = await client.post("/webhook-endpoints", json=body)
            assert made.status_code == 201, made.text
            try:
                refused = await client.post("/webhook-endpoints", json=body)
                assert refused.status_code == 409
                assert "PAYRECON_MAX_ENDPOINTS_PER_CALLER" in refused.json()["detail"]
                listed = await client.get("/webhook-endpoints", params={"limit": 1})
                assert listed.json()["total"] == have + 1
            finally:
                await client.delete(f"/webhook-endpoints/{made.json()['id']}")
