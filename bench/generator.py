"""The webhook-ACK load generator, in a process of its own: its timekeeping shares no event
loop with the bench, and the bench's work none with it.

    python -m bench.generator

reads one step a line on stdin (JSON: url, rate, the deliveries already signed, each body
with its headers) and answers one line on stdout: the ACK latencies' and its own lag's
percentiles. `Generator` is the bench's side of it.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import uvloop

from bench.load import percentile
from devstack.processes import python_module

# A step's generator is trusted when its lag p99 stays under this, or under this share of
# the ACK p99 it measured, whichever is larger: otherwise it timed itself, not the server.
LAG_FLOOR = 0.005
LAG_SHARE = 0.20
# A request not answered by then counts as failed (TimeoutError).
ANSWER_WITHIN = 30.0

Delivery = tuple[bytes, dict[str, str]]


@dataclass(frozen=True)
class Step:
    """One step's figures, in seconds: ACKs from each request's planned send time, and how
    late the generator sent them."""

    sent: int
    p50: float
    p99: float
    lag_p50: float
    lag_p99: float
    # Answers other than 200, by kind ("503 ...", "ReadError"): how many of each.
    failures: dict[str, int]

    @property
    def valid(self) -> bool:
        return self.lag_p99 <= max(LAG_FLOOR, LAG_SHARE * self.p99)

    def figures(self) -> dict[str, Any]:
        return {
            "p50_ms": self.p50 * 1000,
            "p99_ms": self.p99 * 1000,
            "lag_p50_ms": self.lag_p50 * 1000,
            "lag_p99_ms": self.lag_p99 * 1000,
            "valid": self.valid,
            "sent": self.sent,
            "failed": sum(self.failures.values()),
        }


class Connections:
    """Keep-alive HTTP/1.1 connections to one server, as lean as a sender can be: a request
    is its bytes, made before the step, written whole; the answer is read by its
    Content-Length or its chunks. An idle connection is reused, else one is opened: no pool
    to search, however many are open."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.path = parts.path or "/"
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    def request(self, body: bytes, headers: dict[str, str]) -> bytes:
        lines = [f"POST {self.path} HTTP/1.1", f"host: {self.host}:{self.port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append(f"content-length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    async def post(self, request: bytes) -> tuple[int, bytes]:
        reader, writer = await self._connection()
        try:
            writer.write(request)
            status, body, keep = await _answer(reader)
        except BaseException:
            writer.close()
            raise
        if keep:
            self._idle.append((reader, writer))
        else:
            writer.close()
        return status, body

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        while self._idle:
            reader, writer = self._idle.pop()
            # The server closes an idle connection after a while (uvicorn: 5 s).
            if not reader.at_eof() and not writer.is_closing():
                return reader, writer
            writer.close()
        return await asyncio.open_connection(self.host, self.port)

    def close(self) -> None:
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()


async def _answer(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """Status, body, and whether the connection stays open."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = int(head[0].split(" ", 2)[1])
    headers = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        body = await _chunks(reader)
    else:
        raise ValueError("an answer with no length")
    return status, body, headers.get("connection", "").lower() != "close"


async def _chunks(reader: asyncio.StreamReader) -> bytes:
    body = b""
    while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
        body += (await reader.readexactly(size + 2))[:-2]
    await reader.readuntil(b"\r\n")  # the end (no trailers from uvicorn)
    return body


async def open_loop(connections: Connections, requests: list[bytes], rate: int) -> Step:
    """Sends at a fixed rate whatever the answers; latency counts from the planned send
    time, so a slow server cannot hide its queue."""
    latencies: list[float] = []
    lags: list[float] = []
    failures: dict[str, int] = {}

    def failed(kind: str) -> None:
        failures[kind] = failures.get(kind, 0) + 1

    async def send(request: bytes, planned: float) -> None:
        lags.append(time.perf_counter() - planned)
        try:
            async with asyncio.timeout(ANSWER_WITHIN):
                status, body = await connections.post(request)
        except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError) as error:
            failed(type(error).__name__)
            return
        if status != 200:
            failed(f"{status} {body[:80].decode(errors='replace')}")
        latencies.append(time.perf_counter() - planned)

    # No collector pauses while it keeps time.
    gc.collect()
    gc.disable()
    try:
        started = time.perf_counter()
        tasks = []
        for n, request in enumerate(requests):
            planned = started + n / rate
            await asyncio.sleep(max(0.0, planned - time.perf_counter()))
            tasks.append(asyncio.create_task(send(request, planned)))
        await asyncio.gather(*tasks)
    finally:
        gc.enable()
    return Step(
        sent=len(requests),
        p50=percentile(latencies, 50),
        p99=percentile(latencies, 99),
        lag_p50=percentile(lags, 50),
        lag_p99=percentile(lags, 99),
        failures=failures,
    )


def serve() -> None:
    """Steps from stdin, one at a time, each server's connections kept between them."""
    servers: dict[str, Connections] = {}
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        for line in sys.stdin:
            order = json.loads(line)
            connections = servers.setdefault(order["url"], Connections(order["url"]))
            # Each request's bytes made before the clock starts: the step only sends them.
            requests = [
                connections.request(d["body"].encode(), d["headers"]) for d in order["deliveries"]
            ]
            step = runner.run(open_loop(connections, requests, order["rate"]))
            print(json.dumps(vars(step)), flush=True)
        for connections in servers.values():
            connections.close()


class Generator:
    """The bench's side: starts `python -m bench.generator` and hands it one step at a time."""

    def __init__(self, log_path: Path) -> None:
        self._log_path = log_path
        self._process: asyncio.subprocess.Process | None = None

    async def start(self) -> Generator:
        command = python_module("bench.generator")
        with self._log_path.open("ab") as log:
            self._process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                limit=1 << 24,
            )
        return self

    async def step(self, url: str, rate: int, deliveries: list[Delivery]) -> Step:
        process = self._process
        assert process is not None and process.stdin and process.stdout, "start() it first"
        order = {
            "url": url,
            "rate": rate,
            "deliveries": [{"body": body.decode(), "headers": h} for body, h in deliveries],
        }
        process.stdin.write(json.dumps(order).encode() + b"\n")
        await process.stdin.drain()
        answer = await process.stdout.readline()
        if not answer:
            raise RuntimeError(f"the load generator exited; see {self._log_path}")
        return Step(**json.loads(answer))

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.stdin is None:
            return
        process.stdin.close()  # its end of input: it closes its client and exits
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


if __name__ == "__main__":
    serve()
