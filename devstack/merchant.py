"""A merchant's webhook endpoint, for `make chaos` and `make bench`: receives payrecon's
events, checks each one's Standard Webhooks signature and keeps what came (webhook-id,
type, invoice id, revision, when), answering 2xx or not as it is told.

    merchant = Merchant(fail_rate=0.2, slow_rate=0.1, seed=7).start()
    merchant.secret = endpoint["secret"]          # once registered at merchant.url
    merchant.down()  ...  merchant.up()           # connection refused meanwhile
    merchant.delivered_ids()                      # webhook-ids answered 2xx

It runs on its own event loop in a thread of its own, so it neither slows the caller's loop
nor is slowed by it; every method may be called from any thread. A plain asyncio HTTP/1.1
server (keep-alive, Content-Length bodies): all payrecon's client sends. Its faults are
drawn from one seeded random, so a seed replays the same answers for the same arrivals.

`make bench` runs it in a process of its own instead (`MerchantProcess`, which starts
`python -m devstack.merchant`), so the endpoint's work is not the bench's: that process
appends each request it receives to a JSON-lines file, which `MerchantProcess` reads.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import random
import signal
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from standardwebhooks import Webhook, WebhookVerificationError

from devstack.processes import Service, free_port, python_module, wait_for_port

HOST = "127.0.0.1"
# The endpoint's signing secret, for `python -m devstack.merchant` (not on its command line).
SECRET_ENV = "MERCHANT_SECRET"  # noqa: S105 (a variable's name)
MAX_BODY = 1 << 20
REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 500: "Internal Server Error"}


@dataclass(frozen=True)
class Received:
    """One request that reached the endpoint, and what it was answered."""

    webhook_id: str
    type: str | None
    invoice_id: str | None
    revision: int | None
    received_at: datetime
    status: int

    @property
    def delivered(self) -> bool:
        return 200 <= self.status < 300

    def to_json(self) -> str:
        fields = dataclasses.asdict(self)
        fields["received_at"] = self.received_at.isoformat()
        return json.dumps(fields)

    @classmethod
    def from_json(cls, line: str) -> Received:
        fields = json.loads(line)
        fields["received_at"] = datetime.fromisoformat(fields["received_at"])
        return cls(**fields)


class Merchant:
    def __init__(
        self,
        *,
        fail_rate: float = 0.0,
        slow_rate: float = 0.0,
        slow_seconds: tuple[float, float] = (0.5, 3.0),
        seed: int = 0,
        port: int | None = None,
        record: Path | None = None,
    ) -> None:
        self.fail_rate = fail_rate
        self.slow_rate = slow_rate
        self.slow_seconds = slow_seconds
        self.port = port or free_port()
        # The endpoint's signing secret (whsec_…), known once it is registered; until then
        # every request is answered 500.
        self.secret: str | None = None
        self._random = random.Random(seed)  # noqa: S311 (faults, not secrets)
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self.bad_signatures = 0
        self.failed = 0
        self.slowed = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._arrived = threading.Condition(self._lock)
        # Where each request is appended as a JSON line, as it comes (None: kept in memory only).
        self._record: IO[str] | None = open(record, "a") if record else None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/payrecon/events"

    # --- running it ------------------------------------------------------------------

    def start(self) -> Merchant:
        started = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            loop.call_soon(started.set)
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="merchant", daemon=True)
        self._thread.start()
        started.wait()
        self.up()
        return self

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        self.down()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop = None

    def up(self) -> None:
        """Listening (again) on its port."""
        self._call(self._listen())

    def down(self) -> None:
        """Not listening, every open connection closed: the next try is refused."""
        self._call(self._close())

    @property
    def listening(self) -> bool:
        return self._server is not None

    def _call(self, work: Coroutine[Any, Any, None]) -> None:
        assert self._loop is not None, "start() the merchant first"
        asyncio.run_coroutine_threadsafe(work, self._loop).result(timeout=30)

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._connection, HOST, self.port)

    async def _close(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    # --- what came -------------------------------------------------------------------

    @property
    def received(self) -> list[Received]:
        """Every signed request, in the order they arrived (retries included)."""
        with self._lock:
            return list(self._received)

    def delivered_ids(self) -> set[str]:
        return {item.webhook_id for item in self.received if item.delivered}

    def first_delivery(self, invoice_id: str, event_type: str) -> Received | None:
        """The first 2xx-answered event of this type for this invoice."""
        return next(
            (
                item
                for item in self.received
                if item.delivered and item.invoice_id == invoice_id and item.type == event_type
            ),
            None,
        )

    def wait_for(self, invoice_id: str, event_type: str, timeout: float) -> Received | None:
        """Blocks until that event is delivered (call it off the event loop), or None."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                found = next(
                    (
                        item
                        for item in self._received
                        if item.delivered
                        and item.invoice_id == invoice_id
                        and item.type == event_type
                    ),
                    None,
                )
                left = deadline - time.monotonic()
                if found is not None or left <= 0:
                    return found
                self._arrived.wait(left)

    # --- the endpoint ----------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                headers, body = request
                status = await self._answer(headers, body)
                reason = REASONS.get(status, "")
                writer.write(
                    f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain\r\n"
                    f"content-length: {len(reason)}\r\n\r\n{reason}".encode()
                )
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            return
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    async def _answer(self, headers: dict[str, str], body: bytes) -> int:
        received_at = datetime.now(UTC)
        secret = self.secret
        if secret is None:
            return 500
        try:
            verified = Webhook(secret).verify(body, headers)
        except WebhookVerificationError:
            with self._lock:
                self.bad_signatures += 1
            return 401
        event = verified if isinstance(verified, dict) else {}
        found = event.get("data")
        data: dict[str, Any] = found if isinstance(found, dict) else {}
        # Drawn in arrival order, before any wait: a seed replays the same faults.
        slow = self._random.random() < self.slow_rate
        delay = self._random.uniform(*self.slow_seconds)
        fail = self._random.random() < self.fail_rate
        if slow:
            self.slowed += 1
            await asyncio.sleep(delay)
        if fail:
            self.failed += 1
        status = 500 if fail else 200
        revision = data.get("revision")
        item = Received(
            webhook_id=headers.get("webhook-id", ""),
            type=event.get("type"),
            invoice_id=data.get("id"),
            revision=revision if isinstance(revision, int) else None,
            received_at=received_at,
            status=status,
        )
        with self._arrived:
            self._received.append(item)
            self._arrived.notify_all()
        if self._record is not None:
            # A whole line at once: a reader never takes a part for a request.
            self._record.write(item.to_json() + "\n")
            self._record.flush()
        return status


async def _read_request(reader: asyncio.StreamReader) -> tuple[dict[str, str], bytes] | None:
    """One request's headers (lower-cased names) and body; None when the client is gone."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    if length > MAX_BODY:
        raise ValueError("body too large")
    body = await reader.readexactly(length) if length else b""
    return headers, body


class MerchantProcess:
    """The endpoint in a process of its own, for `make bench`: its signature checks and
    answers take none of the caller's time. What it received is read from its record file.

        merchant = MerchantProcess(directory)          # merchant.url to register
        merchant.start(secret)                         # the registered endpoint's secret
        await merchant.wait_for(invoice_id, "invoice.paid", 30)
        merchant.stop()
    """

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.record = directory / "merchant-received.jsonl"
        self._log = directory / "merchant.log"
        self._service: Service | None = None
        self._read = 0  # bytes of the record already parsed
        self._received: list[Received] = []

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/payrecon/events"

    def start(self, secret: str) -> MerchantProcess:
        self.record.touch()
        command = python_module(
            "devstack.merchant", "--port", str(self.port), "--record", str(self.record)
        )
        self._service = Service(
            "merchant", command, env={SECRET_ENV: secret}, log_path=self._log
        ).start()
        wait_for_port(HOST, self.port, timeout=30)
        return self

    def stop(self) -> None:
        if self._service is not None:
            self._service.stop()
            self._service = None

    @property
    def received(self) -> list[Received]:
        """Every signed request so far, in the order they arrived."""
        with self.record.open("rb") as record:
            record.seek(self._read)
            new = record.read()
        # Only whole lines: the last one may still be being written.
        complete = new[: new.rfind(b"\n") + 1]
        self._read += len(complete)
        self._received += [Received.from_json(line) for line in complete.decode().splitlines()]
        return list(self._received)

    async def wait_for(
        self, invoice_id: str, event_type: str, within: float, every: float = 0.01
    ) -> Received | None:
        """That event's first 2xx-answered delivery, or None after `within` seconds. Its
        `received_at` is the merchant's own clock, so how often this looks adds nothing."""
        deadline = time.monotonic() + within
        while True:
            found = next(
                (
                    item
                    for item in self.received
                    if item.delivered and item.invoice_id == invoice_id and item.type == event_type
                ),
                None,
            )
            if found is not None or time.monotonic() >= deadline:
                return found
            await asyncio.sleep(every)


def summary(merchant: Merchant) -> dict[str, int]:
    """Counts for a report: requests, delivered, answered 500, slowed, bad signatures."""
    received = merchant.received
    return {
        "requests": len(received),
        "delivered": sum(item.delivered for item in received),
        "failed": merchant.failed,
        "slowed": merchant.slowed,
        "bad_signatures": merchant.bad_signatures,
    }


def main() -> None:
    """`python -m devstack.merchant --port P --record FILE`: the endpoint until SIGTERM,
    with the secret from MERCHANT_SECRET."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--record", type=Path, required=True)
    args = parser.parse_args()
    merchant = Merchant(port=args.port, record=args.record)
    merchant.secret = os.environ[SECRET_ENV]
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    merchant.start()
    stopping.wait()
    merchant.stop()


if __name__ == "__main__":
    main()
