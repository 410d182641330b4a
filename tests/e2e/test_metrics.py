"""Prometheus metrics: the API's own, and the Temporal SDK's from a worker process."""

from __future__ import annotations

import sys
import uuid

import httpx

from devstack.processes import Service, free_port, wait_for_http
from tests.helpers import (
    charge_success,
    create_invoice,
    eventually,
    pay,
    post_webhook,
    wait_for_status,
)
from tests.stack import Stack, another_api


async def test_api_metrics_count_requests_webhooks_and_transitions(
    stack: Stack, api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    invoice = await create_invoice(api)
    await pay(sandbox, invoice["id"])
    await wait_for_status(api, invoice["id"], "paid")
    await post_webhook(stack, charge_success(f"inv-{uuid.uuid4().hex[:24]}"))

    text = (await api.get("/metrics")).text

    assert 'payrecon_http_requests_total{method="POST",route="/invoices",status="201"}' in text
    assert 'route="/invoices/{invoice_id}"' in text
    assert 'payrecon_webhook_deliveries_total{outcome="unknown_reference"}' in text
    assert 'payrecon_invoice_transitions_total{status="paid"}' in text
    assert 'payrecon_invoices{status="paid"}' in text
    assert "payrecon_http_request_duration_seconds_bucket" in text
    assert 'payrecon_webhook_relays_total{outcome="signalled"}' in text
    assert "payrecon_webhook_deliveries_queued " in text
    assert 'payrecon_webhook_endpoints{state="disabled"}' in text


async def test_a_method_the_client_chooses_is_one_label_not_one_per_method(
    api: httpx.AsyncClient,
) -> None:
    # Methods HTTP parsers know but payrecon never serves: each would have been a label.
    chosen = ["PROPFIND", "LOCK", "PURGE", "MKCOL"]
    for method in chosen:
        await api.request(method, "/healthz")

    text = (await api.get("/metrics")).text

    labels = [line for line in text.splitlines() if line.startswith("payrecon_http_requests")]
    assert not any(f'method="{method}"' in line for method in chosen for line in labels)
    assert any('method="OTHER"' in line for line in labels), labels


async def test_every_answer_carries_a_request_id(api: httpx.AsyncClient) -> None:
    given = await api.get("/healthz", headers={"x-request-id": "trace-42"})
    made = await api.get("/invoices/inv-000000000000000000000000")

    assert given.headers["x-request-id"] == "trace-42"
    assert made.status_code == 404 and len(made.headers["x-request-id"]) == 32
    text = (await api.get("/metrics")).text
    assert (
        'payrecon_http_requests_total{method="GET",route="/invoices/{invoice_id}",status="404"}'
        in text
    )


async def test_worker_serves_temporal_sdk_metrics(stack: Stack) -> None:
    address = f"127.0.0.1:{free_port()}"
    queue = f"payrecon-metrics-{uuid.uuid4().hex[:8]}"
    worker = Service(
        "worker-metrics",
        [sys.executable, "worker.py"],
        env={
            **stack.env,
            "PAYRECON_WORKER_METRICS_ADDRESS": address,
            "TEMPORAL_TASK_QUEUE": queue,
            "TEMPORAL_PAYSTACK_TASK_QUEUE": f"{queue}-paystack",
        },
        log_path=stack.data_dir / "worker-metrics.log",
    ).start()
    try:
        wait_for_http(f"http://{address}/metrics", process=worker.process)
        async with httpx.AsyncClient() as client:

            async def polling_metrics() -> None:
                text = (await client.get(f"http://{address}/metrics")).text
                assert "temporal_" in text
                # The pollers of both task queues report once they have started.
                assert f'task_queue="{queue}"' in text, text[-2000:]
                assert f'task_queue="{queue}-paystack"' in text

            await eventually(polling_metrics, within=20)
    finally:
        worker.stop()


def metrics_total(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


async def test_metrics_are_for_this_machine_unless_a_key_is_set(stack: Stack) -> None:
    behind_proxy = {
        "PAYRECON_TRUSTED_PROXY_HEADER": "X-Forwarded-For",
        "PAYRECON_TRUSTED_PROXIES": "127.0.0.0/8",  # the test client stands in for the proxy
    }
    with another_api(stack, "api-metrics-local", **behind_proxy) as local:
        async with httpx.AsyncClient(base_url=local.api_url) as client:
            here = await client.get("/metrics")
            outside = await client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert here.status_code == 200 and "payrecon_invoices" in here.text
    assert outside.status_code == 403 and "this machine only" in outside.json()["detail"]

    key = "m" * 40
    with another_api(stack, "api-metrics-key", PAYRECON_METRICS_KEY=key) as keyed:
        async with httpx.AsyncClient(base_url=keyed.api_url) as client:
            without = await client.get("/metrics")
            wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
            right = await client.get("/metrics", headers={"Authorization": f"Bearer {key}"})
    assert without.status_code == wrong.status_code == 401
    assert right.status_code == 200 and "payrecon_invoices" in right.text


async def test_a_scrape_reads_the_database_at_most_once_a_period(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    with another_api(stack, "api-metrics-cached", PAYRECON_METRICS_REFRESH_SECONDS="3600") as one:
        async with httpx.AsyncClient(base_url=one.api_url) as client:
            first = metrics_total((await client.get("/metrics")).text, "payrecon_invoices{")
            await create_invoice(api)
            scrapes = [(await client.get("/metrics")).text for _ in range(5)]
    # Within the period every scrape answers what the first read: no new query.
    assert all(metrics_total(text, "payrecon_invoices{") == first for text in scrapes)


async def test_the_docs_can_be_turned_off(stack: Stack) -> None:
    with another_api(stack, "api-no-docs", PAYRECON_DOCS="false") as quiet:
        async with httpx.AsyncClient(base_url=quiet.api_url) as client:
            for path in ("/docs", "/redoc", "/openapi.json"):
                assert (await client.get(path)).status_code == 404, path
            assert (await client.get("/healthz")).status_code == 200
