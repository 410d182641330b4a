"""`make screenshot`: against a running `make run`, create invoices in several states and
photograph the Temporal UI filtered to those that need review (docs/temporal-ui-needs-review.png).
Needs Debian's chromium."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import httpx

from config import get_settings
from sandbox.controls import pay_path

API_URL = "http://127.0.0.1:8000"
SANDBOX_URL = "http://127.0.0.1:8100"
UI_URL = "http://localhost:8233"
OUTPUT = Path("docs/temporal-ui-needs-review.png")
CUSTOMERS = ["ada@example.com", "kwame@example.com", "thandi@example.com", "wanjiru@example.com"]


def make_invoices() -> None:
    key = get_settings().payrecon_api_keys[0].key.get_secret_value()
    api = httpx.Client(base_url=API_URL, headers={"Authorization": f"Bearer {key}"}, timeout=30)
    sandbox = httpx.Client(base_url=SANDBOX_URL, timeout=30)
    for n, email in enumerate(CUSTOMERS * 2):
        amount = 150000 + 25000 * n
        invoice = api.post(
            "/invoices", json={"customer_email": email, "amount": amount, "currency": "NGN"}
        ).json()
        paid = amount if n % 3 else amount - 50000  # every third one short-paid: needs review
        if n % 4 != 3:  # and some left pending
            sandbox.post(
                pay_path(invoice["id"]),
                json={"outcome": "success", "amount": paid},
            ).raise_for_status()
    time.sleep(2)


def photograph() -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("chromium is not installed: apt-get install chromium")
    query = quote("InvoiceStatus='needs_review'")
    url = f"{UI_URL}/namespaces/default/workflows?query={query}"
    OUTPUT.parent.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(  # noqa: S603 - a fixed command line
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--window-size=1440,900",
                "--virtual-time-budget=20000",
                f"--screenshot={OUTPUT}",
                url,
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
    print(f"saved {OUTPUT}")


if __name__ == "__main__":
    make_invoices()
    photograph()
