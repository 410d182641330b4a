"""Telling the merchant and the customer, end to end: the README's receiver verifies every
event type; an endpoint that fails is retried until it answers; a 410 disables it; a slow
one delays nothing; and a paid invoice's customer gets one receipt across a worker restart."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlmodel import Session, select
from standardwebhooks import Webhook

from db.models import CustomerEmail
from devstack.processes import Service, free_port, python_module, wait_for_port
from tests.helpers import create_invoice, eventually, pay, wait_for_status
from tests.mailbox import Mailbox
from tests.stack import Stack

README = (Path(__file__).parents[2] / "README.md").read_text()
RECEIVER = re.search(r"<!-- receiver.py -->\n```python\n(.*?)```", README, re.S)


@asynccontextmanager
async def endpoint(shop: httpx.AsyncClient, url: str) -> AsyncIterator[dict[str, str]]:
    """An endpoint of the shop's, removed afterwards so later events stop going to it."""
    made = await shop.post("/webhook-endpoints", json={"url": url})
    assert made.status_code == 201, made.text
    try:
        yield made.json()
    finally:
        assert (await shop.delete(f"/webhook-endpoints/{made.json()['id']}")).status_code == 204


@dataclass
class Request:
    headers: dict[str, str]
    body: bytes


Answer = Callable[[Request], Awaitable[int]]


@asynccontextmanager
async def merchant(answer: Answer) -> AsyncIterator[tuple[str, list[Request]]]:
    """A merchant's endpoint on this machine that answers what `answer` says."""
    received: list[Request] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        fields = (line.partition(":") for line in head.split("\r\n")[1:] if line)
        headers = {name.strip().lower(): value.strip() for name, _, value in fields}
        request = Request(headers, await reader.readexactly(int(headers["content-length"])))
        received.append(request)
        status = await answer(request)
        writer.write(f"HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n".encode())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook", received


def for_invoice(received: list[Request], invoice_id: str) -> list[Request]:
    return [r for r in received if r.headers["webhook-id"].startswith(f"evt_{invoice_id}_")]


async def test_the_readme_receiver_verifies_every_event_type(
    stack: Stack, shop: httpx.AsyncClient, sandbox: httpx.AsyncClient, tmp_path: Path
) -> None:
    assert RECEIVER is not None, "README.md lost its receiver block"
    (tmp_path / "receiver.py").write_text(RECEIVER.group(1))
    port = free_port()
    printed = tmp_path / "receiver.log"
    async with endpoint(shop, f"http://127.0.0.1:{port}/payrecon") as made:
        service = Service(
            "receiver",
            python_module(
                "uvicorn", "receiver:app", "--port", str(port), "--app-dir", str(tmp_path)
            ),
            env={"PAYRECON_WEBHOOK_SECRET": made["secret"]},
            log_path=printed,
        ).start()
        try:
            await asyncio.to_thread(wait_for_port, "127.0.0.1", port)
            paid = await create_invoice(shop)
            await pay(sandbox, paid["id"])
            cancelled = await create_invoice(shop)
            assert (await shop.post(f"/invoices/{cancelled['id']}/cancel")).status_code == 200
            # Expired at its due date, then paid inside the late window: needs_review.
            late = await create_invoice(shop, due_in_seconds=2)
            await wait_for_status(shop, late["id"], "expired")
            await pay(sandbox, late["id"])
            await wait_for_status(shop, late["id"], "needs_review")
            expected = {
                f"invoice.created {paid['id']} 1",
                f"invoice.paid {paid['id']} 2",
                f"invoice.created {cancelled['id']} 1",
                f"invoice.cancelled {cancelled['id']} 2",
                f"invoice.created {late['id']} 1",
                f"invoice.expired {late['id']} 2",
                f"invoice.needs_review {late['id']} 3",
            }
            ours = {paid["id"], cancelled["id"], late["id"]}

            def lines() -> set[str]:
                found = (line.split() for line in printed.read_text().splitlines())
                return {" ".join(w) for w in found if len(w) == 3 and w[1] in ours}

            async def all_printed() -> None:
                assert lines() >= expected, expected - lines()

            await eventually(all_printed, within=30)
            # Nothing told that did not happen (no paid for the cancelled invoice, …).
            assert lines() == expected
        finally:
            service.stop()


async def test_an_endpoint_failing_three_times_gets_the_event_once_it_answers(
    stack: Stack, shop: httpx.AsyncClient
) -> None:
    failures: dict[str, int] = {}

    async def fail_three_times(request: Request) -> int:
        event_id = request.headers["webhook-id"]
        failures[event_id] = failures.get(event_id, 0) + 1
        return 500 if failures[event_id] <= 3 else 204

    async with merchant(fail_three_times) as (url, received), endpoint(shop, url) as made:
        invoice = await create_invoice(shop)
        event_id = f"evt_{invoice['id']}_1"

        async def delivered() -> None:
            attempts = (await shop.get(f"/webhook-endpoints/{made['id']}/deliveries")).json()
            mine = [item for item in attempts["items"] if item["event_id"] == event_id]
            assert [item["outcome"] for item in reversed(mine)] == [
                "failed",
                "failed",
                "failed",
                "delivered",
            ]
            assert [item["status_code"] for item in reversed(mine)] == [500, 500, 500, 204]
            assert all(item["next_attempt_at"] for item in mine if item["outcome"] == "failed")

        await eventually(delivered, within=30)
        requests = [r for r in received if r.headers["webhook-id"] == event_id]
        assert len(requests) == 4 and len({r.body for r in requests}) == 1
        for request in requests:
            assert Webhook(made["secret"]).verify(request.body, request.headers)


async def test_an_endpoint_answering_gone_is_disabled_and_sent_nothing_more(
    shop: httpx.AsyncClient,
) -> None:
    async def gone(request: Request) -> int:
        return 410

    async with merchant(gone) as (url, received), endpoint(shop, url) as made:
        first = await create_invoice(shop)

        async def disabled() -> None:
            shown = (await shop.get(f"/webhook-endpoints/{made['id']}")).json()
            assert shown["enabled"] is False
            assert shown["disabled_reason"] == "answered 410 Gone"

        await eventually(disabled, within=20)
        second = await create_invoice(shop)
        await wait_for_status(shop, second["id"], "pending")
        # Deliveries are staged in the commit that records the invoice: none was, so none
        # can ever be sent.
        listed = (await shop.get(f"/webhook-endpoints/{made['id']}/deliveries")).json()
        assert [item for item in listed["items"] if second["id"] in item["event_id"]] == []
        assert len(for_invoice(received, first["id"])) == 1
        assert for_invoice(received, second["id"]) == []


async def test_a_slow_endpoint_holds_up_neither_paid_nor_the_receipt(
    shop: httpx.AsyncClient, sandbox: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    release = asyncio.Event()

    async def held(request: Request) -> int:
        await release.wait()
        return 200

    async with merchant(held) as (url, received), endpoint(shop, url):
        email = f"slow-{uuid.uuid4().hex[:8]}@example.com"
        invoice = await create_invoice(shop, customer_email=email)
        await pay(sandbox, invoice["id"])
        # The merchant holds invoice.created open the whole time: paid and mailed anyway.
        paid = await wait_for_status(shop, invoice["id"], "paid")
        await mailbox.wait_for_message_id(f"<receipt.{invoice['id']}@payrecon.localhost>")
        assert paid["revision"] == 2 and not release.is_set()
        release.set()

        async def both_delivered() -> None:
            ids = [r.headers["webhook-id"] for r in for_invoice(received, invoice["id"])]
            assert f"evt_{invoice['id']}_2" in ids

        await eventually(both_delivered, within=20)


async def test_one_receipt_per_paid_invoice_across_a_worker_restart(
    stack: Stack, shop: httpx.AsyncClient, sandbox: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    async def accept(request: Request) -> int:
        return 200

    async with merchant(accept) as (url, received), endpoint(shop, url):
        email = f"restart-{uuid.uuid4().hex[:8]}@example.com"
        invoice = await create_invoice(shop, customer_email=email)
        await pay(sandbox, invoice["id"])
        await stack.worker.stop()
        await stack.worker.start()
        await wait_for_status(shop, invoice["id"], "paid")
        message_id = f"<receipt.{invoice['id']}@payrecon.localhost>"
        await mailbox.wait_for_message_id(message_id)

        async def paid_told() -> None:
            ids = {r.headers["webhook-id"] for r in for_invoice(received, invoice["id"])}
            assert ids == {f"evt_{invoice['id']}_1", f"evt_{invoice['id']}_2"}

        await eventually(paid_told, within=30)

        def receipt_settled() -> None:
            # Marked sent, nothing pending: no copy of it is left to send.
            with Session(stack.engine) as session:
                rows = session.exec(
                    select(CustomerEmail).where(CustomerEmail.invoice_id == invoice["id"])
                ).all()
            assert ("receipt", "sent") in [(row.kind, row.status) for row in rows]
            assert all(row.status != "pending" for row in rows)

        await eventually(receipt_settled)
        assert {message["Message-ID"] for message in mailbox.to(email)} == {message_id}
