"""Callers are named by their API keys: each has its own Idempotency-Key space and sees
only its own invoices; an operator's key sees every one."""

from __future__ import annotations

import hashlib
import uuid

import httpx

from api.routers.invoices import invoice_id_for
from db import queries
from tests.helpers import INVOICE
from tests.stack import API_KEY, Stack, another_api


async def _create(client: httpx.AsyncClient, key: str) -> httpx.Response:
    return await client.post(
        "/invoices", json={**INVOICE, "due_in_seconds": 600}, headers={"Idempotency-Key": key}
    )


async def test_one_idempotency_key_names_one_invoice_per_caller(
    stack: Stack, api: httpx.AsyncClient, shop: httpx.AsyncClient
) -> None:
    key = f"order-{uuid.uuid4()}"
    ours, theirs = await _create(api, key), await _create(shop, key)

    assert ours.status_code == theirs.status_code == 201, (ours.text, theirs.text)
    assert ours.json()["id"] != theirs.json()["id"]
    # Keyed with the codec key: not the plain hash of the key anybody could work out.
    assert ours.json()["id"] == invoice_id_for("default", key, stack.settings.codec_keys)
    assert ours.json()["id"] != f"inv-{hashlib.sha256(key.encode()).hexdigest()[:24]}"
    mine = queries.get_invoice(stack.engine, ours.json()["id"])
    other = queries.get_invoice(stack.engine, theirs.json()["id"])
    assert mine is not None and other is not None
    assert (mine.caller, other.caller) == ("default", "shop")
    again = await _create(shop, key)
    assert again.status_code == 200 and again.json()["id"] == theirs.json()["id"]


async def test_a_caller_sees_and_cancels_only_its_own_invoices(
    api: httpx.AsyncClient, shop: httpx.AsyncClient, operator: httpx.AsyncClient
) -> None:
    created = await _create(api, f"order-{uuid.uuid4()}")
    invoice_id = created.json()["id"]

    read = await shop.get(f"/invoices/{invoice_id}")
    cancel = await shop.post(f"/invoices/{invoice_id}/cancel")
    assert read.status_code == cancel.status_code == 404
    assert read.json() == {"detail": f"no invoice {invoice_id}"}
    listed = (await shop.get("/invoices", params={"limit": 200})).json()
    assert invoice_id not in {item["id"] for item in listed["items"]}
    assert (await api.get(f"/invoices/{invoice_id}")).json()["status"] == "pending"

    seen = (await operator.get("/invoices", params={"limit": 200})).json()
    assert seen["total"] > listed["total"] and invoice_id in {i["id"] for i in seen["items"]}
    assert (await operator.get(f"/invoices/{invoice_id}")).status_code == 200
    cancelled = await operator.post(f"/invoices/{invoice_id}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"


async def test_a_rotated_key_keeps_its_callers_invoices(
    stack: Stack, shop: httpx.AsyncClient
) -> None:
    key = f"order-{uuid.uuid4()}"
    created = await _create(shop, key)
    rotated_key = f"rotated-{uuid.uuid4().hex}"
    with another_api(
        stack, "api-rotated", PAYRECON_API_KEYS=f"{API_KEY},shop:{rotated_key}"
    ) as rotated:
        headers = {"Authorization": f"Bearer {rotated_key}"}
        async with httpx.AsyncClient(base_url=rotated.api_url, headers=headers) as client:
            read = await client.get(f"/invoices/{created.json()['id']}")
            again = await _create(client, key)
    assert read.status_code == 200
    assert again.status_code == 200 and again.json()["id"] == created.json()["id"]
