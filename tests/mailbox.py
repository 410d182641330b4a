"""A real SMTP server for the tests (aiosmtpd, in a thread of its own, on a free port on
127.0.0.1) and what it received: the session's `mailbox` fixture (tests/conftest.py).

The mailbox is shared by the whole session: a test looks for its own messages, by the
recipient or the Message-ID it expects, never at the count of everything received.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from devstack.mailcatcher import HOST, Inbox, Received
from devstack.processes import free_port
from domain.invoice import InvoiceSnapshot, InvoiceStatus

WAIT_SECONDS = 15.0
POLL_SECONDS = 0.05


class Mailbox:
    def __init__(self) -> None:
        self.port = free_port()
        self._inbox = Inbox()
        # server_hostname: what the server greets with (the default looks up this host's
        # FQDN, which can be slow).
        self._controller = Controller(
            self._inbox, hostname=HOST, port=self.port, server_hostname="mailbox.localhost"
        )

    @property
    def smtp_url(self) -> str:
        """For SMTP_URL (Settings.smtp_url)."""
        return f"smtp://{HOST}:{self.port}"

    def start(self) -> Mailbox:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    @property
    def received(self) -> list[Received]:
        """Everything received so far, oldest first, with its envelope and raw bytes."""
        return self._inbox.messages

    def to(self, recipient: str) -> list[EmailMessage]:
        """The messages whose envelope went to `recipient`, oldest first."""
        wanted = recipient.lower()
        return [
            item.message
            for item in self.received
            if wanted in (address.lower() for address in item.rcpt_tos)
        ]

    def with_message_id(self, message_id: str) -> list[EmailMessage]:
        """Every copy received with this Message-ID, oldest first."""
        return [item.message for item in self.received if item.message_id == message_id]

    async def wait_for_to(
        self, recipient: str, count: int = 1, within: float = WAIT_SECONDS
    ) -> list[EmailMessage]:
        """The messages to `recipient` once there are at least `count` of them."""
        return await self._wait(lambda: self.to(recipient), count, within, f"to {recipient}")

    async def wait_for_message_id(
        self, message_id: str, count: int = 1, within: float = WAIT_SECONDS
    ) -> list[EmailMessage]:
        """The copies with `message_id` once there are at least `count` of them."""
        return await self._wait(
            lambda: self.with_message_id(message_id), count, within, f"with {message_id}"
        )

    async def _wait(
        self,
        found: Callable[[], list[EmailMessage]],
        count: int,
        within: float,
        what: str,
    ) -> list[EmailMessage]:
        deadline = time.monotonic() + within
        while len(messages := found()) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{len(messages)} message(s) {what} after {within:.0f} s, not {count}"
                )
            await asyncio.sleep(POLL_SECONDS)
        return messages


def text_of(message: EmailMessage) -> str:
    """The message's plain-text part."""
    return _part(message, "plain")


def html_of(message: EmailMessage) -> str:
    """The message's HTML part."""
    return _part(message, "html")


def _part(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert isinstance(part, EmailMessage), f"no text/{subtype} part"
    content = part.get_content()
    assert isinstance(content, str)
    return content


PAID_AT = datetime(2026, 11, 23, 1, 19, 48, 131000, tzinfo=UTC)


def paid_invoice(invoice_id: str, **changes: Any) -> InvoiceSnapshot:
    """A paid invoice as its workflow holds it: NGN 2,500.00 (250000 kobo), for `changes`
    to vary."""
    created = PAID_AT - timedelta(minutes=5)
    invoice = InvoiceSnapshot(
        invoice_id=invoice_id,
        workflow_id=f"invoice-{invoice_id}",
        status=InvoiceStatus.PAID,
        customer_email=f"{invoice_id}@example.com",
        amount=250000,
        currency="NGN",
        due_at=created + timedelta(days=1),
        created_at=created,
        updated_at=PAID_AT,
        revision=2,
        fingerprint="f" * 64,
        description="Annual plan",
        authorization_url=f"https://checkout.paystack.com/{invoice_id}",
        access_code="acc_1",
        paid_at=PAID_AT,
        amount_paid=250000,
        paystack_transaction_id=4100000000,
        paystack_reference=invoice_id,
    )
    return dataclasses.replace(invoice, **changes)
