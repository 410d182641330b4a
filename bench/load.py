"""Load generation and measurement helpers for the bench: percentiles, process memory,
distinct signed webhook deliveries, and an open-loop sender."""

from __future__ import annotations

import asyncio
import gc
import json
import random
import time
from pathlib import Path

import httpx

from paystack.signature import SIGNATURE_HEADER, sign
from sandbox.controls import SandboxControls


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def signed_deliveries(references: list[str], count: int, first_id: int) -> list[bytes]:
    """Distinct charge.success events (each its own transaction), as a busy merchant's
    payments arrive; none is a retry, so every one reaches its invoice's workflow."""
    rng = random.Random(7 + first_id)
    bodies = []
    for n in range(count):
        event = {
            "event": "charge.success",
            "data": {
                "id": 4_200_000_000 + first_id + n + 1,
                "status": "success",
                "reference": rng.choice(references),
                "amount": 250000,
                "currency": "NGN",
                "paid_at": "2026-11-23T10:00:00.000Z",
            },
        }
        bodies.append(json.dumps(event).encode())
    return bodies


async def open_loop(
    client: httpx.AsyncClient, url: str, bodies: list[bytes], rate: int, secret: str
) -> tuple[list[float], list[str], float]:
    """Sends at a fixed rate whatever the answers; latency counts from the planned
    send time, so a slow server cannot hide its queue. Also returns the generator's own
    p99 lag behind plan, which says whether the figures measure it or the server."""
    latencies: list[float] = []
    lags: list[float] = []
    failures: list[str] = []
    signed = [
        (body, {"content-type": "application/json", SIGNATURE_HEADER: sign(body, secret)})
        for body in bodies
    ]

    async def send(body: bytes, headers: dict[str, str], planned: float) -> None:
        lags.append(time.perf_counter() - planned)
        try:
            response = await client.post(url, content=body, headers=headers)
        except httpx.TransportError as error:
            failures.append(type(error).__name__)
            return
        if response.status_code != 200:
            failures.append(f"{response.status_code} {response.text[:200]}")
        latencies.append(time.perf_counter() - planned)

    # No collector pauses in the generator while it keeps time.
    gc.collect()
    gc.disable()
    try:
        started = time.perf_counter()
        tasks = []
        for n, (body, headers) in enumerate(signed):
            planned = started + n / rate
            await asyncio.sleep(max(0.0, planned - time.perf_counter()))
            tasks.append(asyncio.create_task(send(body, headers, planned)))
        await asyncio.gather(*tasks)
    finally:
        gc.enable()
    return latencies, failures, percentile(lags, 99)


async def provider_calls(sandbox: httpx.AsyncClient, reference: str) -> dict[str, int]:
    """How often payrecon called Paystack for a reference, as the sandbox counted."""
    transaction = await SandboxControls(sandbox).transaction(reference)
    assert transaction is not None, reference
    counts: dict[str, int] = transaction["calls"]
    return counts
