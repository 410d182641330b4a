"""`make demo`: against a running `make run`, create an invoice, pay it in the sandbox
and watch it move from pending to paid."""

from __future__ import annotations

import os
import sys
import time
import uuid
from typing import Any

import httpx
from tenacity import Retrying, retry_if_result, stop_after_delay, wait_fixed

from config import get_settings
from sandbox.controls import pay_path


def main() -> int:
    settings = get_settings()
    api_url = os.environ.get("PAYRECON_API_URL", "http://127.0.0.1:8000")
    sandbox_url = os.environ.get("SANDBOX_URL", "http://127.0.0.1:8100")
    api_key = settings.payrecon_api_keys[0].key.get_secret_value()
    api = httpx.Client(base_url=api_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=30)
    sandbox = httpx.Client(base_url=sandbox_url, timeout=30)
    started = time.monotonic()

    def say(message: str) -> None:
        print(f"[{time.monotonic() - started:6.2f}s] {message}", flush=True)

    try:
        response = api.post(
            "/invoices",
            json={
                "customer_email": "ada@example.com",
                "amount": 250000,
                "currency": "NGN",
                "description": "payrecon demo",
            },
            headers={"Idempotency-Key": f"demo-{uuid.uuid4()}"},
        )
    except httpx.TransportError:
        print(f"No API at {api_url}: start the stack with `make run` first.", file=sys.stderr)
        return 1
    if response.status_code != 201:
        print(f"create failed: {response.status_code} {response.text}", file=sys.stderr)
        return 1
    invoice = response.json()
    say(f"created {invoice['id']}: {invoice['status']}, NGN {invoice['amount'] / 100:,.2f}")
    say(f"payment link: {invoice['authorization_url']}")

    paid = sandbox.post(pay_path(invoice["id"]), json={"outcome": "success"})
    paid.raise_for_status()
    say("the customer paid in the sandbox; Paystack sends charge.success")

    seen = [invoice["status"]]

    def current() -> dict[str, Any]:
        now: dict[str, Any] = api.get(f"/invoices/{invoice['id']}").json()
        if now["status"] != seen[-1]:
            say(f"status: {seen[-1]} -> {now['status']}")
            seen.append(now["status"])
        return now

    watch = Retrying(
        stop=stop_after_delay(60),
        wait=wait_fixed(0.05),
        retry=retry_if_result(lambda now: now["status"] != "paid"),
        retry_error_callback=lambda _: None,
    )
    paid_invoice = watch(current)
    if paid_invoice is None:
        say(f"still {seen[-1]} after 60 s")
        return 1
    say(
        f"paid {paid_invoice['amount_paid'] / 100:,.2f} at {paid_invoice['paid_at']}, "
        f"Paystack transaction {paid_invoice['paystack_transaction_id']}"
    )
    print(f"\nSee it in the Temporal UI: workflow invoice-{invoice['id']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
