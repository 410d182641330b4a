"""The OpenAPI document and the API's answers agree: for each route, bad input of each kind
gets a status the document lists for that route, and the errors say what is wrong."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from paystack.signature import SIGNATURE_HEADER, sign
from tests.helpers import INVOICE
from tests.stack import API_KEY, SECRET_KEY, Stack

UNREADABLE = b'{"customer_email": "ada@example.com", "amount": '


@pytest.fixture(scope="module")
async def document(stack: Stack) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=stack.api_url) as client:
        schema: dict[str, Any] = (await client.get("/openapi.json")).json()
    return schema


def documented(document: dict[str, Any], method: str, path: str) -> set[int]:
    return {int(code) for code in document["paths"][path][method]["responses"]}


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]


def concrete(path: str) -> str:
    return path.replace("{invoice_id}", "inv-000000000000000000000000")


async def answer(
    stack: Stack, method: str, path: str, body: bytes | None = None, *, key: bool = True
) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {API_KEY}"
    if path == "/webhooks/paystack" and body is not None:
        headers[SIGNATURE_HEADER] = sign(body, SECRET_KEY)
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as client:
        return await client.request(method, concrete(path), content=body, headers=headers)


async def test_unreadable_json_is_a_documented_400_on_every_route_with_a_body(
    stack: Stack, document: dict[str, Any]
) -> None:
    with_body = [(m, p) for m, p, operation in operations(document) if "requestBody" in operation]
    assert ("post", "/invoices") in with_body and ("post", "/webhooks/paystack") in with_body
    for method, path in with_body:
        response = await answer(stack, method, path, UNREADABLE)
        assert response.status_code == 400, (path, response.text)
        assert 400 in documented(document, method, path), path
        assert "JSON" in response.json()["detail"], (path, response.text)


async def test_a_missing_api_key_is_a_documented_401(
    stack: Stack, document: dict[str, Any]
) -> None:
    protected = [(m, p) for m, p, _ in operations(document) if p.startswith("/invoices")]
    assert len(protected) >= 4
    for method, path in protected:
        response = await answer(stack, method, path, b"{}", key=False)
        assert response.status_code == 401, (path, response.text)
        assert 401 in documented(document, method, path), path


async def test_invalid_values_are_a_documented_422_naming_the_field_and_unit(
    stack: Stack, document: dict[str, Any]
) -> None:
    for currency, amount, unit in [("NGN", 100, "5000 kobo"), ("GHS", 5, "10 pesewas")]:
        body = httpx.Request(
            "POST", "/", json={**INVOICE, "currency": currency, "amount": amount}
        ).content
        response = await answer(stack, "post", "/invoices", body)
        assert response.status_code == 422 and 422 in documented(document, "post", "/invoices")
        [error] = response.json()["detail"]
        assert error["loc"] == ["body", "amount"] and unit in error["msg"], error
    bad_id = await answer(stack, "get", "/invoices/{invoice_id}".replace("{invoice_id}", "x!"))
    assert bad_id.status_code == 422
    assert 422 in documented(document, "get", "/invoices/{invoice_id}")


async def test_every_documented_error_answer_has_the_error_shape(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        for code, response in operation["responses"].items():
            if int(code) < 400:
                continue
            schema = response["content"]["application/json"]["schema"]
            assert "$ref" in schema, (method, path, code)
