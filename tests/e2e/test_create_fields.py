"""POST /invoices' optional `success_url`, `cancel_url` and `send_invoice_email`: kept with
the invoice, shown wherever it is, and part of what makes a repeat a repeat."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.helpers import INVOICE, create_invoice

URLS = {
    "success_url": "https://shop.example/orders/1042/paid?via=paystack",
    "cancel_url": "http://localhost:3000/orders/1042",
}


async def test_the_urls_and_the_email_choice_are_kept_and_shown(api: httpx.AsyncClient) -> None:
    key = f"order-{uuid.uuid4()}"
    created = await create_invoice(
        api, idempotency_key=key, due_in_seconds=600, send_invoice_email=True, **URLS
    )
    plain = await create_invoice(api, due_in_seconds=600)

    for shown in [created, (await api.get(f"/invoices/{created['id']}")).json()]:
        assert {name: shown[name] for name in URLS} == URLS
        assert shown["send_invoice_email"] is True
    assert (plain["success_url"], plain["cancel_url"], plain["send_invoice_email"]) == (
        None,
        None,
        False,
    )
    listed = (await api.get("/invoices", params={"idempotency_key": key})).json()["items"]
    assert [(item["id"], item["success_url"]) for item in listed] == [
        (created["id"], URLS["success_url"])
    ]


async def test_the_new_fields_are_part_of_the_body_a_repeat_must_match(
    api: httpx.AsyncClient,
) -> None:
    key = f"order-{uuid.uuid4()}"
    body: dict[str, Any] = {**INVOICE, "due_in_seconds": 600, **URLS}
    headers = {"Idempotency-Key": key}
    first = await api.post("/invoices", json=body, headers=headers)
    assert first.status_code == 201, first.text

    # Saying the default out loud is the same body.
    same = await api.post("/invoices", json={**body, "send_invoice_email": False}, headers=headers)
    assert same.status_code == 200 and same.json()["id"] == first.json()["id"]
    changes: list[dict[str, Any]] = [
        {"success_url": "https://shop.example/elsewhere"},
        {"cancel_url": None},
        {"send_invoice_email": True},
    ]
    for changed in changes:
        other = await api.post("/invoices", json={**body, **changed}, headers=headers)
        assert other.status_code == 409, (changed, other.text)


async def test_urls_that_are_not_http_are_422s_naming_the_field(api: httpx.AsyncClient) -> None:
    for name, value, words in [
        ("success_url", "ftp://shop.example/paid", "http"),
        ("cancel_url", "/orders/1042", "URL"),
        ("success_url", "javascript:alert(1)", "http"),
        ("cancel_url", "https://shop.example/" + "a" * 2048, "2048"),
        ("success_url", 42, "string"),
    ]:
        response = await api.post("/invoices", json={**INVOICE, name: value})
        assert response.status_code == 422, response.text
        [problem] = response.json()["detail"]
        assert problem["loc"] == ["body", name] and words in problem["msg"], problem
    response = await api.post("/invoices", json={**INVOICE, "send_invoice_email": "yes"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "send_invoice_email"]
