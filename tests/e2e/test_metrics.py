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
from tests.stack import Stack


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
