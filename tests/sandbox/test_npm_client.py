"""A Paystack client from npm that no one here wrote, @alexasomba/paystack-node, unchanged but
for its base URL, drives the sandbox through initialize, verify, list and fetch, refund
create, list and fetch, and dispute list and fetch (compat/npm/drive.mjs), each answer checked
for the fields the library's types say it has.

Run by `make compat`, which installs the library from the npm registry by its lock; `make
test` leaves it out (marker `compat`) and runs the PyPI library's test beside it instead."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.sandbox.support import SECRET

DRIVER = Path(__file__).parents[2] / "compat" / "npm"
CALLS = [
    "transaction.initialize",
    "transaction.verify",
    "transaction.list",
    "transaction.fetch",
    "refund.create",
    "refund.list",
    "refund.fetch",
    "dispute.list",
    "dispute.fetch",
]


@pytest.mark.compat
def test_the_npm_library_makes_every_call_and_gets_its_shapes(
    sandbox_url: str, http: httpx.Client
) -> None:
    node = shutil.which("node")
    assert node is not None, "make compat needs Node.js"
    assert (DRIVER / "node_modules" / "@alexasomba").is_dir(), "run `make compat`"
    paid = http.post(
        "/_sandbox/transactions",
        json={"amount": 500_000, "currency": "NGN", "email": "ada@example.com"},
    ).json()["data"]
    disputed = http.post(
        "/_sandbox/transactions",
        json={"amount": 300_000, "currency": "NGN", "email": "bo@example.com"},
    ).json()["data"]
    dispute = http.post("/_sandbox/disputes", json={"transaction": disputed["id"]}).json()["data"]

    run = subprocess.run(
        [node, "drive.mjs"],
        cwd=DRIVER,
        env={
            **os.environ,
            "PAYSTACK_BASE_URL": sandbox_url,
            "PAYSTACK_SECRET_KEY": SECRET,
            "PAID_TRANSACTION": str(paid["id"]),
            "DISPUTE_ID": str(dispute["id"]),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert run.returncode == 0, (run.stdout, run.stderr)
    assert [line["call"] for line in lines] == CALLS
    assert all(line["ok"] for line in lines), lines
    # What the library did is on the sandbox's books: one refund, of the paid transaction.
    [refund] = http.get("/refund", params={"transaction": paid["id"]}, headers=_key()).json()[
        "data"
    ]
    assert refund["amount"] == 10_000


def _key() -> dict[str, str]:
    return {"Authorization": f"Bearer {SECRET}"}
