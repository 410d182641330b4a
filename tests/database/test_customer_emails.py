"""The activity that emails the customer, against a real SMTP server (the session's
`mailbox`, aiosmtpd) and a real database of each kind: one send per invoice and kind, the
same Message-ID on the copy a crash makes, and SMTP errors raised for Temporal to retry."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import Engine, delete
from sqlmodel import Session as DbSession
from sqlmodel import col, select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.email import CustomerEmailInput, EmailActivities
from db.models import CustomerEmail, InvoiceTimelineEntry
from db.timeline import TimelineKind
from devstack.mailcatcher import HOST
from devstack.processes import free_port
from domain.events import EmailKind
from outbound.mail import Mailer, SmtpOptions
from tests.mailbox import Mailbox, paid_invoice, text_of

FROM = "payrecon <receipts@payrecon.localhost>"


def _mailer(url: str) -> Mailer:
    # A short timeout: the SMTP-down test should not wait the production 20 s.
    return Mailer(SmtpOptions.parse(url), timeout=5.0)


@pytest.fixture
def emails(engine: Engine, mailbox: Mailbox) -> EmailActivities:
    return EmailActivities(engine, _mailer(mailbox.smtp_url), FROM)


def _receipt() -> CustomerEmailInput:
    """A paid invoice of this test's own: the session's mailbox holds every test's mail."""
    return CustomerEmailInput(paid_invoice(f"inv-{uuid.uuid4().hex[:16]}"), EmailKind.RECEIPT)


async def _send(emails: EmailActivities, email: CustomerEmailInput) -> str | None:
    result: str | None = await ActivityEnvironment().run(emails.send_customer_email, email)
    return result


def _recorded(engine: Engine, invoice_id: str) -> list[CustomerEmail]:
    with DbSession(engine) as session:
        query = select(CustomerEmail).where(CustomerEmail.invoice_id == invoice_id)
        return list(session.exec(query))


def _timeline(engine: Engine, invoice_id: str) -> list[InvoiceTimelineEntry]:
    with DbSession(engine) as session:
        query = (
            select(InvoiceTimelineEntry)
            .where(InvoiceTimelineEntry.invoice_id == invoice_id)
            .order_by(col(InvoiceTimelineEntry.id))
        )
        return list(session.exec(query))


async def test_sends_the_receipt_once_and_records_it(
    engine: Engine, mailbox: Mailbox, emails: EmailActivities
) -> None:
    email = _receipt()
    invoice = email.invoice
    first = await _send(emails, email)
    again = await _send(emails, email)

    assert first == again == f"<receipt.{invoice.invoice_id}@payrecon.localhost>"
    # The server took it before the activity returned: nothing more is on its way.
    [message] = mailbox.with_message_id(first)
    assert message["To"] == invoice.customer_email
    assert "NGN 2,500.00" in text_of(message)
    [row] = _recorded(engine, invoice.invoice_id)
    assert (row.kind, row.message_id) == ("receipt", first)
    [entry] = _timeline(engine, invoice.invoice_id)
    assert entry.kind == TimelineKind.EMAIL_SENT.value
    assert entry.detail == {"kind": "receipt", "message_id": first}


async def test_each_kind_is_its_own_email(mailbox: Mailbox, emails: EmailActivities) -> None:
    receipt = _receipt()
    invoice_email = CustomerEmailInput(receipt.invoice, EmailKind.INVOICE)
    sent = {await _send(emails, receipt), await _send(emails, invoice_email)}
    assert len(sent) == 2
    assert len(mailbox.to(receipt.invoice.customer_email)) == 2


async def test_a_crash_before_the_record_resends_with_the_same_message_id(
    engine: Engine, mailbox: Mailbox, emails: EmailActivities
) -> None:
    email = _receipt()
    message_id = await _send(emails, email)
    assert message_id is not None
    # The worker died after the server took the message, before the row was committed.
    with DbSession(engine) as session:
        session.execute(
            delete(CustomerEmail).where(col(CustomerEmail.invoice_id) == email.invoice.invoice_id)
        )
        session.commit()

    assert await _send(emails, email) == message_id
    copies = mailbox.with_message_id(message_id)
    assert len(copies) == 2
    assert text_of(copies[0]) == text_of(copies[1])
    [row] = _recorded(engine, email.invoice.invoice_id)
    assert row.message_id == message_id


async def test_concurrent_sends_record_one_email(
    engine: Engine, mailbox: Mailbox, emails: EmailActivities
) -> None:
    email = _receipt()
    results = await asyncio.gather(_send(emails, email), _send(emails, email))
    assert results[0] == results[1] is not None
    assert len(_recorded(engine, email.invoice.invoice_id)) == 1
    # Both may have sent before either recorded it: then both copies carry one Message-ID.
    assert 1 <= len(mailbox.to(email.invoice.customer_email)) <= 2
    assert {message["Message-ID"] for message in mailbox.to(email.invoice.customer_email)} == {
        results[0]
    }


async def test_smtp_down_raises_and_records_nothing(engine: Engine) -> None:
    nothing_listening = f"smtp://{HOST}:{free_port()}"
    emails = EmailActivities(engine, _mailer(nothing_listening), FROM)
    email = _receipt()
    with pytest.raises(aiosmtplib.SMTPConnectError):
        await _send(emails, email)
    assert _recorded(engine, email.invoice.invoice_id) == []
    assert _timeline(engine, email.invoice.invoice_id) == []


async def test_without_smtp_nothing_is_sent_or_recorded(engine: Engine, mailbox: Mailbox) -> None:
    emails = EmailActivities(engine, None, FROM)
    email = _receipt()
    assert await _send(emails, email) is None
    assert mailbox.to(email.invoice.customer_email) == []
    assert _recorded(engine, email.invoice.invoice_id) == []


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
    engine: Engine, refusing_server: tuple[int, str]
) -> None:
    code, url = refusing_server
    emails = EmailActivities(engine, _mailer(url), FROM)
    email = _receipt()
    if code >= 500:
        # Permanent: Temporal must not retry it, and the address stays out of the error.
        with pytest.raises(ApplicationError) as refused:
            await _send(emails, email)
        assert refused.value.non_retryable
        assert email.invoice.customer_email not in str(refused.value)
    else:
        # Greylisting, a full mailbox: Temporal retries.
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
            await _send(emails, email)
    assert _recorded(engine, email.invoice.invoice_id) == []
