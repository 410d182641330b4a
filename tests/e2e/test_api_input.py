"""Bad input gets a clear 4xx JSON answer and changes nothing."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlmodel import Session, func, select

from db.models import Invoice
from tests.helpers import (
    INVOICE,
    answer_before_the_body_ends,
    charge_success,
    create_invoice,
    post_webhook,
)
from tests.stack import API_KEY, Stack


def invoice_count(stack: Stack) -> int:
    with Session(stack.engine) as session:
        return session.exec(select(func.count()).select_from(Invoice)).one()


async def test_missing_or_wrong_api_key_is_401(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.api_url) as anonymous:
        missing = await anonymous.post("/invoices", json=INVOICE)
        wrong = await anonymous.get("/invoices", headers={"Authorization": "Bearer nope"})
        basic = await anonymous.get("/invoices", headers={"Authorization": "Basic dXNlcjpwdw=="})
    for response in (missing, wrong, basic):
        assert response.status_code == 401
        assert "API key" in response.json()["detail"]
    assert missing.headers["www-authenticate"] == "Bearer"


def nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount": "250000"}, "amount"),
        ({"amount": 2500.5}, "amount"),
        ({"amount": 0}, "amount"),
        ({"amount": 10**13}, "amount"),
        ({"amount": 100}, "at least 5000"),
        ({"currency": "EUR"}, "currency"),
        ({"customer_email": "not-an-email"}, "customer_email"),
        ({"due_in_seconds": 0}, "due_in_seconds"),
        ({"due_in_seconds": 10, "due_at": "2099-01-01T00:00:00Z"}, "not both"),
        ({"due_at": "2001-01-01T00:00:00Z"}, "in the future"),
        ({"due_at": "2099-01-01T00:00:00"}, "due_at"),
        ({"colour": "blue"}, "colour"),
        ({"metadata": {"blob": "x" * 5000}}, "metadata"),
        ({"metadata": {"x": float("nan")}}, "finite numbers only"),
        ({"metadata": {"x": [1, float("inf")]}}, "finite numbers only"),
        ({"metadata": nested(300)}, "nest deeper than 10 levels"),
    ],
)
async def test_invalid_invoice_is_422_naming_the_field(
    stack: Stack, api: httpx.AsyncClient, change: dict[str, Any], field: str
) -> None:
    before = invoice_count(stack)
    # As JSON text that Python writes (NaN and Infinity included), which httpx refuses to.
    body = json.dumps({**INVOICE, **change}).encode()
    response = await api.post(
        "/invoices", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert field in response.text
    assert invoice_count(stack) == before


async def test_missing_fields_and_non_json_are_422(stack: Stack, api: httpx.AsyncClient) -> None:
    missing = await api.post("/invoices", json={"amount": 250000})
    assert missing.status_code == 422
    assert {tuple(error["loc"]) for error in missing.json()["detail"]} >= {
        ("body", "customer_email"),
        ("body", "currency"),
    }
    not_json = await api.post(
        "/invoices", content=b"amount=1", headers={"content-type": "text/plain"}
    )
    assert not_json.status_code == 422


async def test_a_body_nested_past_the_parser_is_400(stack: Stack, api: httpx.AsyncClient) -> None:
    before = invoice_count(stack)
    body = b'{"customer_email": "ada@example.com", "metadata": ' + b'{"a": ' * 5000 + b"1"
    body += b"}" * 5001
    response = await api.post(
        "/invoices", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400 and "parsing the body" in response.json()["detail"]
    assert invoice_count(stack) == before


async def test_bad_idempotency_key_is_422(api: httpx.AsyncClient) -> None:
    response = await api.post("/invoices", json=INVOICE, headers={"Idempotency-Key": "a b"})
    assert response.status_code == 422
    assert "idempotency-key" in response.text.lower()


async def test_unknown_and_malformed_ids(api: httpx.AsyncClient) -> None:
    unknown = await api.get("/invoices/inv-000000000000000000000000")
    assert unknown.status_code == 404
    assert "no invoice" in unknown.json()["detail"]
    malformed = await api.get("/invoices/bad_id!")
    assert malformed.status_code == 422


async def test_list_filters_and_pages(api: httpx.AsyncClient) -> None:
    first = await create_invoice(api, due_in_seconds=600, customer_email="list@example.com")
    second = await create_invoice(api, due_in_seconds=600, customer_email="list@example.com")

    page = (await api.get("/invoices", params={"status": "pending", "limit": 2})).json()
    assert page["limit"] == 2 and page["offset"] == 0 and page["total"] >= 2
    assert [item["id"] for item in page["items"]] == [second["id"], first["id"]]
    assert all(item["status"] == "pending" for item in page["items"])

    bad_status = await api.get("/invoices", params={"status": "lost"})
    assert bad_status.status_code == 422
    bad_limit = await api.get("/invoices", params={"limit": 0})
    assert bad_limit.status_code == 422


async def test_health_and_readiness(api: httpx.AsyncClient) -> None:
    assert (await api.get("/healthz")).json() == {"status": "ok"}
    ready = await api.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "database": True, "temporal": True}


async def test_openapi_documents_every_route(api: httpx.AsyncClient) -> None:
    paths = (await api.get("/openapi.json")).json()["paths"]
    assert set(paths) >= {
        "/invoices",
        "/invoices/{invoice_id}",
        "/invoices/{invoice_id}/cancel",
        "/webhooks/paystack",
        "/healthz",
        "/readyz",
    }


async def test_without_a_key_nothing_of_the_body_is_read(stack: Stack) -> None:
    # A body that does not parse, never finished: the answer is about the key, and comes
    # before the body ends.
    status, answer = await answer_before_the_body_ends(
        stack, "/invoices", {"Content-Type": "application/json"}, b'{"amount": ' + b"9" * 1000
    )
    assert status == 401 and "API key" in answer["detail"]


async def test_a_body_over_64_kib_is_refused_as_it_streams(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    before = invoice_count(stack)
    declared = await api.post("/invoices", json={**INVOICE, "description": "x" * (64 * 1024)})
    assert declared.status_code == 413 and "64 KiB" in declared.json()["detail"]
    status, answer = await answer_before_the_body_ends(
        stack,
        "/invoices",
        {"Content-Type": "application/json", "Authorization": f"Bearer {API_KEY}"},
        b'{"description": "' + b"x" * (65 * 1024),
    )
    assert status == 413 and "64 KiB" in answer["detail"]
    assert invoice_count(stack) == before


# A lone UTF-16 surrogate, as JSON spells it: it parses, yet is no text.
LONE_SURROGATE = "\\ud800"


async def test_a_lone_surrogate_anywhere_is_a_400_that_changes_nothing(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    before = invoice_count(stack)
    # Where it would validate (and fail only once stored), and where it would not.
    for field, value in (("description", "x"), ("currency", "x")):
        body = json.dumps({**INVOICE, field: value}).replace('"x"', f'"{LONE_SURROGATE}"')
        response = await api.post(
            "/invoices", content=body.encode(), headers={"content-type": "application/json"}
        )
        assert response.status_code == 400, response.text
        assert "surrogate" in response.json()["detail"]
    # A pair is text (an emoji), and a written-out backslash is no escape at all.
    for text in ("\\ud83d\\ude00", "\\\\ud800"):
        body = json.dumps({**INVOICE, "description": "x"}).replace('"x"', f'"{text}"')
        response = await api.post(
            "/invoices", content=body.encode(), headers={"content-type": "application/json"}
        )
        assert response.status_code == 201, response.text
    assert invoice_count(stack) == before + 2
    # In a signed webhook's reference.
    webhook = json.dumps(charge_success("x")).replace('"x"', f'"{LONE_SURROGATE}"').encode()
    answered = await post_webhook(stack, webhook)
    assert answered.status_code == 400 and "surrogate" in answered.json()["detail"]
