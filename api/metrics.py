"""Prometheus metrics of the API: requests, webhook deliveries, and invoices as the
database records them (so the worker's transitions count too), read at most once a period."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine
from sqlmodel import Session

from db import queries
from db import reconciliation as books
from domain.discrepancies import DiscrepancyKind
from inbox import store
from outbound import outbox

HTTP_REQUESTS = Counter(
    "payrecon_http_requests", "API requests by route and answer", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "payrecon_http_request_duration_seconds", "Time to answer, by route", ["method", "route"]
)


@dataclass(frozen=True)
class Figures:
    transitions: dict[str, int]
    invoices: dict[str, int]
    queued: int
    endpoints: dict[str, int]
    recon: books.SweepFigures = field(default_factory=books.SweepFigures)
    refunds: dict[str, int] = field(default_factory=dict)
    disputes: dict[str, int] = field(default_factory=dict)
    # By kind (delivery, email): pending, and the most overdue one's seconds past due.
    outbox: dict[str, tuple[int, float]] = field(default_factory=dict)


def _outbox_backlog(engine: Engine) -> dict[str, tuple[int, float]]:
    with Session(engine) as session:
        return outbox.backlog(session, datetime.now(UTC))


class InvoiceCollector(Collector):
    """The database's figures, read at most once every `refresh_seconds` however often and
    however many scrapers ask: a scrape costs one read per period, not three per scrape."""

    def __init__(self, engine: Engine, refresh_seconds: float) -> None:
        self._engine = engine
        self._refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        self._figures: Figures | None = None
        self._read_at = 0.0

    def _current(self) -> Figures:
        with self._lock:  # concurrent scrapes wait for one read, not make their own
            stale = time.monotonic() - self._read_at >= self._refresh_seconds
            if self._figures is None or stale:
                self._figures = Figures(
                    transitions=queries.count_status_changes(self._engine),
                    invoices=queries.count_invoices_by_status(self._engine),
                    queued=store.count_queued_deliveries(self._engine),
                    endpoints=queries.count_webhook_endpoints(self._engine),
                    recon=books.sweep_figures(self._engine),
                    refunds=queries.count_refunds_by_status(self._engine),
                    disputes=queries.count_open_disputes(self._engine),
                    outbox=_outbox_backlog(self._engine),
                )
                self._read_at = time.monotonic()
            return self._figures

    def describe(self) -> Iterator[Metric]:
        """The names alone, for the registry: registering reads nothing."""
        yield from self._families(Figures(transitions={}, invoices={}, queued=0, endpoints={}))

    def collect(self) -> Iterator[Metric]:
        yield from self._families(self._current())

    def _families(self, figures: Figures) -> Iterator[Metric]:
        transitions = CounterMetricFamily(
            "payrecon_invoice_transitions",
            "Invoice status changes recorded, by the status entered",
            labels=["status"],
        )
        for status, count in figures.transitions.items():
            transitions.add_metric([status], count)
        invoices = GaugeMetricFamily(
            "payrecon_invoices", "Invoices by current status", labels=["status"]
        )
        for status, count in figures.invoices.items():
            invoices.add_metric([status], count)
        queued = GaugeMetricFamily(
            "payrecon_webhook_deliveries_queued",
            "Accepted deliveries not yet relayed to their workflows",
        )
        queued.add_metric([], figures.queued)
        endpoints = GaugeMetricFamily(
            "payrecon_webhook_endpoints",
            "Merchants' webhook endpoints, enabled or disabled (by a 410, or failing too long)",
            labels=["state"],
        )
        for state, count in figures.endpoints.items():
            endpoints.add_metric([state], count)
        refunds = GaugeMetricFamily(
            "payrecon_refunds",
            "Refunds by status (needs_attention: waiting for an operator's retry)",
            labels=["status"],
        )
        for status, count in figures.refunds.items():
            refunds.add_metric([status], count)
        disputes = GaugeMetricFamily(
            "payrecon_disputes_open",
            "Open disputes: overdue (past their due date) or awaiting",
            labels=["state"],
        )
        for state, count in figures.disputes.items():
            disputes.add_metric([state], count)
        pending = GaugeMetricFamily(
            "payrecon_outbox_pending",
            "Event deliveries and customer emails owed and not yet sent (or given up)",
            labels=["kind"],
        )
        overdue = GaugeMetricFamily(
            "payrecon_outbox_oldest_due_seconds",
            "How long the most overdue pending delivery or email has been due (0: none)",
            labels=["kind"],
        )
        for kind, (count, seconds) in figures.outbox.items():
            pending.add_metric([kind], count)
            overdue.add_metric([kind], seconds)
        yield pending
        yield overdue
        yield from _sweep_families(figures.recon)
        yield refunds
        yield disputes
        yield endpoints
        yield transitions
        yield invoices
        yield queued


def _sweep_families(figures: books.SweepFigures) -> Iterator[Metric]:
    open_ = GaugeMetricFamily(
        "payrecon_discrepancies_open",
        "Reconciliation discrepancies not yet resolved, by kind",
        labels=["kind"],
    )
    for kind in DiscrepancyKind:
        open_.add_metric([kind.value], figures.open.get(kind.value, 0))
    yield open_
    healed = CounterMetricFamily(
        "payrecon_missed_payments_healed",
        "Payments the sweep found an invoice had missed, and its verify then recorded",
    )
    healed.add_metric([], figures.healed)
    yield healed
    if figures.last_success_at is not None:
        age = GaugeMetricFamily(
            "payrecon_reconciliation_last_success_age_seconds",
            "Seconds since the last reconciliation run completed",
        )
        age.add_metric([], max(0.0, time.time() - figures.last_success_at.timestamp()))
        yield age
        matched = GaugeMetricFamily(
            "payrecon_reconciliation_records",
            "Paystack records the last completed run saw, and those it matched to invoices",
            labels=["outcome"],
        )
        matched.add_metric(["seen"], figures.records_seen)
        matched.add_metric(["matched"], figures.records_matched)
        yield matched


def register_invoice_metrics(engine: Engine, refresh_seconds: float) -> InvoiceCollector:
    collector = InvoiceCollector(engine, refresh_seconds)
    REGISTRY.register(collector)
    return collector
