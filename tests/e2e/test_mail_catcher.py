"""`make run`'s mail catcher (devstack/mailcatcher.py) as `make run` starts it, a process of
its own: a receipt sent to its SMTP port shows on its page and in its JSON, newest first,
its HTML shown sandboxed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devstack.processes import Service, free_port, python_module, wait_for_http
from domain.events import EmailKind
from outbound.mail import Mailer, SmtpOptions, compose
from tests.mailbox import paid_invoice

FROM = "payrecon <receipts@payrecon.localhost>"


@pytest.fixture
def catcher(tmp_path: Path) -> Iterator[tuple[str, str]]:
    smtp_port, http_port = free_port(), free_port()
    service = Service(
        "mailcatcher",
        python_module(
            "devstack.mailcatcher", "--smtp-port", str(smtp_port), "--http-port", str(http_port)
        ),
        log_path=tmp_path / "mailcatcher.log",
    ).start()
    try:
        url = f"http://127.0.0.1:{http_port}"
        wait_for_http(f"{url}/healthz", timeout=30, process=service.process)
        yield f"smtp://127.0.0.1:{smtp_port}", url
    finally:
        service.stop()


async def test_shows_what_it_received_newest_first(catcher: tuple[str, str]) -> None:
    smtp_url, page_url = catcher
    mailer = Mailer(SmtpOptions.parse(smtp_url))
    first = compose(paid_invoice("inv-first"), EmailKind.RECEIPT, FROM)
    second = compose(
        paid_invoice("inv-second", description="<b>Bold</b> plan"), EmailKind.INVOICE, FROM
    )
    await mailer.send(first)
    await mailer.send(second)

    async with httpx.AsyncClient(base_url=page_url, timeout=10) as client:
        listed = (await client.get("/messages")).json()
        page = await client.get("/")
        html = await client.get(f"/messages/{listed[0]['number']}/html")
        text = await client.get(f"/messages/{listed[1]['number']}/text")
        missing = await client.get("/messages/999/text")
        cleared = await client.delete("/messages")
        after = (await client.get("/messages")).json()

    assert [item["message_id"] for item in listed] == [
        "<invoice.inv-second@payrecon.localhost>",
        "<receipt.inv-first@payrecon.localhost>",
    ]
    assert listed[1]["to"] == "inv-first@example.com"
    assert listed[1]["subject"] == "Receipt for Annual plan"
    assert "NGN 2,500.00" in listed[1]["text"] and "NGN 2,500.00" in listed[1]["html"]

    assert page.status_code == 200
    # Newest first, and the caller's text escaped on the catcher's own page too.
    assert page.text.index("inv-second") < page.text.index("inv-first")
    assert "Invoice for &lt;b&gt;Bold&lt;/b&gt; plan" in page.text
    assert "&lt;receipt.inv-first@payrecon.localhost&gt;" in page.text

    assert html.headers["content-type"].startswith("text/html")
    assert html.headers["content-security-policy"].startswith("sandbox")
    assert "https://checkout.paystack.com/inv-second" in html.text
    assert "Reference:    inv-first (Paystack)" in text.text
    assert missing.status_code == 404
    assert cleared.status_code == 204 and after == []
