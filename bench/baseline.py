"""The baseline: the webhook handler a first Paystack integration writes. FastAPI and
SQLite; check the signature, mark the invoice row paid. No workflow, no verify call, so
none of payrecon's guarantees: it is here only to compare speed under the same load.

    python -m bench.baseline      (BASELINE_DB, BASELINE_PORT, PAYSTACK_SECRET_KEY)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sqlite3
import threading

import uvicorn
from fastapi import FastAPI, HTTPException, Request

DATABASE = os.environ.get("BASELINE_DB", ".data/baseline.db")
SECRET = os.environ.get("PAYSTACK_SECRET_KEY", "").encode()
_local = threading.local()

app = FastAPI(title="naive webhook handler")


def connection() -> sqlite3.Connection:
    if not hasattr(_local, "connection"):
        _local.connection = sqlite3.connect(DATABASE, timeout=30)
        _local.connection.execute("PRAGMA journal_mode=WAL")
    opened: sqlite3.Connection = _local.connection
    return opened


def prepare(database: str, references: list[str]) -> None:
    with sqlite3.connect(database) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE IF NOT EXISTS invoices (id TEXT PRIMARY KEY, status TEXT)")
        db.executemany(
            "INSERT OR IGNORE INTO invoices VALUES (?, 'pending')", [(r,) for r in references]
        )


@app.post("/webhooks/paystack")
async def webhook(request: Request) -> dict[str, str]:
    body = await request.body()
    expected = hmac.new(SECRET, body, hashlib.sha512).hexdigest()
    if not hmac.compare_digest(expected, request.headers.get("x-paystack-signature", "")):
        raise HTTPException(401, "bad signature")
    event = json.loads(body)
    if event.get("event") == "charge.success":
        db = connection()
        db.execute(
            "UPDATE invoices SET status = 'paid' WHERE id = ?", (event["data"]["reference"],)
        )
        db.commit()
    return {"status": "ok"}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["BASELINE_PORT"]), access_log=False)
