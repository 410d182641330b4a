"""The books' part of `make chaos`: the reconciliation sweep runs on its schedule through the
kills and outages while chaos makes, on Paystack's side, every kind of trouble the sweep
must find: payments no invoice asked for, invoices paid twice, payments reversed with no
refund, a settlement whose arithmetic is wrong and a transaction charged the wrong fee.
At the end one run over the whole chaos window is judged against the sandbox's truth:
everything injected was found, every missed payment the faults caused was healed, and
nothing was reported that chaos did not cause."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

import httpx
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_exception_type,
    retry_if_result,
    stop_after_delay,
    wait_exponential,
    wait_fixed,
)

from devstack.progress import Phase, Progress
from devstack.stack import Stack
from sandbox.controls import SandboxControls

OPERATOR_KEY = "chaos-operator-key"
# The sweep, often and over all of chaos: every 20 s over the trailing two hours, ending
# 30 s before now (webhooks in flight are not yet missed payments).
SWEEP_SETTINGS = {
    "PAYRECON_RECON_INTERVAL_SECONDS": "20",
    "PAYRECON_RECON_WINDOW_SECONDS": "7200",
    "PAYRECON_RECON_GRACE_SECONDS": "30",
}
T = TypeVar("T")
AFTER_PAYMENT_SHOWS = ("refund_mismatch", "paid_not_on_paystack", "dispute_overdue", "unsettled")


def api_keys(merchant_key: str) -> str:
    """The merchant's key and an operator's, for the reconciliation API."""
    return f"{merchant_key},chaos-ops:{OPERATOR_KEY}:operator"


class ChaosInvoice(Protocol):
    key: str
    fate: str
    amount: int
    invoice_id: str | None
    paid_in_sandbox: bool


@dataclass
class Trouble:
    """What chaos did to Paystack's books, by the discrepancy each must show as."""

    orphans: set[str] = field(default_factory=set)
    duplicates: set[str] = field(default_factory=set)
    reversed: set[str] = field(default_factory=set)
    misfeed: set[str] = field(default_factory=set)
    bad_settlements: set[int] = field(default_factory=set)
    # What the invoices' own faults rightly show: paid short, or paid while we did not know.
    paid_short: set[str] = field(default_factory=set)
    paid: set[str] = field(default_factory=set)
    # Invoices refunded or disputed: while payrecon catches up with Paystack (a dashboard
    # refund's webhooks lost, a reversal not yet learned), the sweep rightly says so.
    after_payment: set[str] = field(default_factory=set)

    def caused(self, discrepancy: dict[str, Any]) -> bool:
        kind, reference = discrepancy["kind"], discrepancy["paystack_reference"]
        if discrepancy["invoice_id"] in self.after_payment and kind in AFTER_PAYMENT_SHOWS:
            return True
        match kind:
            case "orphan_payment":
                return reference in self.orphans
            case "duplicate_payment":
                return reference in self.duplicates
            case "paid_not_on_paystack":
                return reference in self.reversed
            case "fee_mismatch":
                return reference in self.misfeed
            case "settlement_mismatch":
                return discrepancy["details"].get("settlement_id") in self.bad_settlements
            case "amount_mismatch":
                return discrepancy["invoice_id"] in self.paid_short
            case "missed_payment":
                return discrepancy["invoice_id"] in self.paid
        return False


async def patiently(call: Callable[[], Awaitable[T]], until: float) -> T:
    """`call`, again while what it reaches is down (killed, or Paystack's outage)."""
    attempts = AsyncRetrying(
        stop=stop_after_delay(max(1.0, until - time.monotonic())),
        wait=wait_fixed(0.5),
        retry=retry_if_exception_type(httpx.TransportError),
        reraise=True,
    )
    async for attempt in attempts:
        with attempt:
            return await call()
    raise AssertionError("tenacity either returns or raises")


async def retrying(
    call: Any, *, until: float, retry_statuses: tuple[int, ...] = (502, 503, 504)
) -> httpx.Response:
    """Calls again on connection errors and on answers that say 'try later', backing off
    from 0.2 s to 2 s, until the monotonic time `until`."""
    again = AsyncRetrying(
        stop=stop_after_delay(max(0.0, until - time.monotonic())),
        wait=wait_exponential(multiplier=0.2, max=2.0),
        retry=retry_if_exception_type(httpx.TransportError)
        | retry_if_result(lambda response: response.status_code in retry_statuses),
    )

    async def attempt() -> httpx.Response:  # `call` may be a lambda returning a coroutine
        answer: httpx.Response = await call()
        return answer

    try:
        response: httpx.Response = await again(attempt)
    except RetryError as error:
        raise TimeoutError("gave up retrying") from error
    return response


class Books:
    """Makes the trouble, and judges what the sweep made of it."""

    def __init__(
        self,
        stack: Stack,
        sandbox: httpx.AsyncClient,
        api: httpx.AsyncClient,
        invoices: Sequence[ChaosInvoice],
        rng: random.Random,
        *,
        per_kind: int,
    ) -> None:
        self.stack, self.api, self.invoices, self.rng = stack, api, invoices, rng
        self.controls = SandboxControls(sandbox)
        self.per_kind = per_kind
        self.trouble = Trouble()
        self.started = datetime.now(UTC)
        self.tag = f"{rng.randrange(16**8):08x}"
        self._taken: set[str] = set()

    # --- during chaos ---------------------------------------------------------------

    async def during(self, window: float, phase: Phase, until: float) -> None:
        """Orphans and second payments at random moments of the kill phase, and one
        settlement run (its arithmetic put wrong) half-way."""
        moments = sorted(
            [(self.rng.uniform(0.1, 0.9) * window, "orphan") for _ in range(self.per_kind)]
            + [(self.rng.uniform(0.3, 0.9) * window, "twice") for _ in range(self.per_kind)]
            + [(0.5 * window, "settle")]
        )
        began = time.monotonic()
        for n, (at, what) in enumerate(moments):
            await asyncio.sleep(max(0.0, began + at - time.monotonic()))
            if what == "orphan":
                await self._orphan(n, until)
            elif what == "twice":
                await self._pay_twice(until)
            else:
                await self._settle_wrongly(until)
                phase.note("books: settlements run, one with its arithmetic wrong")
        phase.note(
            f"books: {len(self.trouble.orphans)} orphan payments, "
            f"{len(self.trouble.duplicates)} invoices paid twice"
        )

    async def _settle_wrongly(self, until: float) -> None:
        """Pays out what is paid so far, one settlement's arithmetic wrong (again a moment
        later if nothing was paid yet)."""
        while time.monotonic() < until:
            answer = await patiently(
                lambda: self.controls.run_settlements(fault="arithmetic"), until
            )
            if answer["faults"]:
                return
            await asyncio.sleep(1)

    async def _orphan(self, n: int, until: float) -> None:
        reference = f"orphan-{self.tag}-{n}"
        await self._payment(reference, self.rng.randrange(10_000, 2_000_000), until)
        self.trouble.orphans.add(reference)

    async def _pay_twice(self, until: float) -> None:
        """A second payment, under the invoice's next free reference, of an invoice the API
        shows paid (so it is the second, and the invoice stays paid)."""
        while time.monotonic() < until:
            invoice = await self._paid_invoice(until)
            if invoice is None:
                await asyncio.sleep(1)
                continue
            assert invoice.invoice_id is not None
            for attempt in range(2, 10):
                reference = f"{invoice.invoice_id}.{attempt}"
                if await self._held(reference, until) is None:
                    await self._payment(reference, invoice.amount, until)
                    self.trouble.duplicates.add(reference)
                    return
        raise TimeoutError("no paid invoice to pay twice")

    async def take_paid_invoice(self, until: float) -> ChaosInvoice | None:
        """A paid invoice no other part of chaos has taken, now this caller's."""
        return await self._paid_invoice(until)

    async def _paid_invoice(self, until: float) -> ChaosInvoice | None:
        candidates = [
            i
            for i in self.invoices
            if i.fate == "pay" and i.paid_in_sandbox and i.invoice_id not in self._taken
        ]
        self.rng.shuffle(candidates)
        for invoice in candidates[:5]:
            assert invoice.invoice_id is not None
            if invoice.invoice_id in self._taken:  # taken by another while we looked
                continue
            # Held while we look, so no two parts of chaos take one invoice.
            self._taken.add(invoice.invoice_id)
            if await self._status(invoice.invoice_id, until) == "paid":
                return invoice
            self._taken.discard(invoice.invoice_id)
        return None

    async def _status(self, invoice_id: str, until: float) -> str | None:
        shown = await patiently(lambda: self.api.get(f"/invoices/{invoice_id}"), until)
        return str(shown.json()["status"]) if shown.status_code == 200 else None

    async def _held(self, reference: str, until: float) -> dict[str, Any] | None:
        held = await patiently(lambda: self.controls.transaction(reference), until)
        return (held or {}).get("transaction")

    async def _payment(self, reference: str, amount: int, until: float) -> None:
        """Made once, even if Paystack went down with our first try's answer."""

        async def make() -> None:
            if await self._held(reference, until) is None:
                await self.controls.create_payment(amount, "NGN", "walk-in@example.com", reference)

        await patiently(make, until)

    # --- after chaos ----------------------------------------------------------------

    async def after(self, until: float) -> None:
        """Payments reversed with no refund, then the rest paid out with one fee wrong."""
        # What was injected is what Paystack holds paid: a payment cut off by an outage (its
        # transaction opened, never paid) is no one's to find.
        for injected in (self.trouble.orphans, self.trouble.duplicates):
            for reference in list(injected):
                held = await self._held(reference, until)
                if held is None or held.get("status") != "success":
                    injected.discard(reference)
        reversed_ = 0
        while reversed_ < self.per_kind:
            invoice = await self._paid_invoice(until)
            if invoice is None:
                break
            shown = (await self.api.get(f"/invoices/{invoice.invoice_id}")).json()
            await self.controls.reverse(shown["paystack_reference"])
            self.trouble.reversed.add(shown["paystack_reference"])
            reversed_ += 1
        answer = await self.controls.run_settlements(fault="fee")
        self.trouble.misfeed = {f["reference"] for f in answer["faults"] if f["kind"] == "fee"}
        self.trouble.bad_settlements = await self._settlements_that_do_not_add_up()
        for invoice in self.invoices:
            if invoice.invoice_id is not None and invoice.paid_in_sandbox:
                self.trouble.paid.add(invoice.invoice_id)
                if invoice.fate == "pay_wrong_amount":
                    self.trouble.paid_short.add(invoice.invoice_id)

    async def _settlements_that_do_not_add_up(self) -> set[int]:
        """Read from Paystack's side (the sandbox): the arithmetic fault is the only way a
        settlement there fails to add up, whichever try of the mid-chaos run made it."""
        async with httpx.AsyncClient(
            base_url=self.stack.sandbox_url,
            headers={"Authorization": f"Bearer {self.stack.secret_key}"},
        ) as paystack:
            listed = (await paystack.get("/settlement", params={"perPage": 1000})).json()
        return {
            s["id"]
            for s in listed["data"]
            if s["total_processed"] - s["total_fees"] - (s["deductions"] or 0) != s["total_amount"]
        }

    async def final_run(self, ops: httpx.AsyncClient, deadline: float) -> dict[str, Any]:
        """One run over the whole of chaos, started through the API, waited for."""
        window = {
            "from": (self.started - timedelta(minutes=1)).isoformat(),
            "to": (datetime.now(UTC) + timedelta(seconds=1)).isoformat(),
        }
        started = await ops.post("/reconciliation/runs", json=window)
        started.raise_for_status()
        run_id = started.json()["id"]
        while time.monotonic() < deadline:
            run: dict[str, Any] = (await ops.get(f"/reconciliation/runs/{run_id}")).json()
            if run["status"] != "running":
                return run
            await asyncio.sleep(1)
        raise TimeoutError(f"reconciliation run {run_id} still running")

    async def discrepancies(self, ops: httpx.AsyncClient) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while True:
            page = (
                await ops.get(
                    "/reconciliation/discrepancies", params={"limit": 200, "offset": len(found)}
                )
            ).json()
            found += page["items"]
            if len(found) >= page["total"] or not page["items"]:
                return found

    def recon_show(self, run_id: str) -> str:
        """`payrecon recon show` of the run, as an operator would read it."""
        cli = Path(sys.executable).parent / "payrecon"
        shown = subprocess.run(  # noqa: S603 - our own command line
            [str(cli), "recon", "show", run_id],
            env=self.stack.env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return shown.stdout + shown.stderr


async def sweep_runs(ops: httpx.AsyncClient) -> Counter[tuple[str, str]]:
    """Every run so far, by trigger and status."""
    runs = (await ops.get("/reconciliation/runs", params={"limit": 200})).json()["items"]
    return Counter((run["trigger"], run["status"]) for run in runs)


def verdict_rows(
    trouble: Trouble, found: list[dict[str, Any]], runs: Counter[tuple[str, str]], final: str
) -> tuple[list[tuple[str, str]], bool]:
    by_kind: dict[str, set[str]] = {}
    for discrepancy in found:
        subject = (
            str(discrepancy["details"].get("settlement_id"))
            if discrepancy["kind"] == "settlement_mismatch"
            else discrepancy["paystack_reference"] or ""
        )
        by_kind.setdefault(discrepancy["kind"], set()).add(subject)
    expected = {
        "orphan_payment": trouble.orphans,
        "duplicate_payment": trouble.duplicates,
        "paid_not_on_paystack": trouble.reversed,
        "fee_mismatch": trouble.misfeed,
        "settlement_mismatch": {str(i) for i in trouble.bad_settlements},
    }
    names = {
        "orphan_payment": "orphan payments",
        "duplicate_payment": "paid twice",
        "paid_not_on_paystack": "reversed",
        "fee_mismatch": "wrong fee",
        "settlement_mismatch": "settlement arithmetic",
    }
    missing = {kind: refs - by_kind.get(kind, set()) for kind, refs in expected.items()}
    short = {d["invoice_id"] for d in found if d["kind"] == "amount_mismatch"}
    missed = [d for d in found if d["kind"] == "missed_payment"]
    missed_open = [d for d in missed if d["status"] == "open"]
    uncaused = [d for d in found if not trouble.caused(d)]
    scheduled = sum(n for (trigger, status), n in runs.items() if trigger == "scheduled")
    failed = sum(n for (_, status), n in runs.items() if status == "failed")
    rows = [
        (
            "reconciliation runs",
            f"{scheduled} scheduled during chaos, {failed} failed; the final one {final}",
        ),
        (
            "injected on Paystack, found",
            ", ".join(
                f"{names[kind]} {len(refs) - len(missing[kind])}/{len(refs)}"
                for kind, refs in expected.items()
            ),
        ),
        ("paid short, found", f"{len(short & trouble.paid_short)}/{len(trouble.paid_short)}"),
        (
            "missed payments (webhook lost, polls failing)",
            f"{len(missed)} found, {len(missed) - len(missed_open)} healed or resolved, "
            f"{len(missed_open)} open",
        ),
        ("discrepancies chaos did not cause", str(len(uncaused))),
    ]
    for kind, refs in missing.items():
        for reference in sorted(refs)[:3]:
            rows.append((f"  e.g. not found ({names[kind]})", reference))
    for discrepancy in uncaused[:5]:
        rows.append(
            (
                "  e.g. not caused",
                f"{discrepancy['kind']} {discrepancy['paystack_reference']} "
                f"{discrepancy['invoice_id']} {discrepancy['details']}",
            )
        )
    ok = (
        final == "completed"
        and all(refs for refs in expected.values())
        and not any(missing.values())
        and short >= trouble.paid_short
        and not missed_open
        and not uncaused
        and not failed
    )
    return rows, ok


async def judge(
    books: Books, progress: Progress, deadline: float
) -> tuple[list[tuple[str, str]], bool, str]:
    """After chaos: the trouble made after it, the final run, and the verdict's rows."""
    async with httpx.AsyncClient(
        base_url=books.stack.api_url,
        headers={"Authorization": f"Bearer {OPERATOR_KEY}"},
        timeout=30,
    ) as ops:
        with progress.phase("books: reversals, settlements with a fee wrong"):
            await books.after(deadline)
        with progress.phase("books: one reconciliation run over all of chaos"):
            run = await books.final_run(ops, deadline)
        found = await books.discrepancies(ops)
        runs = await sweep_runs(ops)
    rows, ok = verdict_rows(books.trouble, found, runs, run["status"])
    return rows, ok, await asyncio.to_thread(books.recon_show, run["id"])
