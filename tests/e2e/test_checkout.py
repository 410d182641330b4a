"""Verify-now and the checkout return, end to end: the customer comes back from checkout,
payrecon asks Paystack at once, and sends them only to the invoice's own URLs."""

from __future__ import annotations

import math
import time
from urllib.parse import urlsplit

import httpx

from tests.helpers import (
    create_invoice,
    keep_history,
    pay,
    provider_calls,
    set_webhooks,
    wait_for_status,
)
from tests.stack import Stack
from workflows.policies import VERIFY_NOW_INTERVAL
from workflows.types import workflow_id_for

SUCCESS = "https://shop.example/thanks"
CANCEL = "https://shop.example/cart"


async def returned(stack: Stack, reference: str) -> httpx.Response:
    """The customer's browser at the checkout return: no API key, no redirect followed."""
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as browser:
        response = await browser.get("/checkout/return", params={"reference": reference})
    location = response.headers.get("location")
    assert location in (None, SUCCESS, CANCEL), location  # never anywhere else
    return response


async def test_verify_now_finds_a_payment_whose_webhook_never_came(
    stack: Stack,
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    shop: httpx.AsyncClient,
) -> None:
    invoice = await create_invoice(api, due_in_seconds=3600)
    await set_webhooks(sandbox, False)
    try:
        await pay(sandbox, invoice["id"])
        verified = await api.post(f"/invoices/{invoice['id']}/verify")
    finally:
        await set_webhooks(sandbox, True)
    assert verified.status_code == 200, verified.text
    assert verified.json()["status"] == "paid" and verified.json()["revision"] == 2
    # Within 2 s of Paystack's answer, that answer stands: no second call.
    calls = (await provider_calls(sandbox, invoice["id"]))["verify"]
    again = await api.post(f"/invoices/{invoice['id']}/verify")
    assert again.status_code == 200 and again.json() == verified.json()
    assert (await provider_calls(sandbox, invoice["id"]))["verify"] == calls
    workflow = stack.temporal.get_workflow_handle(workflow_id_for(invoice["id"]))
    await keep_history(await workflow.fetch_history(), "verified_now")

    # Another caller's invoice is as unknown as none; and bad ids are refused.
    assert (await shop.post(f"/invoices/{invoice['id']}/verify")).status_code == 404
    unknown = await api.post("/invoices/inv-000000000000000000000000/verify")
    assert unknown.status_code == 404 and unknown.json()["detail"]
    assert (await api.post("/invoices/not.an.id/verify")).status_code == 422


async def test_verify_now_reaches_a_completed_invoice(api: httpx.AsyncClient) -> None:
    invoice = await create_invoice(api)
    cancelled = await api.post(f"/invoices/{invoice['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    verified = await api.post(f"/invoices/{invoice['id']}/verify")
    assert verified.status_code == 200, verified.text
    assert verified.json()["status"] == "cancelled"
    assert verified.json()["revision"] == cancelled.json()["revision"]


async def test_the_checkout_return_sends_the_customer_to_the_invoices_own_urls(
    stack: Stack, api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    invoice = await create_invoice(api, success_url=SUCCESS, cancel_url=CANCEL)
    # Back from checkout without paying: Paystack says abandoned.
    unpaid = await returned(stack, invoice["id"])
    assert unpaid.status_code == 303 and unpaid.headers["location"] == CANCEL
    await pay(sandbox, invoice["id"])
    paid = await returned(stack, invoice["id"])
    assert paid.status_code == 303 and paid.headers["location"] == SUCCESS
    await wait_for_status(api, invoice["id"], "paid")


async def test_without_urls_or_for_a_stranger_the_return_is_a_status_page(
    stack: Stack, api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    plain = await create_invoice(api)
    await pay(sandbox, plain["id"])
    page = await returned(stack, plain["id"])
    assert page.status_code == 200 and "location" not in page.headers
    assert "Payment received" in page.text

    unknown = await returned(stack, "inv-000000000000000000000000")
    assert unknown.status_code == 200 and "location" not in unknown.headers
    assert "could not find" in unknown.text
    for bad in ("../x", "a" * 200, ""):
        answer = await returned(stack, bad)
        assert answer.status_code == 422 and answer.json()["detail"], bad


async def test_the_customers_journey_through_checkout_ends_at_success_url(
    stack: Stack, api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    invoice = await create_invoice(api, success_url=SUCCESS, cancel_url=CANCEL)
    checkout = urlsplit(invoice["authorization_url"])
    async with httpx.AsyncClient(timeout=30) as browser:
        page = await browser.get(invoice["authorization_url"])
        assert page.status_code == 200
        # The customer presses Pay; Paystack sends them to our callback URL.
        paid = await browser.post(f"{checkout.scheme}://{checkout.netloc}{checkout.path}/pay")
        assert paid.status_code == 303
        back = urlsplit(paid.headers["location"])
        assert f"{back.scheme}://{back.netloc}" == stack.api_url
        assert back.path == "/checkout/return"
        onward = await browser.get(paid.headers["location"])
    assert onward.status_code == 303 and onward.headers["location"] == SUCCESS


async def test_the_return_answers_a_decided_invoice_from_its_record_and_throttles_the_rest(
    stack: Stack, api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    # Anyone can ask this route (it needs no key): a completed invoice is answered from its
    # record, asking neither Paystack nor Temporal; its workflow is never woken.
    decided = await create_invoice(api, success_url=SUCCESS, cancel_url=CANCEL)
    assert (await api.post(f"/invoices/{decided['id']}/cancel")).status_code == 200
    workflow = stack.temporal.get_workflow_handle(workflow_id_for(decided["id"]))
    await workflow.result()
    run = (await workflow.describe()).run_id
    verifies = (await provider_calls(sandbox, decided["id"]))["verify"]
    for _ in range(5):
        answer = await returned(stack, decided["id"])
        assert answer.status_code == 303 and answer.headers["location"] == CANCEL
    assert (await provider_calls(sandbox, decided["id"]))["verify"] == verifies
    assert (await workflow.describe()).run_id == run

    # A pending one's open workflow asks Paystack at most once a VERIFY_NOW_INTERVAL,
    # however fast the returns come.
    pending = await create_invoice(api, success_url=SUCCESS, cancel_url=CANCEL)
    before = (await provider_calls(sandbox, pending["id"]))["verify"]
    started = time.monotonic()
    for _ in range(10):
        assert (await returned(stack, pending["id"])).headers["location"] == CANCEL
    periods = (time.monotonic() - started) / VERIFY_NOW_INTERVAL.total_seconds()
    made = (await provider_calls(sandbox, pending["id"]))["verify"] - before
    assert 1 <= made <= math.floor(periods) + 1
