"""The inbox's Prometheus counters (its backlog gauge is read at scrape time by the API)."""

from __future__ import annotations

from prometheus_client import Counter

WEBHOOK_DELIVERIES = Counter(
    "payrecon_webhook_deliveries", "Signed Paystack deliveries by outcome", ["outcome"]
)
WEBHOOK_RELAYS = Counter(
    "payrecon_webhook_relays",
    "Attempts to signal a queued delivery to its owner, by outcome",
    ["outcome"],
)
