"""The outbox and its delivery loop, against a real database of each kind, a real SMTP
server (the session's `mailbox`) and a real HTTP endpoint: a change and what it tells are
one commit; each delivery is retried on its schedule until it is delivered, given up, or its
endpoint is gone; each customer email is sent once, with one Message-ID."""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import itertools
import tracemalloc
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import Engine
from sqlmodel import Session as DbSession
from sqlmodel import col, select

from config import ApiKey, Settings
from db.models import (
    CustomerEmail,
    EventAttempt,
    EventDelivery,
    InvoiceTimelineEntry,
    OutboundEvent,
    WebhookEndpoint,
)
from db.projection import apply_snapshot
from db.timeline import TimelineKind
from devstack.mailcatcher import HOST
from devstack.processes import free_port
from domain.events import OPERATORS, EventType, InvoiceEvent
from domain.invoice import InvoiceSnapshot, InvoiceStatus
from outbound import outbox
from outbound.deliverer import Deliverer
from outbound.mail import Mailer, SmtpOptions
from outbound.secrets import new_secret, seal
from tests.mailbox import Mailbox, paid_invoice, text_of

FROM = "payrecon <receipts@payrecon.localhost>"
SETTINGS = Settings(
    payrecon_development_mode=True,
    payrecon_event_retry_schedule=[0.05, 0.1],
    payrecon_event_retry_for_seconds=0.6,
    payrecon_event_timeout_seconds=2,
    payrecon_email_from=FROM,
)


@dataclass
class Endpoint:
    """A merchant's endpoint over real HTTP: answers each POST with the next status."""

    answers: list[int] = field(default_factory=list)
    received: list[tuple[str, bytes]] = field(default_factory=list)
    port: int = 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.received.append((headers.get("webhook-id", ""), body))
        status = self.answers.pop(0) if self.answers else 200
        writer.write(
            f"HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        writer.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"


@pytest.fixture
async def endpoint() -> AsyncIterator[Endpoint]:
    served = Endpoint()
    server = await asyncio.start_server(served._handle, "127.0.0.1", 0)
    served.port = server.sockets[0].getsockname()[1]
    yield served
    server.close()


def _mailer(url: str) -> Mailer:
    return Mailer(SmtpOptions.parse(url), timeout=5.0)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def _register(engine: Engine, caller: str, url: str) -> str:
    endpoint_id = f"we_{uuid.uuid4().hex[:16]}"
    now = datetime.now(UTC)
    with DbSession(engine) as session:
        session.add(
            WebhookEndpoint(
                id=endpoint_id,
                caller=caller,
                url=url,
                secret=seal(SETTINGS.codec_keys, new_secret()),
                created_at=now,
                updated_at=now,
            )
        )
        session.commit()
    return endpoint_id


def _paid(caller: str, **changes: object) -> InvoiceSnapshot:
    """Paid just now: a change's deliveries are given up a retry period after it."""
    now = datetime.now(UTC)
    invoice_id = f"inv-{uuid.uuid4().hex[:16]}"
    return paid_invoice(invoice_id, caller=caller, updated_at=now, paid_at=now, **changes)


def _record_paid(engine: Engine) -> InvoiceSnapshot:
    """A paid invoice, recorded with its `invoice.paid` event (and receipt)."""
    invoice = _paid(f"c{uuid.uuid4().hex[:8]}")
    assert apply_snapshot(engine, invoice, [InvoiceEvent.of(invoice)])
    return invoice


def _rows(engine: Engine, table: Any, **where: object) -> list[Any]:
    with DbSession(engine) as session:
        query: Any = select(table)
        for name, value in where.items():
            query = query.where(getattr(table, name) == value)
        return list(session.exec(query.order_by(col(table.id))))


async def _run_until_settled(deliverer: Deliverer, rounds: int = 40) -> None:
    """Scans until nothing is due or under way (retries come due within the schedule)."""
    for _ in range(rounds):
        await deliverer.scan_once()
        await deliverer.idle()
        await asyncio.sleep(0.05)


def test_a_change_and_its_event_are_one_commit(engine: Engine) -> None:
    invoice = paid_invoice(f"inv-{uuid.uuid4().hex[:16]}", caller="outbox-one-commit")
    _register(engine, "outbox-one-commit", "http://127.0.0.1:9/hooks")
    event = InvoiceEvent.of(invoice)
    assert apply_snapshot(engine, invoice, [event])
    # The same change again (a retried record): nothing is written twice.
    assert not apply_snapshot(engine, invoice, [event])
    [stored] = _rows(engine, OutboundEvent, id=event.event_id)
    assert stored.type == "invoice.paid" and stored.invoice_id == invoice.invoice_id
    [delivery] = _rows(engine, EventDelivery, event_id=event.event_id)
    assert delivery.status == "pending" and delivery.due_at is not None
    [email] = _rows(engine, CustomerEmail, invoice_id=invoice.invoice_id)
    assert (email.kind, email.status) == ("receipt", "pending")
    # An older snapshot arriving late still puts its own event in the outbox, once.
    older = dataclasses.replace(invoice, revision=1, status=InvoiceStatus.PENDING)
    earlier = InvoiceEvent.of(older)
    assert not apply_snapshot(engine, older, [earlier])
    assert [e.id for e in _rows(engine, OutboundEvent, invoice_id=invoice.invoice_id)] == sorted(
        [event.event_id, earlier.event_id]
    )


async def test_a_failing_endpoint_is_retried_then_given_up(
    engine: Engine, endpoint: Endpoint, http: httpx.AsyncClient
) -> None:
    endpoint.answers = [500] * 100
    invoice = _record_paid(engine)
    endpoint_id = _register(engine, invoice.caller, endpoint.url)
    # The endpoint was registered after the change: deliveries go where they went then.
    assert _rows(engine, EventDelivery, endpoint_id=endpoint_id) == []
    again = dataclasses.replace(invoice, revision=3, updated_at=datetime.now(UTC))
    event = InvoiceEvent.of(again)
    apply_snapshot(engine, again, [event])
    deliverer = Deliverer(engine, http, SETTINGS, None)
    await _run_until_settled(deliverer)

    [delivery] = _rows(engine, EventDelivery, endpoint_id=endpoint_id)
    attempts = _rows(engine, EventAttempt, endpoint_id=endpoint_id)
    assert delivery.status == "gave_up" and delivery.due_at is None
    assert [a.outcome for a in attempts] == ["failed"] * (len(attempts) - 1) + ["gave_up"]
    assert 3 <= len(attempts) == delivery.attempts == len(endpoint.received)
    # Each attempt was planned by the one before, after the schedule's wait (±20 %).
    for earlier, later in itertools.pairwise(attempts):
        assert earlier.next_attempt_at is not None
        assert later.attempted_at >= earlier.next_attempt_at
    assert {webhook_id for webhook_id, _ in endpoint.received} == {event.event_id}
    entries = _rows(engine, InvoiceTimelineEntry, invoice_id=invoice.invoice_id)
    assert [e.detail["outcome"] for e in entries if e.kind == TimelineKind.EVENT_DELIVERY] == [
        a.outcome for a in attempts
    ]


async def test_an_endpoint_that_answers_gone_is_disabled_and_not_tried_again(
    engine: Engine, endpoint: Endpoint, http: httpx.AsyncClient
) -> None:
    endpoint.answers = [503, 410]
    caller = f"c{uuid.uuid4().hex[:8]}"
    endpoint_id = _register(engine, caller, endpoint.url)
    invoice = _paid(caller)
    apply_snapshot(engine, invoice, [InvoiceEvent.of(invoice)])
    deliverer = Deliverer(engine, http, SETTINGS, None)
    await _run_until_settled(deliverer, rounds=10)

    [delivery] = _rows(engine, EventDelivery, endpoint_id=endpoint_id)
    assert (delivery.status, delivery.attempts) == ("endpoint_disabled", 2)
    [row] = _rows(engine, WebhookEndpoint, id=endpoint_id)
    assert not row.enabled and row.disabled_reason == "answered 410 Gone"
    assert len(endpoint.received) == 2


async def test_the_receipt_is_sent_once_with_its_message_id(
    engine: Engine, mailbox: Mailbox, http: httpx.AsyncClient
) -> None:
    invoice = _record_paid(engine)
    first = Deliverer(engine, http, SETTINGS, _mailer(mailbox.smtp_url))
    second = Deliverer(engine, http, SETTINGS, _mailer(mailbox.smtp_url))
    # Two workers' loops at once: one claims the email, the other finds nothing due.
    await asyncio.gather(first.scan_once(), second.scan_once())
    await asyncio.gather(first.idle(), second.idle())

    message_id = f"<receipt.{invoice.invoice_id}@payrecon.localhost>"
    [message] = mailbox.with_message_id(message_id)
    assert message["To"] == invoice.customer_email
    assert "NGN 2,500.00" in text_of(message)
    [row] = _rows(engine, CustomerEmail, invoice_id=invoice.invoice_id)
    assert (row.status, row.message_id, row.attempts) == ("sent", message_id, 1)
    [entry] = [
        e
        for e in _rows(engine, InvoiceTimelineEntry, invoice_id=invoice.invoice_id)
        if e.kind == TimelineKind.EMAIL_SENT
    ]
    assert entry.detail == {"kind": "receipt", "message_id": message_id}


async def test_smtp_down_leaves_the_email_due_again(
    engine: Engine, http: httpx.AsyncClient
) -> None:
    nothing_listening = f"smtp://{HOST}:{free_port()}"
    invoice = _record_paid(engine)
    deliverer = Deliverer(engine, http, SETTINGS, _mailer(nothing_listening))
    await deliverer.scan_once()
    await deliverer.idle()
    [row] = _rows(engine, CustomerEmail, invoice_id=invoice.invoice_id)
    assert (row.status, row.attempts, row.sent_at) == ("pending", 1, None)
    assert row.due_at is not None and row.due_at > datetime.now(UTC)
    assert row.error == "SMTPConnectError"


async def test_without_smtp_nothing_is_sent(
    engine: Engine, mailbox: Mailbox, http: httpx.AsyncClient
) -> None:
    invoice = _record_paid(engine)
    deliverer = Deliverer(engine, http, SETTINGS, None)
    await deliverer.scan_once()
    await deliverer.idle()
    assert mailbox.to(invoice.customer_email) == []
    [row] = _rows(engine, CustomerEmail, invoice_id=invoice.invoice_id)
    assert (row.status, row.due_at) == ("not_sent", None)


class _Refusing:
    """An SMTP server's answer to RCPT TO: `code` for every address."""

    def __init__(self, code: int) -> None:
        self.code = code

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        return f"{self.code} 5.1.1 no such mailbox" if self.code >= 500 else f"{self.code} later"


@pytest.fixture(params=[550, 451])
def refusing_server(request: pytest.FixtureRequest) -> Iterator[tuple[int, str]]:
    code: int = request.param
    port = free_port()
    controller = Controller(_Refusing(code), hostname=HOST, port=port, server_hostname="refusing")
    controller.start()
    yield code, f"smtp://{HOST}:{port}"
    controller.stop()


async def test_a_refused_address_is_final_only_when_the_server_says_so(
    engine: Engine, refusing_server: tuple[int, str], http: httpx.AsyncClient
) -> None:
    code, url = refusing_server
    invoice = _record_paid(engine)
    deliverer = Deliverer(engine, http, SETTINGS, _mailer(url))
    await deliverer.scan_once()
    await deliverer.idle()
    [row] = _rows(engine, CustomerEmail, invoice_id=invoice.invoice_id)
    if code >= 500:
        # Permanent: not tried again, and the address stays out of the record.
        assert (row.status, row.due_at) == ("failed", None)
        assert row.error is not None and invoice.customer_email not in row.error
    else:
        # Greylisting, a full mailbox: tried again later.
        assert row.status == "pending" and row.due_at is not None


async def test_an_operator_event_is_delivered_but_on_no_merchant_timeline(
    engine: Engine, endpoint: Endpoint, http: httpx.AsyncClient
) -> None:
    # The invoice's owner can read its timeline; a discrepancy found on it is operators'.
    invoice = _record_paid(engine)
    operator_endpoint = _register(engine, "ops", endpoint.url)
    with DbSession(engine) as session:
        now = datetime.now(UTC)
        staged = outbox.stage(
            session,
            OutboundEvent(
                id=f"evt_dsc_{uuid.uuid4().hex[:12]}",
                type=EventType.RECONCILIATION_DISCREPANCY.value,
                caller=OPERATORS,
                invoice_id=invoice.invoice_id,
                created_at=now,
                payload='{"type":"reconciliation.discrepancy"}',
            ),
            now,
            operators=frozenset({"ops"}),
        )
        session.commit()
    assert staged
    operating = SETTINGS.model_copy(update={"payrecon_api_keys": [ApiKey.parse("ops:k:operator")]})
    await _run_until_settled(Deliverer(engine, http, operating, None), rounds=3)

    [attempt] = _rows(engine, EventAttempt, endpoint_id=operator_endpoint)
    assert attempt.outcome == "delivered"
    kinds = [e.kind for e in _rows(engine, InvoiceTimelineEntry, invoice_id=invoice.invoice_id)]
    assert TimelineKind.EVENT_DELIVERY not in kinds


@pytest.mark.parametrize("compressed", [True, False])
async def test_a_merchants_answer_is_never_read_whole(
    engine: Engine, http: httpx.AsyncClient, compressed: bool
) -> None:
    """A 500 whose body is 64 MiB once decompressed (gzip, 64 KiB sent), or 64 MiB sent
    plainly: the worker, which runs invoices' workflows too, holds neither."""
    decoded_size = 64 * 1024 * 1024
    # Made before memory is traced: the server runs in this process.
    bomb = gzip.compress(b"\0" * decoded_size)
    asked_encodings: list[str] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        headers = {
            k.lower(): v.strip() for k, _, v in (line.partition(":") for line in head.split("\r\n"))
        }
        await reader.readexactly(int(headers["content-length"]))
        asked_encodings.append(headers.get("accept-encoding", ""))
        try:
            if compressed:
                writer.write(
                    b"HTTP/1.1 500 X\r\ncontent-encoding: gzip\r\n"
                    + f"content-length: {len(bomb)}\r\n\r\n".encode()
                    + bomb
                )
            else:
                writer.write(f"HTTP/1.1 500 X\r\ncontent-length: {decoded_size}\r\n\r\n".encode())
                for _ in range(decoded_size // 65536):
                    writer.write(b"x" * 65536)
                    await writer.drain()
            await writer.drain()
        except ConnectionError:
            pass  # payrecon stopped reading, as it should
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hooks"
    invoice = _paid(f"c{uuid.uuid4().hex[:8]}")
    endpoint_id = _register(engine, invoice.caller, url)
    apply_snapshot(engine, invoice, [InvoiceEvent.of(invoice)])
    deliverer = Deliverer(engine, http, SETTINGS, None)
    tracemalloc.start()
    try:
        await deliverer.scan_once()
        await deliverer.idle()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        server.close()

    assert asked_encodings == ["identity"]
    [attempt] = _rows(engine, EventAttempt, endpoint_id=endpoint_id)
    # Its status alone is kept: nothing the far side wrote.
    assert (attempt.status_code, attempt.error) == (500, "http_500")
    assert peak < 8 * 1024 * 1024, f"{peak / 1024 / 1024:.0f} MiB held"


async def test_a_failed_connection_is_kept_as_its_class_alone(
    engine: Engine, http: httpx.AsyncClient
) -> None:
    invoice = _paid(f"c{uuid.uuid4().hex[:8]}")
    endpoint_id = _register(engine, invoice.caller, f"http://127.0.0.1:{free_port()}/hooks")
    apply_snapshot(engine, invoice, [InvoiceEvent.of(invoice)])
    deliverer = Deliverer(engine, http, SETTINGS, None)
    await deliverer.scan_once()
    await deliverer.idle()
    [attempt] = _rows(engine, EventAttempt, endpoint_id=endpoint_id)
    assert (attempt.status_code, attempt.error) == (None, "connection_failed")


def test_an_endpoints_reach_follows_its_callers_role_now(engine: Engine) -> None:
    # Made while its caller was no operator; the caller is one now, then no longer.
    caller = f"c{uuid.uuid4().hex[:8]}"
    endpoint_id = _register(engine, caller, "http://127.0.0.1:9/hooks")
    discrepancy = EventType.RECONCILIATION_DISCREPANCY
    with DbSession(engine) as session:
        promoted = outbox.targets(session, OPERATORS, discrepancy, operators={caller})
        demoted = outbox.targets(session, OPERATORS, discrepancy, operators={"someone-else"})
        own = outbox.targets(session, caller, EventType.INVOICE_PAID, operators=frozenset())
    assert endpoint_id in promoted
    assert endpoint_id not in demoted
    assert endpoint_id in own
