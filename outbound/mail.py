"""The customer's emails: the receipt once an invoice is paid, and the invoice with its
payment link when asked for at creation. Rendered from templates/ (text and HTML), sent over
SMTP (`SMTP_URL`). outbound/deliverer.py decides when, and records what was sent.

SMTP has no idempotency key, so each email carries a Message-ID made from the invoice and
the kind: a copy sent again after a crash is recognisably the same email.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from domain.events import EmailKind
from domain.invoice import InvoiceSnapshot

DEFAULT_PORTS = {"smtp": 25, "smtps": 465}
# Below the activity's 30 s start-to-close timeout (workflows/events.py): a hung server
# fails the attempt here, with a clear error, and Temporal retries it.
SMTP_TIMEOUT_SECONDS = 20.0
# Used when the From address has no domain to put in the Message-ID.
FALLBACK_DOMAIN = "payrecon.localhost"
SUBJECT_CHARS = 80
SUBJECTS = {EmailKind.RECEIPT: "Receipt for {what}", EmailKind.INVOICE: "Invoice for {what}"}

TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    # HTML escaped (a description is the caller's text), the plain text as written.
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


# --- SMTP_URL ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SmtpOptions:
    """Where and how to reach the SMTP server, from `SMTP_URL`."""

    hostname: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    # smtps://: TLS from the first byte. ?starttls=true: plain, then upgraded before AUTH.
    use_tls: bool = False
    start_tls: bool = False

    @classmethod
    def parse(cls, url: str) -> SmtpOptions:
        """`smtp://[user:password@]host[:port][?starttls=true]` or `smtps://…`. The errors
        never quote the URL: it may hold the password."""
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS:
            raise ValueError("SMTP_URL must start with smtp:// or smtps://")
        if not parts.hostname:
            raise ValueError("SMTP_URL needs a host: smtp://host[:port]")
        try:
            port = parts.port or DEFAULT_PORTS[scheme]
        except ValueError:
            raise ValueError("SMTP_URL has a port that is not a number from 0 to 65535") from None
        if parts.path not in ("", "/"):
            raise ValueError("SMTP_URL takes no path")
        query = parse_qs(parts.query, keep_blank_values=True)
        if set(query) - {"starttls"}:
            raise ValueError("SMTP_URL takes one option, ?starttls=true")
        starttls = [value.lower() for value in query.get("starttls", [])]
        if any(value not in ("true", "false") for value in starttls):
            raise ValueError("SMTP_URL's starttls is true or false")
        start_tls = "true" in starttls
        if start_tls and scheme == "smtps":
            raise ValueError("SMTP_URL: smtps:// is TLS already; starttls is for smtp://")
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password is not None else None
        options = cls(
            hostname=parts.hostname,
            port=port,
            username=username,
            password=password,
            use_tls=scheme == "smtps",
            start_tls=start_tls,
        )
        if username is not None and not options.encrypted and not _loopback(parts.hostname):
            raise ValueError(
                "SMTP_URL would send its password in clear: use smtps://, or ?starttls=true"
            )
        return options

    @property
    def encrypted(self) -> bool:
        return self.use_tls or self.start_tls


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Mailer:
    """Sends one message per call, on a connection of its own: emails are few (two per
    invoice at most), and a fresh connection has no state to go stale between them."""

    def __init__(self, options: SmtpOptions, *, timeout: float = SMTP_TIMEOUT_SECONDS) -> None:
        self._options = options
        self._timeout = timeout

    def __repr__(self) -> str:
        # Never the password (it is left out of the options' repr, too).
        return f"Mailer({self._options.hostname}:{self._options.port})"

    async def send(self, message: EmailMessage) -> None:
        """Raises aiosmtplib.SMTPException (a subclass) when the server does not take it."""
        options = self._options
        await aiosmtplib.send(
            message,
            hostname=options.hostname,
            port=options.port,
            username=options.username,
            password=options.password,
            use_tls=options.use_tls,
            # False, not None: no silent upgrade attempt when the URL did not ask for one.
            start_tls=options.start_tls,
            timeout=self._timeout,
        )


# --- the messages ------------------------------------------------------------------------


def message_id_for(invoice_id: str, kind: EmailKind, from_address: str) -> str:
    """The same for every copy of one invoice's email of one kind, so mail systems (and our
    tests) see a copy sent again as the same email: `<receipt.inv-123@payrecon.localhost>`."""
    _, at, domain = parseaddr(from_address)[1].rpartition("@")
    domain = domain.strip().lower() if at else ""
    return f"<{kind.value}.{invoice_id}@{domain or FALLBACK_DOMAIN}>"


def format_amount(amount: int, currency: str) -> str:
    """Paystack's amounts are in the subunit (kobo, pesewas, cents), a hundredth of the unit
    in every currency it settles: 250000 NGN -> "NGN 2,500.00"."""
    sign = "-" if amount < 0 else ""
    whole, hundredths = divmod(abs(amount), 100)
    return f"{currency} {sign}{whole:,}.{hundredths:02d}"


def format_date(moment: datetime) -> str:
    """`23 November 2026, 01:19 UTC`: always UTC, whatever zone the snapshot carries."""
    utc = moment.astimezone(UTC)
    return f"{utc.day} {utc:%B %Y, %H:%M} UTC"


def compose(
    invoice: InvoiceSnapshot,
    kind: EmailKind,
    from_address: str,
    *,
    now: datetime | None = None,
) -> EmailMessage:
    """The email to the invoice's customer: plain text with an HTML alternative."""
    values = _template_values(invoice, kind)
    message = EmailMessage()
    message["From"] = from_address
    message["To"] = invoice.customer_email
    message["Subject"] = _subject(kind, values["what"])
    message["Date"] = format_datetime(now or datetime.now(UTC))
    message["Message-ID"] = message_id_for(invoice.invoice_id, kind, from_address)
    # RFC 3834: sent by a program, so auto-responders do not answer it.
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(TEMPLATES.get_template(f"{kind.value}.txt").render(values))
    message.add_alternative(
        TEMPLATES.get_template(f"{kind.value}.html").render(values), subtype="html"
    )
    return message


def _template_values(invoice: InvoiceSnapshot, kind: EmailKind) -> dict[str, Any]:
    paid = invoice.amount_paid if kind is EmailKind.RECEIPT else None
    # A receipt is sent for a paid invoice, which has paid_at; updated_at is when it became so.
    paid_at = invoice.paid_at or invoice.updated_at
    return {
        "invoice_id": invoice.invoice_id,
        "what": invoice.description or invoice.invoice_id,
        "amount": format_amount(paid if paid is not None else invoice.amount, invoice.currency),
        "reference": invoice.paystack_reference or invoice.invoice_id,
        "paid_at": format_date(paid_at),
        "due_at": format_date(invoice.due_at),
        "payment_link": invoice.authorization_url,
    }


def _subject(kind: EmailKind, what: str) -> str:
    # One line, however the description was written: a header may not hold a line break.
    line = " ".join(what.split())
    if len(line) > SUBJECT_CHARS:
        line = line[: SUBJECT_CHARS - 1].rstrip() + "…"
    return SUBJECTS[kind].format(what=line)
