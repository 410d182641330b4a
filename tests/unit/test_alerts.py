"""The shipped Prometheus alert rules (deploy/prometheus/) are valid, fire on what they are
for and only then (promtool's own rule tests), and name only metrics payrecon exposes."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import Engine

from api.metrics import InvoiceCollector
from db import reconciliation as books
from db.models import ReconciliationRun

RULES = Path(__file__).parents[2] / "deploy" / "prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def promtool(*args: str) -> str:
    done = subprocess.run(
        [PROMTOOL, *args], cwd=RULES, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_rules_are_valid() -> None:
    assert "SUCCESS: 7 rules found" in promtool("check", "rules", "alerts.yml")


def test_each_alert_fires_when_it_should_and_not_before() -> None:
    assert "SUCCESS" in promtool("test", "rules", "alerts_test.yml")


def test_the_rules_name_only_metrics_payrecon_exposes(engine: Engine) -> None:
    # The age of the last completed run is there once one has completed.
    at = datetime.now(UTC)
    run = ReconciliationRun(
        id="recon_test",
        trigger="on_demand",
        window_from=at,
        window_to=at,
        status="running",
        started_at=at,
    )
    books.start_run(engine, run)
    books.finish_run(
        engine,
        run.id,
        status="completed",
        at=at,
        counts={},
        totals={},
        records_seen=0,
        records_matched=0,
        pages=1,
    )
    registry = CollectorRegistry()
    registry.register(InvoiceCollector(engine, refresh_seconds=0))
    exposed = set(re.findall(r"^# TYPE (\S+) ", generate_latest(registry).decode(), re.M))
    # A counter is exposed as <name>_total; the rules name what Prometheus scrapes.
    scraped = exposed | {f"{name}_total" for name in exposed}
    used = set(re.findall(r"\b(payrecon_[a-z_]+)", (RULES / "alerts.yml").read_text()))
    assert used and used <= scraped, used - scraped
