"""The activity that emails an invoice's customer its receipt or its invoice
(workflows/events.py decides when; outbound/mail.py composes and sends).

SMTP has no idempotency, so a `customer_emails` row, unique per invoice and kind, records
each email once sent: while it exists the activity sends nothing more. The row is written
after the server took the message; a crash in between means the retry sends again, with
the same Message-ID, so the mail systems on the way (and the tests) can tell it is the same
email. That is the one case of a second copy.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

import aiosmtplib
import structlog
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from config import Settings
from db import timeline
from db.engine import write_session
from db.models import CustomerEmail
from db.timeline import TimelineKind
from domain.events import EmailKind
from domain.invoice import InvoiceSnapshot
from outbound.mail import Mailer, SmtpOptions, compose, message_id_for

log = structlog.get_logger(__name__)

PERMANENT_FAILURE = 500


@dataclass
class CustomerEmailInput:
    invoice: InvoiceSnapshot
    kind: EmailKind


def make_mailer(settings: Settings) -> Mailer | None:
    """The worker's mailer; None when SMTP_URL is unset (no emails are sent)."""
    if settings.smtp_url is None:
        return None
    return Mailer(SmtpOptions.parse(settings.smtp_url.get_secret_value()))


class EmailActivities:
    def __init__(self, engine: Engine, mailer: Mailer | None, from_address: str) -> None:
        self._engine = engine
        self._mailer = mailer
        self._from = from_address

    @activity.defn(name="send_customer_email")
    async def send_customer_email(self, email: CustomerEmailInput) -> str | None:
        """The Message-ID sent (or sent before); None when SMTP is not configured."""
        invoice, kind = email.invoice, email.kind
        if self._mailer is None:
            log.info("email.not_configured", invoice_id=invoice.invoice_id, kind=kind.value)
            return None
        # The database calls are blocking: in a thread, off the worker's event loop.
        sent = await asyncio.to_thread(self._sent_before, invoice.invoice_id, kind)
        if sent is not None:
            log.info("email.sent_before", invoice_id=invoice.invoice_id, kind=kind.value)
            return sent
        message = compose(invoice, kind, self._from)
        message_id = message_id_for(invoice.invoice_id, kind, self._from)
        try:
            await self._mailer.send(message)
        except aiosmtplib.SMTPRecipientsRefused as error:
            # A 5xx for the customer's address is permanent: retrying would send nothing.
            # Anything else (a 4xx: greylisting, a full mailbox) is retried by Temporal.
            codes = [refusal.code for refusal in error.recipients]
            if codes and all(code >= PERMANENT_FAILURE for code in codes):
                # Not the address itself: the error goes into the workflow's history.
                raise ApplicationError(
                    f"the customer's address was refused ({', '.join(map(str, codes))})",
                    type="RecipientRefused",
                    non_retryable=True,
                ) from None
            raise
        first = await asyncio.to_thread(self._record, invoice.invoice_id, kind, message_id)
        log.info(
            "email.sent",
            invoice_id=invoice.invoice_id,
            kind=kind.value,
            message_id=message_id,
            # False: an attempt running at the same time recorded it first (one Message-ID).
            recorded=first,
        )
        return message_id

    def _sent_before(self, invoice_id: str, kind: EmailKind) -> str | None:
        with Session(self._engine) as session:
            query = select(CustomerEmail.message_id).where(
                CustomerEmail.invoice_id == invoice_id, CustomerEmail.kind == kind.value
            )
            return session.exec(query).first()

    def _record(self, invoice_id: str, kind: EmailKind, message_id: str) -> bool:
        """Records the email and its timeline entry in one transaction; False when another
        attempt, sending at the same time, recorded it first."""
        at = datetime.now(UTC)
        try:
            with write_session(self._engine) as session:
                session.add(
                    CustomerEmail(
                        invoice_id=invoice_id, kind=kind.value, message_id=message_id, sent_at=at
                    )
                )
                timeline.add(
                    session,
                    invoice_id,
                    TimelineKind.EMAIL_SENT,
                    at,
                    kind=kind.value,
                    message_id=message_id,
                )
        except IntegrityError:
            # The unique index: another attempt recorded it between our check and now.
            if self._sent_before(invoice_id, kind) is None:
                raise
            return False
        return True
