"""In-memory state of the sandbox: transactions, customers, call counters, webhook log.

One uvicorn process, one event loop: code without `await` runs atomically, so the
asyncio lock only guards changes that await the state file write.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import string
import sys
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Self, cast

from sortedcontainers import SortedKeyList

FIRST_TRANSACTION_ID = 4_100_000_000
FIRST_CUSTOMER_ID = 181_000_000
FIRST_SETTLEMENT_ID = 3_100_000
FIRST_REFUND_ID = 15_500_000
FIRST_DISPUTE_ID = 358_000
STATE_VERSION = 1
# Enough history for any test run without letting a long-lived sandbox grow unbounded.
MAX_DELIVERIES = 10_000

CALL_KINDS = (
    "initialize",
    "verify",
    "list",
    "fetch",
    "settlements",
    "refund",
    "refunds",
    "disputes",
)
_ALNUM = string.ascii_lowercase + string.digits


def random_code(length: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


def now() -> datetime:
    """UTC now, cut to milliseconds: Paystack timestamps carry no finer precision."""
    moment = datetime.now(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class TransactionNotFound(LookupError):
    pass


class DuplicateReference(ValueError):
    pass


@dataclass
class Customer:
    id: int
    email: str
    customer_code: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "email": self.email, "customer_code": self.customer_code}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Customer:
        return cls(id=raw["id"], email=raw["email"], customer_code=raw["customer_code"])


@dataclass
class Transaction:
    id: int
    reference: str
    access_code: str
    customer: Customer
    requested_amount: int
    # What was paid once settled; the requested amount until then, as Paystack shows it.
    amount: int
    currency: str
    created_at: datetime
    status: str = "abandoned"
    callback_url: str | None = None
    metadata: Any = None
    channels: list[str] | None = None
    paid_at: datetime | None = None
    gateway_response: str | None = None
    channel: str = "card"
    fees: int | None = None
    ip_address: str | None = None
    authorization: dict[str, Any] = field(default_factory=dict)
    log: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "reference": self.reference,
            "access_code": self.access_code,
            "customer": self.customer.to_dict(),
            "requested_amount": self.requested_amount,
            "amount": self.amount,
            "currency": self.currency,
            "created_at": self.created_at.isoformat(),
            "status": self.status,
            "callback_url": self.callback_url,
            "metadata": self.metadata,
            "channels": self.channels,
            "paid_at": self.paid_at.isoformat() if self.paid_at else None,
            "gateway_response": self.gateway_response,
            "channel": self.channel,
            "fees": self.fees,
            "ip_address": self.ip_address,
            "authorization": self.authorization,
            "log": self.log,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Transaction:
        return cls(
            id=raw["id"],
            reference=raw["reference"],
            access_code=raw["access_code"],
            customer=Customer.from_dict(raw["customer"]),
            requested_amount=raw["requested_amount"],
            amount=raw["amount"],
            currency=raw["currency"],
            created_at=datetime.fromisoformat(raw["created_at"]),
            status=raw["status"],
            callback_url=raw.get("callback_url"),
            metadata=raw.get("metadata"),
            channels=raw.get("channels"),
            paid_at=_dt(raw.get("paid_at")),
            gateway_response=raw.get("gateway_response"),
            channel=raw.get("channel", "card"),
            fees=raw.get("fees"),
            ip_address=raw.get("ip_address"),
            authorization=raw.get("authorization") or {},
            log=raw.get("log"),
        )


@dataclass
class Settlement:
    """A payout of a day's successful transactions in one currency, as Paystack makes it."""

    id: int
    currency: str
    total_processed: int
    total_fees: int
    deductions: int | None
    total_amount: int
    settlement_date: datetime
    created_at: datetime
    references: list[str] = field(default_factory=list)
    status: str = "success"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "currency": self.currency,
            "total_processed": self.total_processed,
            "total_fees": self.total_fees,
            "deductions": self.deductions,
            "total_amount": self.total_amount,
            "settlement_date": self.settlement_date.isoformat(),
            "created_at": self.created_at.isoformat(),
            "references": self.references,
            "status": self.status,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Settlement:
        return cls(
            id=raw["id"],
            currency=raw["currency"],
            total_processed=raw["total_processed"],
            total_fees=raw["total_fees"],
            deductions=raw.get("deductions"),
            total_amount=raw["total_amount"],
            settlement_date=datetime.fromisoformat(raw["settlement_date"]),
            created_at=datetime.fromisoformat(raw["created_at"]),
            references=list(raw.get("references", [])),
            status=raw.get("status", "success"),
        )


class StoredRecord:
    """Saved as a dict of its dataclass fields, the datetimes named in `TIMES` as ISO text."""

    TIMES: ClassVar[tuple[str, ...]] = ()

    def to_dict(self) -> dict[str, Any]:
        raw = {f.name: getattr(self, f.name) for f in fields(cast(Any, self))}
        for name in self.TIMES:
            raw[name] = raw[name].isoformat() if raw[name] is not None else None
        return raw

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Self:
        return cls(**{**raw, **{name: _dt(raw.get(name)) for name in cls.TIMES}})


# A refund's statuses, as Paystack writes them; the last three end it (needs-attention
# until the customer's account details are sent).
REFUND_STATUSES = ("pending", "processing", "processed", "failed", "needs-attention")
REFUND_FINAL = ("processed", "failed")


@dataclass
class Refund(StoredRecord):
    """Money sent back for a successful transaction, in part or in full."""

    TIMES: ClassVar[tuple[str, ...]] = ("expected_at", "refunded_at", "created_at", "updated_at")

    id: int
    reference: str
    transaction_id: int
    amount: int
    currency: str
    created_at: datetime
    updated_at: datetime
    expected_at: datetime
    status: str = "pending"
    customer_note: str | None = None
    merchant_note: str | None = None
    refunded_by: str = "sandbox@example.com"
    refunded_at: datetime | None = None
    dispute_id: int | None = None
    bank_reference: str | None = None

    @property
    def in_flight(self) -> bool:
        return self.status not in REFUND_FINAL


DISPUTE_OPEN = ("awaiting-merchant-feedback", "awaiting-bank-feedback", "pending")


@dataclass
class Dispute(StoredRecord):
    """A card holder's claim against a successful transaction."""

    TIMES: ClassVar[tuple[str, ...]] = ("due_at", "resolved_at", "created_at", "updated_at")

    id: int
    reference: str
    transaction_id: int
    currency: str
    refund_amount: int
    category: str
    due_at: datetime
    created_at: datetime
    updated_at: datetime
    status: str = "awaiting-merchant-feedback"
    resolution: str | None = None
    resolved_at: datetime | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    # Evidence files: the names upload_url handed out, and those then uploaded.
    upload_names: list[str] = field(default_factory=list)
    uploaded: list[str] = field(default_factory=list)
    evidence: int | None = None

    @property
    def open(self) -> bool:
        return self.status in DISPUTE_OPEN


@dataclass
class WebhookAttempt:
    event: str
    reference: str
    url: str
    attempted_at: datetime
    latency_ms: float
    status_code: int | None = None
    error: str | None = None
    # Which send this is: the retries of one delivery share its delivery_id.
    delivery_id: int = 0
    attempt: int = 1
    retry: bool = False
    duplicate: bool = False
    reordered: bool = False
    bad_signature: bool = False
    delay_ms: float = 0.0
    # Dropped by fault injection: logged so the loss is visible, but never sent.
    dropped: bool = False

    @property
    def delivered(self) -> bool:
        # Paystack counts anything but a 200 as a failed delivery.
        return self.status_code == 200

    def to_dict(self) -> dict[str, Any]:
        return {
            "event": self.event,
            "reference": self.reference,
            "url": self.url,
            "attempted_at": self.attempted_at.isoformat(timespec="milliseconds").replace(
                "+00:00", "Z"
            ),
            "status_code": self.status_code,
            "error": self.error,
            "latency_ms": round(self.latency_ms, 3),
            "delivered": self.delivered,
            "delivery_id": self.delivery_id,
            "attempt": self.attempt,
            "retry": self.retry,
            "duplicate": self.duplicate,
            "reordered": self.reordered,
            "bad_signature": self.bad_signature,
            "delay_ms": round(self.delay_ms, 3),
            "dropped": self.dropped,
        }


@dataclass
class NewTransaction:
    """Validated fields of an initialize request."""

    email: str
    amount: int
    currency: str
    reference: str | None
    callback_url: str | None = None
    metadata: Any = None
    channels: list[str] | None = None
    # Seeded books may be older than now; Paystack's own are made now.
    created_at: datetime | None = None


def list_order(tx: Transaction) -> tuple[datetime, int]:
    """Paystack's list order, newest first: by creation time, then id (a seeded transaction
    may be older than its id says)."""
    return tx.created_at, tx.id


class Store:
    def __init__(self, state_file: Path | None = None) -> None:
        self.lock = asyncio.Lock()
        self.state_file = state_file
        # Bumped by reset(), so work started before it can tell it is stale.
        self.generation = 0
        self._clear()
        if state_file is not None and state_file.exists():
            self._load(state_file)

    def _clear(self) -> None:
        self._transactions: dict[str, Transaction] = {}
        # The list order kept as transactions arrive: a page is a range, not a sort.
        self._ordered = SortedKeyList(key=list_order)
        self._by_id: dict[int, str] = {}
        self._by_access_code: dict[str, str] = {}
        self._customers: dict[str, Customer] = {}
        self._next_id = FIRST_TRANSACTION_ID
        self._next_customer_id = FIRST_CUSTOMER_ID
        self.calls: Counter[str] = Counter({kind: 0 for kind in CALL_KINDS})
        self.reference_calls: dict[str, Counter[str]] = {}
        self.deliveries: deque[WebhookAttempt] = deque(maxlen=MAX_DELIVERIES)
        self.webhooks_sent = 0
        self.settlements: dict[int, Settlement] = {}
        # Which settlement paid each reference out.
        self.settled: dict[str, int] = {}
        self._next_settlement_id = FIRST_SETTLEMENT_ID
        self.refunds: dict[int, Refund] = {}
        self._next_refund_id = FIRST_REFUND_ID
        self.disputes: dict[int, Dispute] = {}
        self._next_dispute_id = FIRST_DISPUTE_ID

    # Calls and deliveries

    def count_call(self, kind: str, reference: str | None = None) -> None:
        self.calls[kind] += 1
        if reference is not None:
            self.count_reference_call(kind, reference)

    def count_reference_call(self, kind: str, reference: str) -> None:
        self.reference_calls.setdefault(reference, Counter())[kind] += 1

    def calls_for(self, reference: str) -> dict[str, int]:
        counts = self.reference_calls.get(reference, Counter())
        return {"initialize": counts["initialize"], "verify": counts["verify"]}

    def record_delivery(self, attempt: WebhookAttempt, generation: int) -> None:
        # A delivery scheduled before a reset must not leak into the next test's log.
        if generation != self.generation:
            return
        self.deliveries.append(attempt)
        if not attempt.dropped:
            self.webhooks_sent += 1

    def deliveries_for(self, reference: str | None = None) -> list[WebhookAttempt]:
        return [d for d in self.deliveries if reference is None or d.reference == reference]

    # Reads

    def __len__(self) -> int:
        return len(self._transactions)

    def get(self, reference: str) -> Transaction | None:
        return self._transactions.get(reference)

    def get_by_id(self, transaction_id: int) -> Transaction | None:
        reference = self._by_id.get(transaction_id)
        return self._transactions[reference] if reference is not None else None

    def get_by_access_code(self, access_code: str) -> Transaction | None:
        reference = self._by_access_code.get(access_code)
        return self._transactions[reference] if reference is not None else None

    def known_reference(self, reference: str) -> bool:
        return reference in self._transactions or reference in self.reference_calls

    def refunds_of(self, reference: str) -> list[Refund]:
        return [refund for refund in self.refunds.values() if refund.reference == reference]

    def refundable(self, tx: Transaction) -> int:
        """What is left to refund: the amount paid less every refund not failed."""
        taken = sum(r.amount for r in self.refunds_of(tx.reference) if r.status != "failed")
        return tx.amount - taken

    def in_order(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        after: tuple[datetime, int] | None = None,
        newest_first: bool = True,
    ) -> Iterator[Transaction]:
        """Transactions created in [since, until], newest first (or oldest first), and only
        those past `after` in that direction: O(log n) to the first, then one at a time."""
        low = (since, 0) if since is not None else None
        high = (until, sys.maxsize) if until is not None else None
        low_inclusive = high_inclusive = True
        if after is not None and newest_first and (high is None or after <= high):
            high, high_inclusive = after, False
        if after is not None and not newest_first and (low is None or after >= low):
            low, low_inclusive = after, False
        return cast(
            Iterator[Transaction],
            self._ordered.irange_key(
                low, high, inclusive=(low_inclusive, high_inclusive), reverse=newest_first
            ),
        )

    # Changes

    async def create(self, new: NewTransaction, *, save: bool = True) -> Transaction:
        async with self.lock:
            reference = new.reference or self._fresh_reference()
            if reference in self._transactions:
                raise DuplicateReference(reference)
            tx = Transaction(
                id=self._next_id,
                reference=reference,
                access_code=self._fresh_access_code(),
                customer=self._customer(new.email),
                requested_amount=new.amount,
                amount=new.amount,
                currency=new.currency,
                created_at=new.created_at or now(),
                callback_url=new.callback_url,
                metadata=new.metadata,
                channels=new.channels,
            )
            self._next_id += 1
            self._index(tx)
            if save:
                await self._save()
            return tx

    async def save(self) -> None:
        """After changes made without saving each (a bulk insert)."""
        async with self.lock:
            await self._save()

    async def update(self, reference: str, change: Callable[[Transaction], None]) -> Transaction:
        """Applies `change` under the lock and saves; `change` may raise to refuse."""
        async with self.lock:
            tx = self._transactions.get(reference)
            if tx is None:
                raise TransactionNotFound(reference)
            change(tx)
            await self._save()
            return tx

    async def add_settlements(self, made: list[Settlement]) -> list[Settlement]:
        """Numbers and keeps settlements; each of their references is then paid out."""
        async with self.lock:
            for settlement in made:
                settlement.id = self._next_settlement_id
                self._next_settlement_id += 1
                self.settlements[settlement.id] = settlement
                for reference in settlement.references:
                    self.settled[reference] = settlement.id
            await self._save()
            return made

    async def add_refund(self, make: Callable[[int], Refund]) -> Refund:
        """Numbers and keeps the refund `make` builds; `make` may raise to refuse, and runs
        under the lock, so two refunds never both take the same money."""
        async with self.lock:
            refund = make(self._next_refund_id)
            self._next_refund_id += 1
            self.refunds[refund.id] = refund
            await self._save()
            return refund

    async def add_dispute(self, make: Callable[[int], Dispute]) -> Dispute:
        async with self.lock:
            dispute = make(self._next_dispute_id)
            self._next_dispute_id += 1
            self.disputes[dispute.id] = dispute
            await self._save()
            return dispute

    async def update_dispute(self, dispute_id: int, change: Callable[[Dispute], None]) -> Dispute:
        """Applies `change` under the lock and saves; `change` may raise to refuse."""
        async with self.lock:
            dispute = self.disputes[dispute_id]
            change(dispute)
            await self._save()
            return dispute

    async def update_refund(self, refund_id: int, change: Callable[[Refund], None]) -> Refund:
        """Applies `change` under the lock and saves; `change` may raise to refuse."""
        async with self.lock:
            refund = self.refunds[refund_id]
            change(refund)
            await self._save()
            return refund

    async def reset(self) -> None:
        async with self.lock:
            self._clear()
            self.generation += 1
            await self._save()

    def _index(self, tx: Transaction) -> None:
        self._transactions[tx.reference] = tx
        self._ordered.add(tx)
        self._by_id[tx.id] = tx.reference
        self._by_access_code[tx.access_code] = tx.reference
        self._customers.setdefault(tx.customer.email, tx.customer)

    def _customer(self, email: str) -> Customer:
        key = email.lower()
        customer = self._customers.get(key)
        if customer is None:
            customer = Customer(self._next_customer_id, key, "CUS_" + random_code(15))
            self._customers[key] = customer
            self._next_customer_id += 1
        return customer

    def _fresh_reference(self) -> str:
        while (reference := random_code(10)) in self._transactions:
            continue
        return reference

    def _fresh_access_code(self) -> str:
        while (code := random_code(15)) in self._by_access_code:
            continue
        return code

    # Persistence

    def _snapshot(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "next_id": self._next_id,
            "next_customer_id": self._next_customer_id,
            "customers": [c.to_dict() for c in self._customers.values()],
            "transactions": [t.to_dict() for t in self._transactions.values()],
            "settlements": [settlement.to_dict() for settlement in self.settlements.values()],
            "refunds": [refund.to_dict() for refund in self.refunds.values()],
            "disputes": [dispute.to_dict() for dispute in self.disputes.values()],
        }

    async def _save(self) -> None:
        if self.state_file is None:
            return
        # Serialise now, under the lock, so the file never mixes two states.
        text = json.dumps(self._snapshot(), indent=1)
        await asyncio.to_thread(_write_atomically, self.state_file, text)

    def _load(self, path: Path) -> None:
        try:
            raw = json.loads(path.read_text())
            if raw.get("version") != STATE_VERSION:
                raise ValueError(f"unsupported state version {raw.get('version')!r}")
            for item in raw["customers"]:
                customer = Customer.from_dict(item)
                self._customers[customer.email] = customer
            for item in raw["transactions"]:
                tx = Transaction.from_dict(item)
                # One Customer object per email, so later changes stay shared.
                tx.customer = self._customers.setdefault(tx.customer.email, tx.customer)
                self._index(tx)
            self._next_id = max([raw["next_id"], *(t.id + 1 for t in self._transactions.values())])
            self._next_customer_id = raw["next_customer_id"]
            for item in raw.get("settlements", []):
                settlement = Settlement.from_dict(item)
                self.settlements[settlement.id] = settlement
                for reference in settlement.references:
                    self.settled[reference] = settlement.id
            self._next_settlement_id = max(
                [FIRST_SETTLEMENT_ID, *(i + 1 for i in self.settlements)]
            )
            for item in raw.get("refunds", []):
                refund = Refund.from_dict(item)
                self.refunds[refund.id] = refund
            self._next_refund_id = max([FIRST_REFUND_ID, *(i + 1 for i in self.refunds)])
            for item in raw.get("disputes", []):
                dispute = Dispute.from_dict(item)
                self.disputes[dispute.id] = dispute
            self._next_dispute_id = max([FIRST_DISPUTE_ID, *(i + 1 for i in self.disputes)])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise RuntimeError(f"cannot load sandbox state from {path}: {exc}") from exc


def _write_atomically(path: Path, text: str) -> None:
    # Write then rename: a crash mid-write leaves the previous state intact.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
