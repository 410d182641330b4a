"""Prometheus metrics of the API: requests, webhook deliveries, and invoices as the
database records them (read at scrape time, so the worker's transitions count too)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from db import queries
from inbox import store

HTTP_REQUESTS = Counter(
    "payrecon_http_requests", "API requests by route and answer", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "payrecon_http_request_duration_seconds", "Time to answer, by route", ["method", "route"]
)


class InvoiceCollector(Collector):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def collect(self) -> Iterator[Metric]:
        transitions = CounterMetricFamily(
            "payrecon_invoice_transitions",
            "Invoice status changes recorded, by the status entered",
            labels=["status"],
        )
        for status, count in queries.count_status_changes(self._engine).items():
            transitions.add_metric([status], count)
        invoices = GaugeMetricFamily(
            "payrecon_invoices", "Invoices by current status", labels=["status"]
        )
        for status, count in queries.count_invoices_by_status(self._engine).items():
            invoices.add_metric([status], count)
        queued = GaugeMetricFamily(
            "payrecon_webhook_deliveries_queued",
            "Accepted deliveries not yet relayed to their workflows",
        )
        queued.add_metric([], store.count_queued_deliveries(self._engine))
        yield transitions
        yield invoices
        yield queued


def register_invoice_metrics(engine: Engine) -> InvoiceCollector:
    collector = InvoiceCollector(engine)
    REGISTRY.register(collector)
    return collector
