"""The sandbox's transactions over real HTTP, as Paystack answers them: initialize, verify,
list and fetch, and its call counters. Each test starts from an empty sandbox.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from tests.sandbox.support import (
    SECRET,
    TIMESTAMP,
    VERIFY_KEYS,
    initialize,
    pay,
    verify,
)

# Initialize


def test_initialize_answers_like_paystack(paystack: httpx.Client, sandbox_url: str) -> None:
    response = paystack.post(
        "/transaction/initialize",
        json={"email": "ada@example.com", "amount": 50_000, "reference": "inv-1.a=b"},
    )

    assert response.status_code == 200
    body = response.json()
    assert body["status"] is True
    assert body["message"] == "Authorization URL created"
    data = body["data"]
    assert set(data) == {"authorization_url", "access_code", "reference"}
    assert data["reference"] == "inv-1.a=b"
    assert re.fullmatch(r"[a-z0-9]{15}", data["access_code"])
    assert data["authorization_url"] == f"{sandbox_url}/checkout/{data['access_code']}"


def test_initialize_generates_a_reference_when_none_is_sent(paystack: httpx.Client) -> None:
    first = initialize(paystack)
    second = initialize(paystack)

    assert re.fullmatch(r"[A-Za-z0-9]+", first["reference"])
    assert first["reference"] != second["reference"]
    assert (
        verify(paystack, second["reference"])["id"]
        == verify(paystack, first["reference"])["id"] + 1
    )


def test_duplicate_reference_is_refused_and_creates_nothing(
    paystack: httpx.Client, http: httpx.Client
) -> None:
    initialize(paystack, reference="dup-1")

    response = paystack.post(
        "/transaction/initialize",
        json={"email": "other@example.com", "amount": 90_000, "reference": "dup-1"},
    )

    assert response.status_code == 400
    body = response.json()
    assert body["status"] is False
    assert body["message"] == "Duplicate Transaction Reference"
    assert body["code"] == "duplicate_reference"
    assert body["type"] == "validation_error"
    assert http.get("/_sandbox/stats").json()["transactions"] == 1
    assert verify(paystack, "dup-1")["requested_amount"] == 50_000


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/transaction/initialize"),
        ("GET", "/transaction/verify/anything"),
        ("GET", "/transaction"),
        ("GET", "/transaction/4100000000"),
    ],
)
@pytest.mark.parametrize("authorization", [None, "Bearer sk_test_wrong", SECRET])
def test_missing_or_wrong_key_is_401(
    http: httpx.Client, method: str, path: str, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    body = {"email": "ada@example.com", "amount": 50_000}

    response = http.request(method, path, headers=headers, json=body if method == "POST" else None)

    assert response.status_code == 401
    assert response.json() == {"status": False, "message": "Invalid key"}


@pytest.mark.parametrize(
    ("fields", "message", "code"),
    [
        ({"amount": "fifty"}, "Invalid Amount Sent", "invalid_params"),
        ({"amount": 0}, "Invalid Amount Sent", "invalid_params"),
        ({"amount": -5000}, "Invalid Amount Sent", "invalid_params"),
        ({"amount": 5000.5}, "Invalid Amount Sent", "invalid_params"),
        ({"amount": True}, "Invalid Amount Sent", "invalid_params"),
        ({"amount": 4999}, "Invalid Amount Sent", "invalid_params"),
        ({"amount": 199, "currency": "USD"}, "Invalid Amount Sent", "invalid_params"),
        ({"amount": None}, "Invalid Amount Sent", "missing_params"),
        ({"email": "not-an-email"}, "Invalid Email Address Passed", "invalid_params"),
        ({"email": None}, "Invalid Email Address Passed", "missing_params"),
        ({"currency": "EUR"}, "Currency not supported by merchant", "invalid_params"),
        (
            {"reference": "has space"},
            "Invalid character in transaction reference",
            "invalid_params",
        ),
        ({"reference": "a/b"}, "Invalid character in transaction reference", "invalid_params"),
        ({"reference": "x_y"}, "Invalid character in transaction reference", "invalid_params"),
    ],
)
def test_invalid_initialize_is_a_400_validation_error(
    paystack: httpx.Client, http: httpx.Client, fields: dict[str, Any], message: str, code: str
) -> None:
    body = {
        k: v
        for k, v in ({"email": "ada@example.com", "amount": 50_000} | fields).items()
        if v is not None
    }

    response = paystack.post("/transaction/initialize", json=body)

    assert response.status_code == 400
    assert response.json()["status"] is False
    assert response.json()["message"] == message
    assert response.json()["type"] == "validation_error"
    assert response.json()["code"] == code
    assert http.get("/_sandbox/stats").json()["transactions"] == 0


@pytest.mark.parametrize(
    ("amount", "currency"),
    [("5000", None), (5000, "NGN"), (10, "GHS"), (200, "usd"), (300, "KES"), (100, "ZAR")],
)
def test_minimum_amounts_and_digit_strings_are_accepted(
    paystack: httpx.Client, amount: int | str, currency: str | None
) -> None:
    fields = {"currency": currency} if currency else {}
    reference = initialize(paystack, amount=amount, **fields)["reference"]

    data = verify(paystack, reference)
    assert data["requested_amount"] == int(amount)
    assert data["currency"] == (currency or "NGN").upper()


def test_form_encoded_initialize(paystack: httpx.Client) -> None:
    response = paystack.post(
        "/transaction/initialize",
        data={
            "email": "Form@Example.com",
            "amount": "75000",
            "reference": "form-1",
            "currency": "GHS",
            "metadata": json.dumps({"invoice_id": "inv_9"}),
            "callback_url": "https://shop.example/done",
        },
    )

    assert response.status_code == 200, response.text
    data = verify(paystack, "form-1")
    assert data["requested_amount"] == 75_000
    assert data["currency"] == "GHS"
    assert data["metadata"] == {"invoice_id": "inv_9"}
    assert data["customer"]["email"] == "form@example.com"


# Verify


def test_verify_unpaid_is_abandoned_in_paystack_shape(paystack: httpx.Client) -> None:
    initialize(paystack, amount=50_000, reference="unpaid-1", metadata={"invoice_id": "inv_1"})

    response = paystack.get("/transaction/verify/unpaid-1")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] is True
    assert body["message"] == "Verification successful"
    data = body["data"]
    assert list(data) == VERIFY_KEYS
    assert data["status"] == "abandoned"
    assert data["domain"] == "test"
    assert data["paid_at"] is None
    assert data["paidAt"] is None
    assert data["gateway_response"] is None
    assert data["authorization"] == {}
    assert data["amount"] == data["requested_amount"] == 50_000
    assert data["metadata"] == {"invoice_id": "inv_1"}
    assert isinstance(data["id"], int) and data["id"] >= 4_100_000_000
    assert TIMESTAMP.match(data["created_at"]) and data["createdAt"] == data["created_at"]
    assert data["customer"]["email"] == "ada@example.com"
    assert data["customer"]["customer_code"].startswith("CUS_")


def test_verify_unknown_reference_is_404(paystack: httpx.Client) -> None:
    response = paystack.get("/transaction/verify/nope-404")

    assert response.status_code == 404
    assert response.json() == {
        "status": False,
        "message": "Transaction reference not found",
        "type": "validation_error",
        "code": "transaction_not_found",
    }


def test_customer_is_stable_per_email(paystack: httpx.Client) -> None:
    first = verify(paystack, initialize(paystack, email="same@example.com")["reference"])[
        "customer"
    ]
    second = verify(paystack, initialize(paystack, email="same@example.com")["reference"])[
        "customer"
    ]
    other = verify(paystack, initialize(paystack, email="other@example.com")["reference"])[
        "customer"
    ]

    assert (first["id"], first["customer_code"]) == (second["id"], second["customer_code"])
    assert other["id"] != first["id"]


# List and fetch


def test_list_is_newest_first_and_paginated(paystack: httpx.Client, http: httpx.Client) -> None:
    for n in range(5):
        initialize(paystack, amount=10_000 + n, reference=f"list-{n}")
    pay(http, "list-1")
    pay(http, "list-3", amount=20_000)

    page2 = paystack.get("/transaction", params={"perPage": 2, "page": 2}).json()

    assert page2["status"] is True
    assert page2["message"] == "Transactions retrieved"
    assert [t["reference"] for t in page2["data"]] == ["list-2", "list-1"]
    assert page2["meta"] == {
        "total": 5,
        "total_volume": 10_001 + 20_000,
        "skipped": 2,
        "perPage": 2,
        "page": 2,
        "pageCount": 3,
    }
    default = paystack.get("/transaction").json()
    assert default["meta"]["perPage"] == 50
    assert [t["reference"] for t in default["data"]] == [f"list-{n}" for n in range(4, -1, -1)]
    success = paystack.get("/transaction", params={"status": "success"}).json()
    assert {t["reference"] for t in success["data"]} == {"list-1", "list-3"}
    by_amount = paystack.get("/transaction", params={"amount": 20_000}).json()
    assert [t["reference"] for t in by_amount["data"]] == ["list-3"]
    by_reference = paystack.get("/transaction", params={"reference": "list-4"}).json()
    assert [t["id"] for t in by_reference["data"]] == [verify(paystack, "list-4")["id"]]


def test_list_date_filters(paystack: httpx.Client) -> None:
    initialize(paystack, reference="dated-1")
    today = verify(paystack, "dated-1")["created_at"][:10]

    assert (
        paystack.get("/transaction", params={"from": today, "to": today}).json()["meta"]["total"]
        == 1
    )
    assert paystack.get("/transaction", params={"to": "2000-01-01"}).json()["meta"]["total"] == 0
    assert (
        paystack.get("/transaction", params={"from": "2999-01-01T00:00:00Z"}).json()["data"] == []
    )
    assert paystack.get("/transaction", params={"from": "yesterday"}).status_code == 400


def test_fetch_by_id(paystack: httpx.Client, http: httpx.Client) -> None:
    initialize(paystack, reference="fetch-1")
    pay(http, "fetch-1")
    transaction_id = verify(paystack, "fetch-1")["id"]

    response = paystack.get(f"/transaction/{transaction_id}")

    assert response.status_code == 200
    assert response.json()["message"] == "Transaction retrieved"
    assert response.json()["data"]["reference"] == "fetch-1"
    assert response.json()["data"]["status"] == "success"
    for missing in (str(transaction_id + 1000), "not-a-number"):
        not_found = paystack.get(f"/transaction/{missing}")
        assert not_found.status_code == 404
        assert not_found.json()["message"] == "Transaction not found"
        assert not_found.json()["status"] is False


# Counters and inspection


def test_call_counters(paystack: httpx.Client, http: httpx.Client) -> None:
    initialize(paystack, reference="count-1")
    paystack.post(
        "/transaction/initialize",
        json={"email": "ada@example.com", "amount": 50_000, "reference": "count-1"},
    )
    for _ in range(3):
        verify(paystack, "count-1")
    paystack.get("/transaction/verify/count-unknown")
    paystack.get("/transaction")
    paystack.get("/transaction/1")

    inspected = http.get("/_sandbox/transactions/count-1").json()
    assert inspected["calls"] == {"initialize": 2, "verify": 3}
    assert inspected["transaction"]["reference"] == "count-1"
    assert inspected["transaction"]["status"] == "abandoned"
    unknown = http.get("/_sandbox/transactions/count-unknown").json()
    assert unknown == {"transaction": None, "calls": {"initialize": 0, "verify": 1}}
    assert http.get("/_sandbox/transactions/never-seen").status_code == 404
    stats = http.get("/_sandbox/stats").json()
    assert stats["calls"] == {
        "initialize": 2,
        "verify": 4,
        "list": 1,
        "fetch": 1,
        "settlements": 0,
        "refund": 0,
        "refunds": 0,
        "disputes": 0,
    }
    assert stats["transactions"] == 1
    assert stats["webhooks_sent"] == 0
    assert stats["webhooks_in_flight"] == 0
    assert set(stats["faults"].values()) == {0}


def test_healthz_and_reset(paystack: httpx.Client, http: httpx.Client) -> None:
    initialize(paystack, reference="gone-1")
    http.post("/_sandbox/config", json={"webhooks_enabled": False})

    assert http.get("/_sandbox/healthz").json() == {"status": "ok"}
    assert http.post("/_sandbox/reset").status_code == 200

    assert paystack.get("/transaction/verify/gone-1").status_code == 404
    assert http.get("/_sandbox/config").json()["webhooks_enabled"] is True
    assert http.get("/_sandbox/stats").json()["calls"]["initialize"] == 0
