"""`make chaos`: many invoices through the whole stack while its processes are killed,
Paystack misbehaves and twice goes down altogether, and the merchant's webhook endpoint
fails a fifth of deliveries, is slow at times and is down for a stretch; then every invoice
is compared with the sandbox's truth, every transition with the events the merchant got,
and every paid invoice with the receipts the mail catcher got.

    python -m devstack.chaos --invoices 1000 --kills 3 --outages 2 --outage-seconds 60

Starts its own Temporal dev server (file persistence), sandbox (faults on), worker and API
on free ports in a temporary directory, and the merchant's endpoint (devstack/merchant.py)
in-process. Exits non-zero unless there are no wrong final states, no double transitions,
no lost payments, no half-made invoices, no lost or phantom events and exactly one receipt
Message-ID per paid invoice.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from sqlmodel import Session, col, select
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_exception_type,
    retry_if_result,
    stop_after_delay,
    wait_fixed,
)

from db import queries
from db.engine import make_engine
from db.models import InvoiceStatusChange, InvoiceTimelineEntry
from db.timeline import TimelineKind
from devstack import chaos_books, chaos_money
from devstack.chaos_books import retrying
from devstack.merchant import Merchant, summary
from devstack.processes import wait_for_http
from devstack.progress import Phase, Progress
from devstack.stack import TOPOLOGIES, Stack, Topology
from domain.events import event_id_for
from domain.invoice import follows_the_graph
from sandbox.controls import SandboxControls

FATES = {"pay": 0.50, "pay_wrong_amount": 0.10, "pay_late": 0.10, "expire": 0.20, "cancel": 0.10}
Outcome = tuple[str, str | None]
EXPECTED: dict[str, Outcome] = {
    "pay": ("paid", None),
    "pay_wrong_amount": ("needs_review", "amount_mismatch"),
    "pay_late": ("needs_review", "paid_after_expiry"),
    "expire": ("expired", None),
    "cancel": ("cancelled", None),
}
PAID_AFTER_EXPIRY: Outcome = ("needs_review", "paid_after_expiry")
FAULTS: dict[str, Any] = {
    "webhooks": {
        "drop": 0.15,
        "duplicate": 0.2,
        "duplicate_copies": 2,
        "delay": 0.2,
        "delay_ms": [20, 800],
        "reorder": 0.1,
        "bad_signature": 0.05,
        "retry": {"enabled": True, "time_factor": 0.002},
    },
    "api": {
        "initialize": {
            "error_rate": 0.05,
            "error_statuses": [500, 502, 503, 429],
            "latency_ms": [0, 30],
            "timeout_rate": 0.01,
            "timeout_seconds": 4,
            "after_commit": 0.5,
        },
        "verify": {
            "error_rate": 0.1,
            "error_statuses": [500, 502, 503, 429],
            "latency_ms": [0, 50],
            "timeout_rate": 0.02,
            "timeout_seconds": 4,
        },
        "refund": chaos_money.REFUND_FAULTS,
    },
}
# The merchant's endpoint: answers 500 to this share of deliveries, is slow (0.5-3 s) for
# this share, and is down once for `--merchant-down-seconds` mid-run.
MERCHANT_FAIL_RATE = 0.2
MERCHANT_SLOW_RATE = 0.1
# Events are retried soon and for long: past the merchant's outage and the whole run.
EVENT_RETRY_SCHEDULE = "1,2,5"
EVENT_RETRY_FOR_SECONDS = "3600"
CREATES_PER_SECOND = 5.0
# Each story's patience runs from its own turn, not from the run's start: a create from its
# turn at the gate (past a kill's restart or an outage), the rest from the invoice's creation.
CREATE_PATIENCE = 180.0
STORY_PATIENCE = 300.0
# The statuses that show a payment was taken.
PAYMENT_SHOWN = ("paid", "needs_review", "partially_refunded", "refunded")
RECEIPT_ID = re.compile(r"^<receipt\.(?P<invoice>[^@>]+)@")


@dataclass
class Invoice:
    key: str
    fate: str
    amount: int
    invoice_id: str | None = None
    due_at: datetime | None = None
    paid_at: datetime | None = None
    expected: set[Outcome] = field(default_factory=lambda: {("pending", None)})
    observed: Outcome = ("pending", None)
    history: tuple[str, ...] = ()
    provider_calls: int = 0
    paid_in_sandbox: bool = False
    # Creates answered 503 "Paystack is unavailable", then retried with the same key.
    refusals: int = 0
    # When the create was answered, in seconds of the monotonic clock.
    created_at: float | None = None
    notes: list[str] = field(default_factory=list)

    def judge(self) -> None:
        """What the sandbox's truth allows. A payment Paystack recorded after the due date
        may be found by the due date's last verify (paid) or after expiry (review)."""
        self.expected = {EXPECTED[self.fate]}
        late = self.paid_at is not None and self.due_at is not None and self.paid_at >= self.due_at
        if late and self.fate in ("pay", "pay_wrong_amount"):
            self.expected.add(PAID_AFTER_EXPIRY)

    @property
    def right(self) -> bool:
        return self.observed in self.expected


# The kinds of process killed: every one of each.
KILLED = ("worker", "api", "temporal")


def chaos_stack(args: argparse.Namespace) -> Stack:
    directory = Path(tempfile.mkdtemp(prefix="payrecon-chaos-"))
    stack = Stack(
        directory,
        topology=Topology.named(args.topology),
        settings={
            "PAYSTACK_TIMEOUT_SECONDS": "2",
            # Chaos measures payrecon under faults, not a caller's rate limit.
            "PAYRECON_CALLER_RATE_LIMIT": "0",
            "PAYRECON_POLL_SCHEDULE": args.poll_schedule,
            "PAYRECON_LATE_PAYMENT_WINDOW": str(args.late_window),
            "PAYRECON_CREATE_TIMEOUT_SECONDS": "20",
            "PAYRECON_EVENT_RETRY_SCHEDULE": EVENT_RETRY_SCHEDULE,
            "PAYRECON_EVENT_RETRY_FOR_SECONDS": EVENT_RETRY_FOR_SECONDS,
            **chaos_books.SWEEP_SETTINGS,
            "PAYRECON_REFUND_POLL_SCHEDULE": chaos_money.REFUND_POLL_SCHEDULE,
        },
        sandbox_settings={
            # Refunds move when chaos settles them (as a bank would, at its own pace).
            "SANDBOX_REFUND_AUTO_SECONDS": "0",
            "SANDBOX_FAULTS": json.dumps({**FAULTS, "seed": args.seed}),
            # Paystack keeps its transactions through an outage: on disk, at every change.
            "SANDBOX_STATE_FILE": str(directory / "sandbox-state.json"),
        },
    )
    stack.settings["PAYRECON_API_KEYS"] = chaos_books.api_keys(stack.api_key)
    return stack


# --- the customers and the backend service ---------------------------------------------


async def invoice_story(
    invoice: Invoice,
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    args: argparse.Namespace,
    gate: asyncio.Semaphore,
    rng: random.Random,
    deadline: float,
) -> None:
    # Each invoice its own customer: the mail catcher's receipts are told apart by address.
    body = {
        "customer_email": f"{invoice.key}@example.com",
        "amount": invoice.amount,
        "currency": "NGN",
    }
    body["due_in_seconds"] = args.due_seconds
    refusals = 0

    async def create() -> httpx.Response:
        nonlocal refusals
        answer = await api.post("/invoices", json=body, headers={"Idempotency-Key": invoice.key})
        refusals += answer.status_code == 503 and "Paystack is unavailable" in answer.text
        return answer

    async with gate:
        created = await retrying(create, until=max(deadline, time.monotonic() + CREATE_PATIENCE))
    invoice.refusals = refusals
    if created.status_code not in (200, 201):
        invoice.notes.append(f"create answered {created.status_code}: {created.text[:200]}")
        return
    invoice.created_at = time.monotonic()
    deadline = max(
        deadline, invoice.created_at + args.due_seconds + args.late_window + STORY_PATIENCE
    )
    data = created.json()
    invoice.invoice_id = data["id"]
    invoice.due_at = datetime.fromisoformat(data["due_at"])
    reference = data["paystack_reference"]
    invoice.judge()

    if invoice.fate in ("pay", "pay_wrong_amount"):
        await asyncio.sleep(rng.uniform(0, args.due_seconds * 0.5))
        amount = invoice.amount if invoice.fate == "pay" else invoice.amount // 2
        invoice.paid_at = await pay(sandbox, reference, amount, deadline)
        invoice.paid_in_sandbox = True
        invoice.judge()
    elif invoice.fate == "pay_late":
        await wait_until_status(api, invoice.invoice_id, "expired", deadline)
        invoice.paid_at = await pay(sandbox, reference, invoice.amount, deadline)
        invoice.paid_in_sandbox = True
        invoice.judge()
    elif invoice.fate == "cancel":
        await asyncio.sleep(rng.uniform(0, args.due_seconds * 0.3))
        answer = await retrying(
            lambda: api.post(f"/invoices/{invoice.invoice_id}/cancel"), until=deadline
        )
        if answer.status_code == 409 and "expired" in answer.text:
            invoice.expected = {("expired", None)}
        elif answer.status_code not in (200, 202, 409):
            invoice.notes.append(f"cancel answered {answer.status_code}: {answer.text[:200]}")


async def pay(sandbox: httpx.AsyncClient, reference: str, amount: int, until: float) -> datetime:
    """Pays as a customer would; returns when Paystack recorded the payment. While Paystack
    is down the customer tries again, first looking whether the last try went through."""
    controls = SandboxControls(sandbox)
    again = AsyncRetrying(
        stop=stop_after_delay(max(0.0, until - time.monotonic())),
        wait=wait_fixed(0.5),
        retry=retry_if_exception_type(httpx.TransportError),
        reraise=True,
    )
    async for attempt in again:
        with attempt:
            held = await controls.transaction(reference)
            transaction = (held or {}).get("transaction") or {}
            if transaction.get("status") == "success" and transaction.get("paid_at"):
                paid: dict[str, Any] = transaction
            else:
                paid = await controls.pay(reference, amount=amount)
    return datetime.fromisoformat(paid["paid_at"].replace("Z", "+00:00"))


async def wait_until_status(
    api: httpx.AsyncClient, invoice_id: str, status: str, deadline: float
) -> None:
    async def reached() -> bool:
        response = await api.get(f"/invoices/{invoice_id}")
        return response.status_code == 200 and response.json()["status"] == status

    wait = AsyncRetrying(
        stop=stop_after_delay(max(0.0, deadline - time.monotonic())),
        wait=wait_fixed(0.5),
        retry=retry_if_exception_type(httpx.TransportError) | retry_if_result(lambda ok: not ok),
    )
    try:
        await wait(reached)
    except RetryError as error:
        raise TimeoutError(f"{invoice_id} never became {status}") from error


# --- the chaos ------------------------------------------------------------------------


async def kill_and_restart(
    stack: Stack, args: argparse.Namespace, rng: random.Random, window: float, phase: Phase
) -> Counter[str]:
    """Each process (each API and each worker of the topology, and Temporal) is SIGKILLed
    `args.kills` times at random moments, then started again."""
    moments = sorted(
        (rng.uniform(2.0, window), name)
        for kind in KILLED
        for name in stack.named(kind)
        for _ in range(args.kills)
    )
    restarts: Counter[str] = Counter()
    started = time.monotonic()
    for moment, name in moments:
        await asyncio.sleep(max(0.0, moment - (time.monotonic() - started)))
        stack.services[name].kill()
        await asyncio.sleep(rng.uniform(0.2, 1.5))
        await asyncio.to_thread(stack.start, name)
        restarts[name] += 1
        phase.note(f"{name} SIGKILLed and started again ({sum(restarts.values())}/{len(moments)})")
    return restarts


async def paystack_outages(
    stack: Stack, args: argparse.Namespace, rng: random.Random, window: float, phase: Phase
) -> list[float]:
    """Paystack (the sandbox process) SIGKILLed `args.outages` times, each time kept down
    for `args.outage_seconds` and then started again: one after another, spread over the
    window. Returns how long each outage lasted."""
    lasted: list[float] = []
    gap = max(1.0, (window - args.outages * args.outage_seconds) / (args.outages + 1))
    for n in range(args.outages):
        await asyncio.sleep(rng.uniform(0.5, 1.0) * gap)
        down = time.monotonic()
        stack.services["sandbox"].kill()
        phase.note(f"Paystack down ({n + 1}/{args.outages}) for {args.outage_seconds:g} s")
        await asyncio.sleep(args.outage_seconds)
        await asyncio.to_thread(stack.start, "sandbox")
        await asyncio.to_thread(wait_for_http, f"{stack.sandbox_url}/_sandbox/healthz")
        lasted.append(time.monotonic() - down)
        phase.note(f"Paystack back after {lasted[-1]:.1f} s")
    return lasted


async def register_merchant(api: httpx.AsyncClient, merchant: Merchant, until: float) -> None:
    """The merchant's endpoint, for every event of the chaos run's API key."""
    answer = await retrying(
        lambda: api.post("/webhook-endpoints", json={"url": merchant.url}), until=until
    )
    if answer.status_code != 201:
        raise RuntimeError(f"registering the merchant answered {answer.status_code}: {answer.text}")
    merchant.secret = answer.json()["secret"]


async def merchant_outage(
    merchant: Merchant, args: argparse.Namespace, window: float, phase: Phase
) -> float:
    """The merchant's endpoint refuses connections for `args.merchant_down_seconds`, from
    the middle of the window. Returns how long it was down."""
    if args.merchant_down_seconds <= 0:
        return 0.0
    await asyncio.sleep(max(1.0, (window - args.merchant_down_seconds) / 2))
    down = time.monotonic()
    await asyncio.to_thread(merchant.down)
    phase.note(f"merchant endpoint down for {args.merchant_down_seconds:g} s")
    await asyncio.sleep(args.merchant_down_seconds)
    await asyncio.to_thread(merchant.up)
    lasted = time.monotonic() - down
    phase.note(f"merchant endpoint back after {lasted:.1f} s")
    return lasted


@dataclass
class Events:
    """Every transition that happened, against what the merchant and the customers got."""

    expected: set[str] = field(default_factory=set)
    paid: set[str] = field(default_factory=set)
    delivered: set[str] = field(default_factory=set)
    received: set[str] = field(default_factory=set)
    # Per invoice id: the distinct receipt Message-IDs its customer was sent.
    receipts: dict[str, set[str]] = field(default_factory=dict)
    merchant: dict[str, int] = field(default_factory=dict)
    outage: float = 0.0

    @property
    def lost(self) -> set[str]:
        return self.expected - self.delivered

    @property
    def phantom(self) -> set[str]:
        return self.received - self.expected

    @property
    def receipt_counts(self) -> Counter[int]:
        """How many paid invoices had 0, 1, 2… distinct receipt Message-IDs."""
        return Counter(len(self.receipts.get(invoice, set())) for invoice in self.paid)

    @property
    def unpaid_receipts(self) -> int:
        return sum(1 for invoice in self.receipts if invoice not in self.paid)

    @property
    def settled(self) -> bool:
        return not self.lost and set(self.receipt_counts) <= {1}


def transitions(stack: Stack) -> tuple[set[str], set[str]]:
    """From invoice_status_changes and the timelines' refund and dispute changes: each
    change's event id; and the invoices paid."""
    engine = make_engine(stack.database_url)
    kinds = (TimelineKind.REFUND_UPDATED.value, TimelineKind.DISPUTE_UPDATED.value)
    try:
        with Session(engine) as session:
            changes = session.exec(select(InvoiceStatusChange)).all()
            parts = session.exec(
                select(InvoiceTimelineEntry).where(col(InvoiceTimelineEntry.kind).in_(kinds))
            ).all()
    finally:
        engine.dispose()
    expected = {event_id_for(change.invoice_id, change.revision) for change in changes}
    expected |= {event_id_for(entry.invoice_id, entry.detail["revision"]) for entry in parts}
    paid = {change.invoice_id for change in changes if change.status == "paid"}
    return expected, paid


async def receipts(mail: httpx.AsyncClient, invoices: list[Invoice]) -> dict[str, set[str]]:
    """The receipts the mail catcher got, by the invoice whose customer they went to."""
    customers = {
        f"{invoice.key}@example.com": invoice.invoice_id
        for invoice in invoices
        if invoice.invoice_id is not None
    }
    found: dict[str, set[str]] = {}
    for message in (await mail.get("/messages")).json():
        message_id = message["message_id"]
        if not RECEIPT_ID.match(message_id):
            continue
        for address in message["envelope_to"]:
            invoice_id = customers.get(address) or f"(unknown customer {address})"
            found.setdefault(invoice_id, set()).add(message_id)
    return found


async def settle_events(
    stack: Stack,
    merchant: Merchant,
    mail: httpx.AsyncClient,
    invoices: list[Invoice],
    deadline: float,
    phase: Phase,
) -> Events:
    """Waits until every transition's event reached the merchant and every paid invoice's
    receipt the mail catcher, or the time is up; then counts."""
    events = Events()
    done, noted = 0, time.monotonic()
    while True:
        events.expected, events.paid = await asyncio.to_thread(transitions, stack)
        received = merchant.received
        events.delivered = {item.webhook_id for item in received if item.delivered}
        events.received = {item.webhook_id for item in received}
        events.receipts = await receipts(mail, invoices)
        now_done = len(events.expected & events.delivered)
        phase.advance(now_done - done)
        done = now_done
        if events.settled or time.monotonic() >= deadline:
            break
        if time.monotonic() - noted >= 10:
            noted = time.monotonic()
            missing = sum(1 for i in events.paid if len(events.receipts.get(i, ())) != 1)
            phase.note(
                f"still waiting: {len(events.lost)} events not delivered, "
                f"{missing} paid invoices without one receipt"
            )
        await asyncio.sleep(1.0)
    events.merchant = summary(merchant)
    return events


def half_made(stack: Stack, invoices: list[Invoice]) -> int:
    """Invoice rows that no create was answered with: made, but never handed to a caller."""
    answered = {invoice.invoice_id for invoice in invoices}
    engine = make_engine(stack.database_url)
    try:
        rows, _ = queries.list_invoices(engine, status=None, limit=10 * len(invoices), offset=0)
    finally:
        engine.dispose()
    return sum(1 for row in rows if row.id not in answered)


# --- the verdict ----------------------------------------------------------------------


def observe(stack: Stack, invoices: list[Invoice]) -> None:
    engine = make_engine(stack.database_url)
    try:
        for invoice in invoices:
            if invoice.invoice_id is None:
                continue
            row = queries.get_invoice(engine, invoice.invoice_id)
            if row is not None:
                invoice.observed = (row.status, row.review_reason)
            invoice.history = tuple(
                change.status for change in queries.status_history(engine, invoice.invoice_id)
            )
    finally:
        engine.dispose()


async def settle(stack: Stack, invoices: list[Invoice], deadline: float, phase: Phase) -> None:
    """Waits until every invoice shows what it should, or the time is up."""
    settled = 0

    async def count_settled() -> bool:
        nonlocal settled
        await asyncio.to_thread(observe, stack, invoices)
        now_right = sum(1 for i in invoices if i.invoice_id is not None and i.right)
        phase.advance(now_right - settled)
        settled = now_right
        return all(i.right for i in invoices if i.invoice_id is not None)

    # The verdict judges whatever stands when the time is up.
    await AsyncRetrying(
        stop=stop_after_delay(max(0.0, deadline - time.monotonic())),
        wait=wait_fixed(1.0),
        retry=retry_if_result(lambda all_right: not all_right),
        retry_error_callback=lambda _: False,
    )(count_settled)


async def count_provider_calls(sandbox: httpx.AsyncClient, invoices: list[Invoice]) -> None:
    for invoice in invoices:
        if invoice.invoice_id is None:
            continue
        total = 0
        for reference in (invoice.invoice_id, f"{invoice.invoice_id}.2", f"{invoice.invoice_id}.3"):
            transaction = await SandboxControls(sandbox).transaction(reference)
            if transaction is not None:
                calls = transaction["calls"]
                total += calls.get("initialize", 0) + calls.get("verify", 0)
        invoice.provider_calls = total


def verdict(
    invoices: list[Invoice],
    faults: dict[str, int],
    restarts: Counter[str],
    outages: list[float],
    unanswered_rows: int,
    events: Events,
    wall: float,
) -> tuple[list[tuple[str, str]], bool]:
    created = [i for i in invoices if i.invoice_id is not None]
    answered = sorted(i.created_at for i in created if i.created_at is not None)
    creating = answered[-1] - answered[0] if len(answered) > 1 else 0.0
    wrong = [i for i in created if not i.right]
    # A status path outside the graph (domain/invoice.py): a double, backward or foreign step.
    doubles = [i for i in created if i.history and not follows_the_graph(list(i.history))]
    lost = [i for i in created if i.paid_in_sandbox and i.observed[0] not in PAYMENT_SHOWN]
    calls = [i.provider_calls for i in created] or [0]
    fates = Counter(i.fate for i in invoices)
    rows = [
        ("invoices", f"{len(invoices)} ({len(created)} created)"),
        ("fates", ", ".join(f"{name} {count}" for name, count in sorted(fates.items()))),
        *[(f"fault: {name}", str(count)) for name, count in sorted(faults.items()) if count],
        *[(f"restarts: {name}", str(count)) for name, count in sorted(restarts.items())],
        ("Paystack outages", ", ".join(f"{seconds:.1f} s" for seconds in outages) or "none"),
        (
            "creates refused as Paystack down",
            f"{sum(i.refusals for i in invoices)} (of {sum(bool(i.refusals) for i in invoices)} "
            "invoices, each created by a retry with its key)",
        ),
        ("half-made invoices", str(unanswered_rows)),
        ("wrong final states", str(len(wrong))),
        ("double transitions", str(len(doubles))),
        ("payments not reflected", str(len(lost))),
        ("invoices not created", str(len(invoices) - len(created))),
        (
            "creates answered",
            f"{len(answered) / creating:.1f} a second, over {creating:.0f} s"
            if creating
            else str(len(answered)),
        ),
        ("provider calls per invoice", f"mean {statistics.mean(calls):.2f}, max {max(calls)}"),
        *event_rows(events),
        ("wall time", f"{wall:.1f} s"),
    ]
    for invoice in (wrong + doubles + lost)[:10]:
        rows.append(
            (
                f"  e.g. {invoice.invoice_id}",
                f"{invoice.fate}: expected {sorted(invoice.expected, key=str)}, "
                f"saw {invoice.observed}, "
                f"history {invoice.history} {invoice.notes}",
            )
        )
    ok = (
        not wrong
        and not doubles
        and not lost
        and not unanswered_rows
        and len(created) == len(invoices)
        and not events.lost
        and not events.phantom
        and set(events.receipt_counts) <= {1}
        and not events.unpaid_receipts
        and not events.merchant.get("bad_signatures")
    )
    return rows, ok


def event_rows(events: Events) -> list[tuple[str, str]]:
    merchant = events.merchant
    counts = events.receipt_counts
    paid = len(events.paid)
    if set(counts) <= {1}:
        per_paid = f"1 each ({paid} paid invoices)"
    else:
        per_paid = (
            f"min {min(counts)}, max {max(counts)}: {counts.get(0, 0)} of {paid} paid invoices "
            f"without a receipt, {sum(n for k, n in counts.items() if k > 1)} with more than one"
        )
    rows = [
        (
            "merchant endpoint",
            f"{merchant.get('requests', 0)} requests, {merchant.get('failed', 0)} answered 500, "
            f"{merchant.get('slowed', 0)} slow, down {events.outage:.1f} s, "
            f"{merchant.get('bad_signatures', 0)} bad signatures",
        ),
        ("events expected (transitions)", str(len(events.expected))),
        ("lost events", str(len(events.lost))),
        ("phantom events", str(len(events.phantom))),
        ("receipt Message-IDs per paid invoice", per_paid),
        ("receipts for unpaid invoices", str(events.unpaid_receipts)),
    ]
    for event_id in sorted(events.lost)[:5]:
        rows.append(("  e.g. lost", event_id))
    for event_id in sorted(events.phantom)[:5]:
        rows.append(("  e.g. phantom", event_id))
    return rows


def print_table(rows: list[tuple[str, str]]) -> None:
    width = max(len(label) for label, _ in rows)
    print(f"+-{'-' * width}-+-{'-' * 40}")
    for label, value in rows:
        print(f"| {label.ljust(width)} | {value}")
    print(f"+-{'-' * width}-+-{'-' * 40}")


async def run(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    stack = chaos_stack(args)
    directory = stack.directory
    started = time.monotonic()
    merchant = Merchant(
        fail_rate=MERCHANT_FAIL_RATE, slow_rate=MERCHANT_SLOW_RATE, seed=args.seed
    ).start()
    try:
        progress = Progress()
        with progress.phase("starting the stack"):
            await asyncio.to_thread(stack.start_all)
        names = list(FATES)
        invoices = [
            Invoice(
                key=f"chaos-{args.seed}-{n}",
                fate=rng.choices(names, weights=[FATES[name] for name in names])[0],
                amount=rng.randrange(5000, 5_000_000),
            )
            for n in range(args.invoices)
        ]
        # Creates at about 5 a second on a slow 2-core machine under these faults: the kill
        # window and the stories' patience stretch with them.
        creation_time = args.invoices / CREATES_PER_SECOND
        active = (
            creation_time
            + args.due_seconds
            + args.outages * args.outage_seconds
            + args.merchant_down_seconds
        )
        deadline = time.monotonic() + active + args.late_window + 300
        async with (
            httpx.AsyncClient(
                base_url=stack.api_url,
                headers={"Authorization": f"Bearer {stack.api_key}"},
                timeout=30,
            ) as api,
            httpx.AsyncClient(base_url=stack.sandbox_url, timeout=30) as sandbox,
            httpx.AsyncClient(base_url=stack.mail_url, timeout=30) as mail,
        ):
            gate = asyncio.Semaphore(args.concurrency)
            await register_merchant(api, merchant, deadline)
            books = chaos_books.Books(
                stack, sandbox, api, invoices, random.Random(rng.random()), per_kind=args.books
            )
            money = chaos_money.MoneyAfterPayment(
                books, api, sandbox, random.Random(rng.random()), per_plan=args.refunds
            )

            # Drawn first, in order, so a seed replays the same schedule.
            seeds = [rng.random() for _ in invoices]

            async def story(invoice: Invoice, seed: float, phase: Phase) -> None:
                try:
                    own = random.Random(seed)
                    await invoice_story(invoice, api, sandbox, args, gate, own, deadline)
                except Exception as failure:
                    invoice.notes.append(f"story failed: {failure!r}")
                finally:
                    phase.advance()

            with progress.phase("invoices: created, paid or not, kills", len(invoices)) as phase:
                outage_rng = random.Random(rng.random())
                chaos = asyncio.create_task(kill_and_restart(stack, args, rng, active, phase))
                outages = asyncio.create_task(
                    paystack_outages(stack, args, outage_rng, active, phase)
                )
                merchant_down = asyncio.create_task(merchant_outage(merchant, args, active, phase))
                trouble = asyncio.create_task(books.during(active, phase, deadline))
                after_payment = asyncio.create_task(money.during(active, phase, deadline))
                await asyncio.gather(
                    *(story(i, seed, phase) for i, seed in zip(invoices, seeds, strict=True))
                )
                await trouble
                await after_payment
                restarts = await chaos
                outage_lengths = await outages
                merchant_down_for = await merchant_down
            money_rows, money_ok, judged = await chaos_money.judge(
                money, progress, time.monotonic() + args.late_window + 180
            )
            await money.aclose()
            # A refunded invoice ends as Paystack's processed refunds make it.
            for invoice in invoices:
                refunded_to = judged.expected_status.get(invoice.invoice_id or "")
                if refunded_to is not None:
                    invoice.expected = {(refunded_to, None)}
            created = sum(1 for invoice in invoices if invoice.invoice_id is not None)
            with progress.phase("waiting for every invoice's final state", created) as phase:
                settle_by = time.monotonic() + args.late_window + args.due_seconds + 120
                await settle(stack, invoices, settle_by, phase)
            with progress.phase("counting Paystack calls"):
                await count_provider_calls(sandbox, invoices)
            expected, _ = await asyncio.to_thread(transitions, stack)
            with progress.phase("waiting for every event and receipt", len(expected)) as phase:
                events = await settle_events(
                    stack, merchant, mail, invoices, time.monotonic() + args.events_wait, phase
                )
                events.outage = merchant_down_for
            stats = await SandboxControls(sandbox).stats()
            book_rows, books_ok, recon_show = await chaos_books.judge(
                books, progress, time.monotonic() + 600
            )
        progress.close()
        rows, ok = verdict(
            invoices,
            stats.get("faults", {}),
            restarts,
            outage_lengths,
            await asyncio.to_thread(half_made, stack, invoices),
            events,
            time.monotonic() - started,
        )
        print_table(rows + money_rows + book_rows)
        print("\nthe final reconciliation run, as `payrecon recon show` prints it:\n")
        print(recon_show)
        print(f"logs and state: {directory}")
        return 0 if ok and money_ok and books_ok else 1
    finally:
        stack.stop_all()
        merchant.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=1000)
    parser.add_argument("--kills", type=int, default=3, help="SIGKILLs per process")
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--due-seconds", type=int, default=30)
    parser.add_argument("--late-window", type=float, default=20.0)
    parser.add_argument("--poll-schedule", default="2,4,8")
    parser.add_argument("--outages", type=int, default=2, help="times Paystack goes down")
    parser.add_argument(
        "--outage-seconds", type=float, default=60.0, help="how long each Paystack outage lasts"
    )
    parser.add_argument(
        "--merchant-down-seconds",
        type=float,
        default=30.0,
        help="how long the merchant's endpoint refuses connections, mid-run",
    )
    parser.add_argument(
        "--events-wait",
        type=float,
        default=180.0,
        help="at most this long, at the end, for the last events and receipts (s)",
    )
    parser.add_argument(
        "--books",
        type=int,
        default=10,
        help="of each: orphan payments, invoices paid twice, payments reversed",
    )
    parser.add_argument(
        "--refunds",
        type=int,
        default=3,
        help="paid invoices for each after-payment plan (full, partial, failing, needing "
        "attention, dashboard refunds; disputes declined, accepted)",
    )
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument(
        "--topology",
        choices=sorted(TOPOLOGIES),
        default="single",
        help="production: Postgres, two API processes behind one address, two workers",
    )
    # A SIGTERM unwinds like Ctrl-C, so the stack's processes are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
