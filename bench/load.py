"""Load generation and measurement helpers for the bench: percentiles, process memory and
distinct signed webhook deliveries (bench/generator.py sends them)."""

from __future__ import annotations

import json
import random
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


def signed(bodies: list[bytes], secret: str) -> list[tuple[bytes, dict[str, str]]]:
    """Each body with the headers Paystack sends it with, its signature made now, so a
    load step only sends."""
    return [
        (body, {"content-type": "application/json", SIGNATURE_HEADER: sign(body, secret)})
        for body in bodies
    ]


async def provider_calls(sandbox: httpx.AsyncClient, reference: str) -> dict[str, int]:
    """How often payrecon called Paystack for a reference, as the sandbox counted."""
    transaction = await SandboxControls(sandbox).transaction(reference)
    assert transaction is not None, reference
    counts: dict[str, int] = transaction["calls"]
    return counts
