"""The customer's emails, composed: SMTP_URL read into connection options, the Message-ID
every copy of one email shares, and the receipt and invoice as rendered."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from domain.events import EmailKind
from outbound.mail import Mailer, SmtpOptions, compose, format_amount, message_id_for
from tests.mailbox import html_of, paid_invoice, text_of

FROM = "Acme Shop <receipts@shop.example>"
PASSWORD = "p@ss:w/rd%"


class TestSmtpUrl:
    def test_plain_with_a_port(self) -> None:
        options = SmtpOptions.parse("smtp://mail.example:2525")
        assert options == SmtpOptions(hostname="mail.example", port=2525)
        assert not options.use_tls and not options.start_tls
        assert options.username is None and options.password is None

    def test_default_ports(self) -> None:
        assert SmtpOptions.parse("smtp://mail.example").port == 25
        assert SmtpOptions.parse("smtps://mail.example").port == 465

    def test_smtps_is_tls_from_the_start_with_decoded_credentials(self) -> None:
        options = SmtpOptions.parse("smtps://ada%40shop.example:p%40ss%3Aw%2Frd%25@mail.example")
        assert options.use_tls and not options.start_tls
        assert options.username == "ada@shop.example"
        assert options.password == PASSWORD
        assert options.port == 465

    def test_starttls_upgrades_a_plain_connection(self) -> None:
        options = SmtpOptions.parse("smtp://user:secret@mail.example:587?starttls=true")
        assert options.start_tls and not options.use_tls
        assert (options.hostname, options.port, options.username) == ("mail.example", 587, "user")
        assert not SmtpOptions.parse("smtp://mail.example?starttls=false").start_tls

    def test_credentials_in_clear_only_on_this_machine(self) -> None:
        with pytest.raises(ValueError, match="in clear"):
            SmtpOptions.parse("smtp://user:secret@mail.example:587")
        local = SmtpOptions.parse("smtp://user:secret@127.0.0.1:1025")
        assert local.password == "secret"

    @pytest.mark.parametrize(
        ("url", "problem"),
        [
            ("http://mail.example", "smtp:// or smtps://"),
            ("mail.example:25", "smtp:// or smtps://"),
            ("smtp://", "needs a host"),
            ("smtp://mail.example:99999", "port"),
            ("smtps://mail.example?starttls=true", "TLS already"),
            ("smtp://mail.example?tls=yes", "one option"),
            ("smtp://mail.example?starttls=maybe", "true or false"),
            ("smtp://mail.example/inbox", "no path"),
        ],
    )
    def test_refuses_what_it_cannot_use(self, url: str, problem: str) -> None:
        with pytest.raises(ValueError, match=problem):
            SmtpOptions.parse(url)

    def test_errors_and_reprs_never_show_the_password(self) -> None:
        with pytest.raises(ValueError) as refused:
            SmtpOptions.parse("smtp://user:hunter2-secret@mail.example")
        assert "hunter2" not in str(refused.value)
        options = SmtpOptions.parse("smtps://user:hunter2-secret@mail.example")
        assert "hunter2" not in repr(options)
        assert "hunter2" not in repr(Mailer(options))


class TestMessageId:
    def test_the_same_for_every_copy_of_one_invoice_and_kind(self) -> None:
        first = message_id_for("inv-123", EmailKind.RECEIPT, FROM)
        assert first == message_id_for("inv-123", EmailKind.RECEIPT, FROM)
        assert first == "<receipt.inv-123@shop.example>"

    def test_differs_by_kind_and_invoice(self) -> None:
        ids = {
            message_id_for(invoice_id, kind, FROM)
            for invoice_id in ("inv-1", "inv-2")
            for kind in EmailKind
        }
        assert len(ids) == 4

    def test_domain_from_the_from_address(self) -> None:
        assert message_id_for("inv-1", EmailKind.INVOICE, "bills@Pay.Example").endswith(
            "@pay.example>"
        )
        assert message_id_for("inv-1", EmailKind.INVOICE, "payrecon").endswith(
            "@payrecon.localhost>"
        )


class TestAmounts:
    @pytest.mark.parametrize(
        ("amount", "currency", "shown"),
        [
            (250000, "NGN", "NGN 2,500.00"),
            (10, "GHS", "GHS 0.10"),
            (100, "USD", "USD 1.00"),
            (123456789, "ZAR", "ZAR 1,234,567.89"),
        ],
    )
    def test_major_units_with_the_currency(self, amount: int, currency: str, shown: str) -> None:
        assert format_amount(amount, currency) == shown


class TestReceipt:
    def test_headers(self) -> None:
        sent_at = datetime(2026, 11, 23, 1, 20, tzinfo=UTC)
        message = compose(paid_invoice("inv-123"), EmailKind.RECEIPT, FROM, now=sent_at)
        assert message["From"] == FROM
        assert message["To"] == "inv-123@example.com"
        assert message["Subject"] == "Receipt for Annual plan"
        assert message["Message-ID"] == "<receipt.inv-123@shop.example>"
        assert message["Date"].datetime == sent_at
        assert message["Auto-Submitted"] == "auto-generated"
        assert message.get_content_type() == "multipart/alternative"

    @pytest.mark.parametrize("part", [text_of, html_of])
    def test_carries_amount_description_reference_and_date(
        self, part: Callable[[EmailMessage], str]
    ) -> None:
        invoice = paid_invoice("inv-123", paystack_reference="inv-123.2")
        content = part(_reparsed(compose(invoice, EmailKind.RECEIPT, FROM)))
        for expected in (
            "NGN 2,500.00",
            "Annual plan",
            "inv-123.2",
            "23 November 2026, 01:19 UTC",
            "inv-123",
        ):
            assert expected in content

    def test_the_paid_date_is_shown_in_utc(self) -> None:
        lagos = timezone(timedelta(hours=1))
        invoice = paid_invoice("inv-1", paid_at=datetime(2026, 11, 23, 2, 19, tzinfo=lagos))
        assert "23 November 2026, 01:19 UTC" in text_of(compose(invoice, EmailKind.RECEIPT, FROM))

    def test_the_amount_paid_is_what_it_shows(self) -> None:
        invoice = paid_invoice("inv-1", amount_paid=250001)
        assert "NGN 2,500.01" in text_of(compose(invoice, EmailKind.RECEIPT, FROM))

    def test_without_a_description_it_names_the_invoice(self) -> None:
        message = compose(paid_invoice("inv-9", description=None), EmailKind.RECEIPT, FROM)
        assert message["Subject"] == "Receipt for inv-9"
        assert "For:          inv-9" in text_of(message)

    def test_html_escapes_the_description_and_text_keeps_it(self) -> None:
        description = "<script>alert('x')</script> & co"
        message = compose(paid_invoice("inv-1", description=description), EmailKind.RECEIPT, FROM)
        html = html_of(message)
        assert "<script>" not in html
        assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co" in html
        assert description in text_of(message)

    def test_a_description_with_line_breaks_makes_a_one_line_subject(self) -> None:
        invoice = paid_invoice("inv-1", description="Line one\r\nBcc: someone@evil.example")
        message = compose(invoice, EmailKind.RECEIPT, FROM)
        assert message["Subject"] == "Receipt for Line one Bcc: someone@evil.example"
        assert message["Bcc"] is None
        assert "\n" not in message["Subject"]


class TestInvoiceEmail:
    def test_carries_amount_description_due_date_and_link(self) -> None:
        invoice = paid_invoice("inv-7")
        message = _reparsed(compose(invoice, EmailKind.INVOICE, FROM))
        assert message["Subject"] == "Invoice for Annual plan"
        assert message["Message-ID"] == "<invoice.inv-7@shop.example>"
        for content in (text_of(message), html_of(message)):
            assert "NGN 2,500.00" in content
            assert "Annual plan" in content
            assert "24 November 2026, 01:14 UTC" in content
            assert "https://checkout.paystack.com/inv-7" in content
        assert 'href="https://checkout.paystack.com/inv-7"' in html_of(message)


def _reparsed(message: EmailMessage) -> EmailMessage:
    """The message as a mail server receives it: serialised, then parsed."""
    parsed = message_from_bytes(bytes(message), _class=EmailMessage, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed
