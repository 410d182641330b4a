"""A local mail catcher: an SMTP server that keeps every message in memory, and a page to
read them in a browser. `make run` points the worker's SMTP_URL at it, so the customers'
receipts and invoices can be seen without sending anything anywhere.

    python -m devstack.mailcatcher --smtp-port 1025 --http-port 8025

  /                          the messages, newest first (from, to, subject, Message-ID, date)
  /messages                  the same as JSON, with each message's text and HTML
  /messages/{n}/text|html|raw  one message's plain text, HTML or source
  DELETE /messages           forget them all

`Inbox` is the SMTP handler; the tests' mailbox (tests/mailbox.py) uses it too.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from html import escape
from typing import Any

import uvicorn
from aiosmtpd.smtp import SMTP, Envelope, Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

HOST = "127.0.0.1"
# An email's HTML is shown as it came, but as a sandboxed document: no script, no requests.
HTML_POLICY = "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'"


@dataclass(frozen=True)
class Received:
    """One message as it arrived: its envelope and its parsed content."""

    number: int
    received_at: datetime
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes

    @property
    def message_id(self) -> str:
        return str(self.message.get("Message-ID", ""))

    @property
    def text(self) -> str | None:
        return _body(self.message, "plain")

    @property
    def html(self) -> str | None:
        return _body(self.message, "html")

    def summary(self) -> dict[str, Any]:
        header = self.message.get
        return {
            "number": self.number,
            "received_at": self.received_at.isoformat(),
            "from": str(header("From", "")),
            "to": str(header("To", "")),
            "envelope_to": self.rcpt_tos,
            "subject": str(header("Subject", "")),
            "message_id": self.message_id,
            "date": str(header("Date", "")),
        }


def _body(message: EmailMessage, subtype: str) -> str | None:
    part = message.get_body(preferencelist=(subtype,))
    if part is None or not isinstance(part, EmailMessage):
        return None
    content = part.get_content()
    return content if isinstance(content, str) else None


class Inbox:
    """The aiosmtpd handler: takes every message and keeps it. Thread-safe, since the tests'
    SMTP server runs in a thread of its own and the tests read from theirs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[Received] = []
        self._count = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        message = message_from_bytes(raw, _class=EmailMessage, policy=policy.default)
        with self._lock:
            self._count += 1
            self._messages.append(
                Received(
                    number=self._count,
                    received_at=datetime.now(UTC),
                    mail_from=envelope.mail_from or "",
                    rcpt_tos=list(envelope.rcpt_tos),
                    message=message,
                    raw=raw,
                )
            )
        return "250 Message accepted for delivery"

    @property
    def messages(self) -> list[Received]:
        """Every message kept, oldest first."""
        with self._lock:
            return list(self._messages)

    def get(self, number: int) -> Received | None:
        return next((item for item in self.messages if item.number == number), None)

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()


# --- the page --------------------------------------------------------------------------


def make_app(inbox: Inbox) -> Starlette:
    async def index(_: Request) -> HTMLResponse:
        return HTMLResponse(_page(list(reversed(inbox.messages))))

    async def messages(_: Request) -> JSONResponse:
        return JSONResponse(
            [
                {**item.summary(), "text": item.text, "html": item.html}
                for item in reversed(inbox.messages)
            ]
        )

    async def forget(_: Request) -> Response:
        inbox.clear()
        return Response(status_code=204)

    async def part(request: Request) -> Response:
        received = inbox.get(request.path_params["number"])
        if received is None:
            return PlainTextResponse("no such message", status_code=404)
        shape = request.path_params["part"]
        if shape == "html":
            return HTMLResponse(
                received.html or "<p>(no HTML part)</p>",
                headers={"Content-Security-Policy": HTML_POLICY},
            )
        if shape == "raw":
            return PlainTextResponse(received.raw.decode("utf-8", "replace"))
        if shape == "text":
            return PlainTextResponse(received.text or "(no plain-text part)")
        return PlainTextResponse("text, html or raw", status_code=404)

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "messages": len(inbox.messages)})

    return Starlette(
        routes=[
            Route("/", index),
            Route("/messages", messages, methods=["GET"]),
            Route("/messages", forget, methods=["DELETE"]),
            Route("/messages/{number:int}/{part:str}", part),
            Route("/healthz", healthz),
        ]
    )


def _page(received: list[Received]) -> str:
    rows = "".join(_row(item) for item in received) or (
        "<tr><td colspan='6'>No emails yet. A receipt arrives when an invoice is paid.</td></tr>"
    )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        # New mail shows up without a click.
        "<meta http-equiv='refresh' content='5'><title>payrecon mail catcher</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border-bottom:1px solid #ddd;padding:6px 10px;text-align:left;"
        "vertical-align:top}code{font-size:90%}</style></head><body>"
        f"<h1>Mail catcher</h1><p>{len(received)} message(s), newest first. Nothing here "
        "left this machine.</p><table><tr><th>received</th><th>from</th><th>to</th>"
        f"<th>subject</th><th>Message-ID</th><th>read</th></tr>{rows}</table></body></html>"
    )


def _row(item: Received) -> str:
    summary = item.summary()
    links = " ".join(
        f"<a href='/messages/{item.number}/{shape}'>{shape}</a>"
        for shape in ("html", "text", "raw")
    )
    cells = [
        summary["date"] or summary["received_at"],
        summary["from"],
        summary["to"],
        summary["subject"],
    ]
    return (
        "<tr>"
        + "".join(f"<td>{escape(cell)}</td>" for cell in cells)
        + f"<td><code>{escape(item.message_id)}</code></td><td>{links}</td></tr>"
    )


# --- running it ------------------------------------------------------------------------


async def serve(smtp_port: int, http_port: int, host: str = HOST) -> None:
    """Both servers on one event loop, until SIGINT or SIGTERM (uvicorn's handlers)."""
    inbox = Inbox()
    loop = asyncio.get_running_loop()
    smtp = await loop.create_server(
        lambda: SMTP(inbox, hostname="mailcatcher.localhost", loop=loop), host, smtp_port
    )
    config = uvicorn.Config(make_app(inbox), host=host, port=http_port, log_level="warning")
    try:
        await uvicorn.Server(config).serve()
    finally:
        # Not wait_closed(): it would wait for any client still connected.
        smtp.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--smtp-port", type=int, default=1025)
    parser.add_argument("--http-port", type=int, default=8025)
    parser.add_argument("--host", default=HOST)
    args = parser.parse_args()
    asyncio.run(serve(args.smtp_port, args.http_port, args.host))


if __name__ == "__main__":
    main()
