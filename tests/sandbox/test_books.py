"""The sandbox's books beyond one checkout, over real HTTP: cursor pages of
GET /transaction, payments no invoice asked for, reversals, settlements and their faults,
and the bulk seed the benchmark uses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.sandbox.support import Receiver, initialize, pay, verify

NAIRA = 100


def payment(http: httpx.Client, amount: int = 500_000, **fields: Any) -> dict[str, Any]:
    body = {"amount": amount, "currency": "NGN", "email": "walk-in@example.com", **fields}
    response = http.post("/_sandbox/transactions", json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def test_a_cursor_walk_gives_each_transaction_once_newest_first_and_back(
    http: httpx.Client, paystack: httpx.Client
) -> None:
    made = [payment(http, reference=f"walk-{n:03d}")["id"] for n in range(23)]
    seen: list[int] = []
    params: dict[str, Any] = {"use_cursor": "true", "perPage": 5}
    pages = []
    while True:
        answer = paystack.get("/transaction", params=params).json()
        pages.append(answer)
        seen += [tx["id"] for tx in answer["data"]]
        if answer["meta"]["next"] is None:
            break
        params["next"] = answer["meta"]["next"]
    assert seen == sorted(made, reverse=True) and len(pages) == 5
    assert pages[0]["meta"]["previous"] is None
    back = paystack.get(
        "/transaction",
        params={"use_cursor": "true", "perPage": 5, "previous": pages[2]["meta"]["previous"]},
    ).json()
    assert [tx["id"] for tx in back["data"]] == [tx["id"] for tx in pages[1]["data"]]
    # GET /transaction/ answers the same, with no redirect.
    slash = paystack.get("/transaction/", params={"perPage": 5}, follow_redirects=False)
    assert slash.status_code == 200 and slash.json()["meta"]["total"] == 23
    bad = paystack.get("/transaction", params={"use_cursor": "true", "next": "nonsense"})
    assert bad.status_code == 400 and bad.json()["message"] == "Invalid cursor"


def test_a_payment_page_payment_is_paid_signed_and_priced_by_the_table(
    http: httpx.Client, paystack: httpx.Client, hooks: Receiver
) -> None:
    local = payment(http, amount=10_000 * NAIRA, reference="page-1")
    assert local["status"] == "success" and local["fees"] == 250 * NAIRA  # 1.5 % + ₦100
    small = payment(http, amount=1_000 * NAIRA)
    assert small["fees"] == 15 * NAIRA  # the ₦100 waived under ₦2,500
    capped = payment(http, amount=500_000 * NAIRA)
    assert capped["fees"] == 2_000 * NAIRA
    abroad = payment(http, amount=10_000 * NAIRA, card_country="US")
    assert abroad["fees"] == 490 * NAIRA and abroad["authorization"]["country_code"] == "US"
    [received] = hooks.wait_for(4)[:1]
    assert received.signed_correctly and received.reference == "page-1"
    again = http.post(
        "/_sandbox/transactions",
        json={"amount": 1000, "currency": "NGN", "email": "x@example.com", "reference": "page-1"},
    )
    assert again.status_code == 400 and again.json()["code"] == "duplicate_reference"
    bad = http.post("/_sandbox/transactions", json={"amount": 0, "email": "x@example.com"})
    assert bad.status_code == 422


def test_a_successful_transaction_can_be_reversed_and_nothing_else(
    http: httpx.Client, paystack: httpx.Client
) -> None:
    paid = initialize(paystack)["reference"]
    pay(http, paid).raise_for_status()
    assert http.post(f"/_sandbox/transactions/{paid}/reverse").status_code == 200
    assert verify(paystack, paid)["status"] == "reversed"
    assert http.post(f"/_sandbox/transactions/{paid}/reverse").status_code == 409
    assert http.post("/_sandbox/transactions/unknown-ref/reverse").status_code == 404


def test_settlements_pay_out_each_currency_and_day_and_add_up(
    http: httpx.Client, paystack: httpx.Client
) -> None:
    for amount in (500_000, 700_000):
        payment(http, amount=amount)
    payment(http, amount=20_000, currency="GHS")
    made = http.post("/_sandbox/settlements/run", json={}).json()
    assert made["faults"] == [] and len(made["data"]) == 2
    by_currency = {s["currency"]: s for s in made["data"]}
    ngn = by_currency["NGN"]
    assert ngn["total_processed"] == 1_200_000
    assert ngn["total_processed"] - ngn["total_fees"] == ngn["total_amount"]
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert ngn["settlement_date"] == f"{tomorrow}T00:00:00.000Z"
    # Nothing is paid out twice.
    assert http.post("/_sandbox/settlements/run", json={}).json()["data"] == []

    listed = paystack.get("/settlement", params={"perPage": 1}).json()
    assert listed["message"] == "Settlements retrieved" and listed["meta"]["pageCount"] == 2
    paid_out = paystack.get(f"/settlement/{ngn['id']}/transactions").json()
    assert sum(tx["amount"] for tx in paid_out["data"]) == ngn["total_processed"]
    assert sum(tx["fees"] for tx in paid_out["data"]) == ngn["total_fees"]
    assert paid_out["meta"]["total_volume"] == 12_000  # Paystack's sample: the main unit
    assert paystack.get("/settlement/999/transactions").status_code == 404
    assert http.get("/settlement").status_code == 401


def test_a_settlement_fault_puts_one_thing_wrong(http: httpx.Client) -> None:
    payment(http, amount=500_000)
    fee = http.post("/_sandbox/settlements/run", json={"fault": "fee"}).json()
    [settled] = fee["data"]
    assert fee["faults"] == [
        {"kind": "fee", "reference": fee["faults"][0]["reference"], "settlement_id": settled["id"]}
    ]
    # The fee is 100 too high, and the settlement follows it: it adds up.
    assert settled["total_fees"] == 7_500 + 10_000 + 100
    assert settled["total_processed"] - settled["total_fees"] == settled["total_amount"]
    payment(http, amount=500_000)
    arithmetic = http.post("/_sandbox/settlements/run", json={"fault": "arithmetic"}).json()
    [wrong] = arithmetic["data"]
    assert wrong["total_processed"] - wrong["total_fees"] + 100 == wrong["total_amount"]
    assert arithmetic["faults"][0]["kind"] == "arithmetic"
    assert http.post("/_sandbox/settlements/run", json={"fault": "other"}).status_code == 422


def test_a_bulk_seed_writes_many_without_webhooks(
    http: httpx.Client, paystack: httpx.Client, hooks: Receiver
) -> None:
    newest = payment(http)["reference"]  # made now: newer than every seeded one, lower id
    start = datetime(2026, 11, 20, tzinfo=UTC)
    seeded = [
        {
            "reference": f"seed-{n:05d}",
            "amount": 500_000,
            "email": "bench@example.com",
            "created_at": (start + timedelta(seconds=n)).isoformat(),
        }
        for n in range(2_000)
    ]
    answer = http.post("/_sandbox/transactions/bulk", json={"transactions": seeded})
    assert answer.status_code == 200 and answer.json()["data"] == {"created": 2_000}
    first = paystack.get("/transaction", params={"use_cursor": "true", "perPage": 3}).json()
    assert [tx["reference"] for tx in first["data"]] == [newest, "seed-01999", "seed-01998"]
    assert first["data"][1]["fees"] == 17_500 and first["data"][1]["status"] == "success"
    # Cursors follow the list's order (creation time), not ids: a walk sees each once.
    params: dict[str, Any] = {"use_cursor": "true", "perPage": 700}
    walked: list[str] = []
    while True:
        answer = paystack.get("/transaction", params=params).json()
        walked += [tx["reference"] for tx in answer["data"]]
        if answer["meta"]["next"] is None:
            break
        params["next"] = answer["meta"]["next"]
    assert len(walked) == len(set(walked)) == 2_001
    assert [r.reference for r in hooks.wait_for(1)] == [newest]
    again = http.post("/_sandbox/transactions/bulk", json={"transactions": seeded[:1]})
    assert again.status_code == 400


def test_a_windowed_cursor_walk_sees_exactly_the_window_and_the_filters_narrow_it(
    http: httpx.Client, paystack: httpx.Client
) -> None:
    start = datetime(2026, 11, 20, tzinfo=UTC)
    seeded = [
        {
            "reference": f"day-{n:03d}",
            "amount": 100_000 + n,
            "email": "one@example.com" if n % 2 else "two@example.com",
            "created_at": (start + timedelta(hours=n)).isoformat(),
            "status": "success" if n % 3 else "failed",
        }
        for n in range(72)  # three days, one an hour
    ]
    assert http.post("/_sandbox/transactions/bulk", json={"transactions": seeded}).is_success
    window = {"from": "2026-11-21T00:00:00Z", "to": "2026-11-21T23:59:59Z"}
    params: dict[str, Any] = {"use_cursor": "true", "perPage": 7, **window}
    walked: list[str] = []
    while True:
        answer = paystack.get("/transaction", params=params).json()
        walked += [tx["reference"] for tx in answer["data"]]
        if answer["meta"]["next"] is None:
            break
        params["next"] = answer["meta"]["next"]
    assert walked == [f"day-{n:03d}" for n in range(47, 23, -1)]
    successful = paystack.get("/transaction", params={**window, "status": "success"}).json()
    assert successful["meta"]["total"] == 16  # 24 hours, one in three failed
    customer = paystack.get("/transaction", params={"reference": "day-001"}).json()["data"][0][
        "customer"
    ]["id"]
    by_customer = paystack.get("/transaction", params={**window, "customer": customer}).json()
    assert {tx["customer"]["id"] for tx in by_customer["data"]} == {customer}
    assert by_customer["meta"]["total"] == 12
    # No payment in the sandbox is made at a POS terminal.
    assert paystack.get("/transaction", params={"terminalid": "2232"}).json()["data"] == []
    bad = paystack.get("/transaction", params={"customer": "CUS_x"})
    assert bad.status_code == 400 and bad.json()["message"] == "Invalid customer id"


def test_totals_count_what_was_received_and_what_is_not_yet_paid_out(
    http: httpx.Client, paystack: httpx.Client
) -> None:
    payment(http, amount=500_000)
    payment(http, amount=250_000, currency="NGN")
    payment(http, amount=2_000, currency="USD")
    initialize(paystack, reference="never-paid")
    before = paystack.get("/transaction/totals").json()
    assert before["message"] == "Transaction totals"
    assert before["data"] == {
        "total_transactions": 3,
        "total_volume": 752_000,
        "total_volume_by_currency": [
            {"currency": "NGN", "amount": 750_000},
            {"currency": "USD", "amount": 2_000},
        ],
        "pending_transfers": 752_000,
        "pending_transfers_by_currency": [
            {"currency": "NGN", "amount": 750_000},
            {"currency": "USD", "amount": 2_000},
        ],
    }
    assert http.post("/_sandbox/settlements/run").is_success
    after = paystack.get("/transaction/totals").json()["data"]
    assert after["total_volume"] == 752_000 and after["pending_transfers"] == 0
    empty = paystack.get("/transaction/totals", params={"to": "2000-01-01"}).json()["data"]
    assert empty["total_transactions"] == 0 and empty["total_volume_by_currency"] == []


def test_the_timeline_shows_the_checkouts_steps_by_id_or_reference(
    http: httpx.Client, paystack: httpx.Client
) -> None:
    initialize(paystack, reference="timeline-1")
    untried = paystack.get("/transaction/timeline/timeline-1").json()["data"]
    assert untried["attempts"] == 0 and untried["history"] == []
    pay(http, "timeline-1")
    by_reference = paystack.get("/transaction/timeline/timeline-1").json()
    assert by_reference["message"] == "Timeline retrieved"
    assert by_reference["data"]["success"] is True and by_reference["data"]["history"]
    tx_id = verify(paystack, "timeline-1")["id"]
    assert paystack.get(f"/transaction/timeline/{tx_id}").json() == by_reference
    missing = paystack.get("/transaction/timeline/no-such")
    assert missing.status_code == 404 and missing.json()["message"] == "Transaction not found"
