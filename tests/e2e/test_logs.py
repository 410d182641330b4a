"""No secret in any log line: a whole small run, in its own API and worker processes,
with every line they and the sandbox wrote searched afterwards."""

from __future__ import annotations

import json
import re
import sys
import uuid

import httpx

from devstack.processes import Service
from sandbox.controls import SandboxControls
from tests.helpers import INVOICE, charge_success, pay, post_webhook, wait_for_status
from tests.stack import API_KEY, SECRET_KEY, Stack, another_api

TEST_CARD = "4084084084084081"


async def test_a_whole_run_logs_no_secret_key_api_key_card_or_authorization_code(
    stack: Stack, sandbox: httpx.AsyncClient
) -> None:
    queue = f"payrecon-logscan-{uuid.uuid4().hex[:8]}"
    queues = {"TEMPORAL_TASK_QUEUE": queue, "TEMPORAL_PAYSTACK_TASK_QUEUE": f"{queue}-paystack"}
    worker_log = stack.data_dir / "worker-logscan.log"
    worker = Service(
        "worker-logscan",
        [sys.executable, "worker.py"],
        env={**stack.env, **queues},
        log_path=worker_log,
    ).start()
    try:
        with another_api(stack, "api-logscan", **queues) as logged:
            async with httpx.AsyncClient(
                base_url=logged.api_url, headers={"Authorization": f"Bearer {API_KEY}"}
            ) as api:
                created = await api.post("/invoices", json=INVOICE)
                assert created.status_code == 201, created.text
                invoice = created.json()
                await pay(sandbox, invoice["id"])
                await post_webhook(logged, charge_success(invoice["id"]))
                await wait_for_status(api, invoice["id"], "paid", within=15)
                await post_webhook(logged, charge_success(invoice["id"]), signature="bad")
                await api.get("/invoices", headers={"Authorization": "Bearer wrong-key"})
                cancelled = await api.post("/invoices", json={**INVOICE, "due_in_seconds": 600})
                await api.post(f"/invoices/{cancelled.json()['id']}/cancel")
            api_log = (stack.data_dir / "api-logscan.log").read_text()
    finally:
        worker.stop()

    transaction = await SandboxControls(sandbox).transaction(invoice["id"])
    assert transaction is not None
    authorization_code = transaction["transaction"]["authorization"]["authorization_code"]
    logs = {
        "api": api_log,
        "worker": worker_log.read_text(),
        "sandbox": (stack.data_dir / "sandbox.log").read_text(),
    }
    assert "paystack.verified" in logs["worker"] and "webhook.received" in logs["api"]
    assert "webhook.bad_signature" in logs["api"]
    json_lines = [line for line in logs["api"].splitlines() if line.startswith("{")]
    assert json_lines and all(json.loads(line) for line in json_lines)
    for name, text in logs.items():
        for secret in (SECRET_KEY, API_KEY, TEST_CARD, authorization_code):
            assert secret not in text, f"{secret[:8]}… found in the {name} log"
    # Nor any other key, authorization code or card: payrecon's own logs are redacted.
    for name in ("api", "worker"):
        leaked = re.search(
            r"sk_(?:test|live)_|\bAUTH_[A-Za-z0-9]|4084[ -]?0840[ -]?8408", logs[name]
        )
        assert leaked is None, f"{leaked and leaked.group()}… found in the {name} log"
