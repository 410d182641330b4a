"""The invoice's timeline (GET /invoices/{id}/events and `payrecon invoices show`): what
happened to it, oldest first, from the parts that saw it happen."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.e2e.test_cli import payrecon
from tests.helpers import create_invoice, eventually, pay, wait_for_status
from tests.stack import OTHER_CALLER_KEY, Stack


@pytest.fixture
async def shop(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {OTHER_CALLER_KEY}"}
    async with httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=30) as client:
        yield client


async def events(api: httpx.AsyncClient, invoice_id: str, **params: Any) -> dict[str, Any]:
    response = await api.get(f"/invoices/{invoice_id}/events", params=params)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


async def timeline(api: httpx.AsyncClient, invoice_id: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = (await events(api, invoice_id, limit=200))["items"]
    return entries


def in_order(entries: list[dict[str, Any]], *wanted: tuple[str, dict[str, Any]]) -> list[int]:
    """The positions of entries matching each (kind, detail fields) in turn, each after
    the one before; fails naming the first that is missing."""
    positions: list[int] = []
    start = 0
    for kind, fields in wanted:
        position = next(
            (
                n
                for n in range(start, len(entries))
                if entries[n]["kind"] == kind
                and all(entries[n]["detail"].get(k) == v for k, v in fields.items())
            ),
            None,
        )
        assert position is not None, (kind, fields, [(e["kind"], e["detail"]) for e in entries])
        positions.append(position)
        start = position + 1
    return positions


async def declined_then_paid(api: httpx.AsyncClient, sandbox: httpx.AsyncClient) -> str:
    """The customer's card is declined, Paystack's verify (a poll) says so; the customer
    tries again on the same checkout and pays: charge.success, verify, paid."""
    invoice = await create_invoice(api, due_in_seconds=600)
    invoice_id: str = invoice["id"]
    declined = await pay(sandbox, invoice_id, "failed")
    assert (declined["status"], declined["gateway_response"]) == ("failed", "Declined")

    async def verified_declined() -> None:
        in_order(
            await timeline(api, invoice_id),
            ("paystack_verified", {"paystack_status": "failed", "gateway_response": "Declined"}),
        )

    # The first poll comes 2 s after creation; the next one 4 s after it.
    await eventually(verified_declined, within=15)
    paid = await pay(sandbox, invoice_id, "success")
    assert paid["status"] == "success"
    await wait_for_status(api, invoice_id, "paid")
    return invoice_id


async def test_the_timeline_shows_a_declined_attempt_then_a_payment(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    invoice_id = await declined_then_paid(api, sandbox)
    entries = await timeline(api, invoice_id)

    pending, declined, webhook, success, paid = in_order(
        entries,
        ("status_changed", {"status": "pending", "revision": 1}),
        (
            "paystack_verified",
            {
                "reference": invoice_id,
                "found": True,
                "paystack_status": "failed",
                "gateway_response": "Declined",
                "amount": 250000,
                "currency": "NGN",
            },
        ),
        ("webhook_received", {"event": "charge.success", "reference": invoice_id}),
        ("paystack_verified", {"paystack_status": "success", "gateway_response": "Successful"}),
        ("status_changed", {"status": "paid", "revision": 2}),
    )
    assert pending == 0
    assert entries[webhook]["detail"]["outcome"] == "queued"
    assert isinstance(entries[webhook]["detail"]["delivery_id"], int)
    assert isinstance(entries[success]["detail"]["transaction_id"], int)
    # Nothing is paid before Paystack said success: every status change but the last is
    # before the successful verify, and only polls (none successful) came between.
    statuses = [n for n, e in enumerate(entries) if e["kind"] == "status_changed"]
    assert statuses == [pending, paid]
    between = {e["detail"].get("paystack_status") for e in entries[declined:webhook]}
    assert "success" not in between
    assert set(entries[0]) == {"id", "at", "kind", "detail"}


async def test_the_timeline_pages_oldest_first_with_its_total(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    invoice = await create_invoice(api, due_in_seconds=600)
    await pay(sandbox, invoice["id"])
    await wait_for_status(api, invoice["id"], "paid")
    everything = await events(api, invoice["id"], limit=200)
    total = everything["total"]
    assert total == len(everything["items"]) >= 4  # pending, webhook, verify, paid

    pages = [await events(api, invoice["id"], limit=2, offset=offset) for offset in (0, 2, 4)]
    assert [page["total"] for page in pages] == [total] * 3
    assert [(page["limit"], page["offset"]) for page in pages] == [(2, 0), (2, 2), (2, 4)]
    assert [item for page in pages for item in page["items"]] == everything["items"][:6]
    ids = [item["id"] for item in everything["items"]]
    assert ids == sorted(ids)
    past = await events(api, invoice["id"], limit=5, offset=total)
    assert past["items"] == [] and past["total"] == total

    too_many = await api.get(f"/invoices/{invoice['id']}/events", params={"limit": 201})
    assert too_many.status_code == 422
    assert too_many.json()["detail"][0]["loc"] == ["query", "limit"]


async def test_another_callers_invoice_has_no_timeline_for_you(
    api: httpx.AsyncClient, shop: httpx.AsyncClient
) -> None:
    invoice = await create_invoice(api, due_in_seconds=600)

    theirs = await shop.get(f"/invoices/{invoice['id']}/events")
    assert theirs.status_code == 404
    assert theirs.json() == {"detail": f"no invoice {invoice['id']}"}
    unknown = await api.get("/invoices/inv-000000000000000000000000/events")
    assert unknown.status_code == 404
    assert (await events(api, invoice["id"]))["total"] >= 1


async def test_an_accepted_cancel_is_on_the_timeline_before_what_it_leads_to(
    api: httpx.AsyncClient,
) -> None:
    invoice = await create_invoice(api, due_in_seconds=600)

    cancelled = await api.post(f"/invoices/{invoice['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = await api.post(f"/invoices/{invoice['id']}/cancel")
    assert again.status_code == 409

    async def settled() -> None:
        entries = await timeline(api, invoice["id"])
        in_order(
            entries,
            ("status_changed", {"status": "pending"}),
            ("cancel_requested", {"caller": "default"}),
            ("paystack_verified", {"paystack_status": "abandoned"}),
            ("status_changed", {"status": "cancelled"}),
        )
        # The refused second cancel left nothing behind.
        assert [e["kind"] for e in entries].count("cancel_requested") == 1

    await eventually(settled)


async def test_invoices_show_prints_the_timeline(
    stack: Stack, api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    invoice_id = await declined_then_paid(api, sandbox)

    code, shown = await payrecon(stack, "invoices", "show", invoice_id)

    assert code == 0, shown
    assert "\ntimeline\n" in shown
    lines = shown.split("\ntimeline\n", 1)[1].splitlines()
    assert lines[0].split() == ["at", "(UTC)", "kind", "what"]
    # Each row: date, time, kind, then the summary.
    rows = [line.strip().split(maxsplit=3)[2:] for line in lines[1:] if line.strip()]

    def first(kind: str, summary_start: str) -> int:
        return next(
            n for n, (k, what) in enumerate(rows) if k == kind and what.startswith(summary_start)
        )

    assert rows[0] == ["status_changed", "pending, revision=1"]
    declined = first("paystack_verified", "failed (Declined), NGN 2,500.00")
    webhook = first("webhook_received", "charge.success, queued")
    success = first("paystack_verified", "success (Successful), NGN 2,500.00")
    paid = first("status_changed", "paid")
    assert declined < webhook < success < paid, rows
