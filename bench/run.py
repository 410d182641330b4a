"""`make bench`: payrecon's speed, measured on its own stack, beside a naive baseline.

    python -m bench.run [--capacity 100000] [--rates 50,100,200,400] ...

Starts a Temporal dev server, the sandbox (no added latency), a worker and the API on free
ports, measures, prints one table and saves it as JSON under bench/results/. What is not
payrecon runs apart from the bench's own loop: the merchant's endpoint and the webhook load
generator each in a process of their own.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client
from tenacity import AsyncRetrying, retry_if_result, stop_after_delay, wait_fixed

from activities.reconciliation import RunSummary
from bench.generator import Delivery, Generator, Step
from bench.load import ms, percentile, provider_calls, rss_mib, signed, signed_deliveries
from bench.quiet import busy, pause_sweeps, sqlite_path
from bench.report import Figure, Goal, History, Row, Shown, find, report
from bench.seed import insert_paid_invoices
from config import DEV_PAYSTACK_SECRET_KEY, Settings
from db import queries
from db.engine import make_engine
from devstack.merchant import MerchantProcess
from devstack.processes import Service, free_port, python_module, wait_for_http
from devstack.progress import Progress
from devstack.stack import Stack, Topology
from lifecycle import exit_process
from paystack.client import PaystackClient
from sandbox.controls import SandboxControls
from temporal_codec import payrecon_data_converter
from workflows.reconciliation import ReconciliationWorkflow, Trigger
from workflows.schedules import reconciliation_input

RESULTS = Path(__file__).parent / "results"
DAY = 86400.0
# The production poll schedule (seconds); the polling-only run scales it down.
POLL_SCHEDULE = (60.0, 300.0, 900.0, 3600.0, 10800.0, 21600.0, 43200.0)
NAIVE_CRON_CALLS_PER_DAY = 24 * 60  # verify every pending invoice every minute
# The goal for the merchant's invoice.paid, from the payment's webhook in: p99 under this.
EVENT_GOAL_P99 = 0.250
# How long to wait for one invoice.paid at the merchant before counting it missing.
EVENT_WAIT_SECONDS = 30.0
# The ACK goal holds at this rate.
ACK_GOAL_RATE = 200
RECON_GOAL_RECORDS = 100_000
MIB = 1024 * 1024 / 1e6  # MB in a MiB


def latency(f: Figure) -> str:
    return f"p50 {f['p50_ms']:.1f} ms, p99 {f['p99_ms']:.1f} ms"


def creates(f: Figure) -> str:
    return f"{latency(f)}, {f['per_second']:.0f} invoices/s"


def ack(f: Figure) -> str:
    """A step's ACK figures, or why they are not payrecon's (old runs have no verdict)."""
    if f.get("valid") is False:
        return f"invalid: generator lag p99 {f['lag_p99_ms']:.1f} ms"
    failed = f", {f['failed']} not 200" if f.get("failed") else ""
    return latency(f) + failed


def reconciled(f: Figure) -> str:
    rss, calls = f["worker_rss_mib"], f["paystack_calls"]
    return (
        f"{f['wall_seconds']:.1f} s, {f['records_per_second']:,.0f} records/s; worker RSS "
        f"{rss['before']:.0f} -> peak {rss['peak']:.0f} MiB; {calls.get('list', 0)} list "
        f"calls, {calls.get('verify', 0)} verifies"
    )


def timers(f: Figure) -> str:
    return (
        f"{f['fired']}/{f['sampled']} sampled fired; lateness p50 {f['lateness_p50_ms']:.1f} "
        f"ms, p99 {f['lateness_p99_ms']:.1f} ms"
    )


# The goals, for this 2-core machine with the default embedded stack.
GOALS: dict[str, list[Goal]] = {
    "create_c1": [Goal("goal p50 ≤ 50 ms", lambda f: f["p50_ms"] <= 50)],
    "create_c20": [
        Goal("floor 36/s", lambda f: f["per_second"] >= 36),
        Goal("goal 50/s", lambda f: f["per_second"] >= 50),
    ],
    "time_to_paid": [
        Goal("goal p50 ≤ 50 ms, p99 ≤ 100 ms", lambda f: f["p50_ms"] <= 50 and f["p99_ms"] <= 100)
    ],
    "paid_event_to_merchant": [
        Goal(
            f"goal p99 < {ms(EVENT_GOAL_P99)}",
            lambda f: f["n"] > 0 and not f["missing"] and f["p99_ms"] < EVENT_GOAL_P99 * 1000,
        )
    ],
    # Only a valid step can meet it: an invalid one measured the generator.
    "webhook_ack": [
        Goal("goal p99 ≤ 25 ms", lambda f: f.get("valid") is not False and f["p99_ms"] <= 25)
    ],
    # The workers' RSS summed: with two workers, what both hold.
    "capacity": [
        Goal(
            "goal 10,000 at ≥ 20/s, worker < 400 MiB, timers p99 late < 1 s",
            lambda f: (
                f["created"] >= 10_000
                and f["per_second"] >= 20
                and f["worker_rss_mib"]["open"] / f["workers"] < 400
                and f["lateness_p99_ms"] < 1000
            ),
        )
    ],
    "reconciliation": [
        Goal(
            f"goal {RECON_GOAL_RECORDS:,} in < 120 s, < 400 MB",
            lambda f: (
                f["records"] >= RECON_GOAL_RECORDS
                and f["wall_seconds"] < 120
                and f["worker_rss_mib"]["peak"] * MIB < 400
            ),
        )
    ],
}


def held(step: Step) -> bool:
    """A valid step with every delivery answered 200 and ACK p99 under 50 ms."""
    return step.valid and not step.failures and step.p99 < 0.050


def baseline_held(f: Figure) -> str:
    ratio = f"; ratio {f['payrecon'] / f['baseline']:.2f}" if f["baseline"] else ""
    return f"baseline {f['baseline']}/s{ratio}"


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.directory = Path(tempfile.mkdtemp(prefix="payrecon-bench-"))
        self.stack = Stack(
            self.directory,
            settings={
                "PAYRECON_POLL_SCHEDULE": ",".join(str(s) for s in POLL_SCHEDULE),
                "PAYRECON_LATE_PAYMENT_WINDOW": "0",
                # The bench is one caller at full speed: no rate limit.
                "PAYRECON_CALLER_RATE_LIMIT": "0",
            },
            # Refunds move when the bench settles them, not by themselves.
            sandbox_settings={"SANDBOX_REFUND_AUTO_SECONDS": "0"},
            topology=Topology(workers=args.workers),
        )
        self.rows: list[Row] = []
        self.figures: Figure = {}
        self.extra: list[Service] = []
        self.create_retries = 0
        self.create_failures = 0
        self.deliveries_made = 0
        self.printed: list[Row] = []
        self.progress = Progress()
        # The merchant's endpoint, registered for the bench's API key: every event goes to it.
        self.merchant = MerchantProcess(self.directory)
        # The saved runs' figures, to show beside this run's.
        self.history = History(args.results_dir)
        self._temporal: Client | None = None
        self.sweeps_paused = False  # as the worker makes them

    # --- helpers -------------------------------------------------------------------

    def signed(self, references: list[str], count: int) -> list[Delivery]:
        """Distinct deliveries, signed: each call's ids follow the last call's."""
        bodies = signed_deliveries(references, count, self.deliveries_made)
        self.deliveries_made += count
        return signed(bodies, self.stack.secret_key)

    def row(
        self, what: str, path: Sequence[str], shown: Shown, notes: str = "", goal: str = ""
    ) -> None:
        """A figure of this run (self.figures at `path`) beside the last run's and its goals
        (GOALS under `goal`)."""
        figure = find(self.figures, path) or {}
        try:
            this = shown(figure)
        except (KeyError, TypeError, ValueError, ZeroDivisionError):
            this = "not measured"
        goals = "; ".join(g.judge(figure) for g in GOALS.get(goal, []))
        self.rows.append(Row(what, this, self.history.beside(path, shown), goals, notes))

    def api(self, url: str | None = None) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=url or self.stack.api_url,
            headers={"Authorization": f"Bearer {self.stack.api_key}"},
            timeout=60,
            limits=httpx.Limits(max_connections=500, max_keepalive_connections=500),
        )

    def add_api(self, name: str, **env: str) -> str:
        """Another API process on the same stack, with other invoice settings."""
        port = free_port()
        service = Service(
            name,
            python_module("api"),
            env=self.stack.env(PAYRECON_API_PORT=str(port), **env),
            log_path=self.directory / f"{name}.log",
        ).start()
        self.extra.append(service)
        wait_for_http(f"http://127.0.0.1:{port}/healthz", process=service.process)
        return f"http://127.0.0.1:{port}"

    async def create(
        self, api: httpx.AsyncClient, count: int, concurrency: int, **fields: Any
    ) -> tuple[list[str], list[float], float]:
        gate = asyncio.Semaphore(concurrency)
        latencies: list[float] = []
        ids: list[str] = []

        async def one(n: int) -> None:
            body = {
                "customer_email": f"bench{n}@example.com",
                "amount": 250000,
                "currency": "NGN",
                **fields,
            }
            # As a careful client does: a 503 is retried with the same key.
            headers = {"Idempotency-Key": f"bench-{uuid.uuid4()}"}
            async with gate:
                started = time.perf_counter()
                for _ in range(5):
                    response = await api.post("/invoices", json=body, headers=headers)
                    if response.status_code != 503:
                        break
                    self.create_retries += 1
                latencies.append(time.perf_counter() - started)
            if response.status_code not in (200, 201):
                # Counted and reported, not fatal: an overloaded stack is a result too.
                self.create_failures += 1
                return
            ids.append(response.json()["id"])

        started = time.perf_counter()
        with self.progress.phase(f"{count} creates, {concurrency} at once", count) as made:

            async def counted(n: int) -> None:
                await one(n)
                made.advance()

            await asyncio.gather(*(counted(n) for n in range(count)))
        return ids, latencies, time.perf_counter() - started

    async def register_merchant(self) -> None:
        """Registers the endpoint's address, then starts it with the secret it was given."""
        async with self.api() as api:
            answer = await api.post("/webhook-endpoints", json={"url": self.merchant.url})
        answer.raise_for_status()
        await asyncio.to_thread(self.merchant.start, answer.json()["secret"])

    # --- 1. create -----------------------------------------------------------------

    async def bench_create(self) -> list[str]:
        made: list[str] = []
        async with self.api() as api:
            await self.create(api, 20, 5)  # warm-up
            for concurrency, count in (
                (1, self.args.create_count // 4),
                (20, self.args.create_count),
            ):
                ids, latencies, wall = await self.create(api, count, concurrency)
                made += ids
                key = f"create_c{concurrency}"
                self.figures[key] = {
                    "p50_ms": percentile(latencies, 50) * 1000,
                    "p99_ms": percentile(latencies, 99) * 1000,
                    "per_second": count / wall,
                    "n": count,
                }
                self.row(f"create, concurrency {concurrency}", [key], creates, f"n={count}", key)
        return made

    # --- 2. time to paid, 4a. provider calls on the webhook path -------------------

    async def bench_time_to_paid(self) -> None:
        samples: list[float] = []
        to_merchant: list[float] = []
        missing = 0
        calls: list[int] = []
        async with self.api() as api, httpx.AsyncClient(base_url=self.stack.sandbox_url) as sb:
            for _ in range(self.args.paid_count):
                invoice = (await self.create(api, 1, 1))[0][0]
                await SandboxControls(sb).pay(invoice)
                while (await api.get(f"/invoices/{invoice}")).json()["status"] != "paid":
                    await asyncio.sleep(0.002)
                seen = datetime.now(UTC)
                log = await SandboxControls(sb).webhooks(invoice)
                sent = datetime.fromisoformat(log[0]["attempted_at"].replace("Z", "+00:00"))
                samples.append((seen - sent).total_seconds())
                # The webhook in (Paystack's send) to the merchant's receipt of invoice.paid.
                event = await self.merchant.wait_for(invoice, "invoice.paid", EVENT_WAIT_SECONDS)
                if event is None:
                    missing += 1
                else:
                    to_merchant.append((event.received_at - sent).total_seconds())
                counts = await provider_calls(sb, invoice)
                calls.append(counts["initialize"] + counts["verify"])
        self.figures["time_to_paid"] = {
            "p50_ms": percentile(samples, 50) * 1000,
            "p99_ms": percentile(samples, 99) * 1000,
            "n": len(samples),
        }
        self.row(
            "time to paid (webhook sent -> API says paid)",
            ["time_to_paid"],
            latency,
            f"n={len(samples)}",
            "time_to_paid",
        )
        self.figures["paid_event_to_merchant"] = {
            "p50_ms": percentile(to_merchant, 50) * 1000,
            "p99_ms": percentile(to_merchant, 99) * 1000,
            "goal_p99_ms": EVENT_GOAL_P99 * 1000,
            "n": len(to_merchant),
            "missing": missing,
        }
        self.row(
            "invoice.paid at the merchant (webhook in -> merchant has it)",
            ["paid_event_to_merchant"],
            latency,
            f"n={len(to_merchant)}, {missing} not there within {EVENT_WAIT_SECONDS:.0f} s",
            "paid_event_to_merchant",
        )
        self.figures["calls_webhook_path"] = {"mean": statistics.mean(calls), "max": max(calls)}
        self.row(
            "provider calls / invoice, webhook path",
            ["calls_webhook_path"],
            lambda f: f"mean {f['mean']:.2f}, max {f['max']}",
            "initialize + verify",
        )

    # --- refunds: asked for, and Paystack's processed seen by the API ----------------

    async def bench_refunds(self) -> None:
        """A full refund of each of `refund_count` paid invoices: the API's answer (Paystack
        has queued it), then from the sandbox marking it processed (and sending its
        webhooks) to `GET /refunds/{id}` saying so."""
        asked: list[float] = []
        to_processed: list[float] = []
        answered: dict[int, int] = {}
        async with self.api() as api, httpx.AsyncClient(base_url=self.stack.sandbox_url) as sb:
            controls = SandboxControls(sb)
            for n in range(self.args.refund_count):
                invoice = (await self.create(api, 1, 1))[0][0]
                await controls.pay(invoice)
                while (await api.get(f"/invoices/{invoice}")).json()["status"] != "paid":
                    await asyncio.sleep(0.002)
                started = time.perf_counter()
                response = await api.post(f"/invoices/{invoice}/refunds", json={})
                asked.append(time.perf_counter() - started)
                answered[response.status_code] = answered.get(response.status_code, 0) + 1
                refund = response.json()
                if response.status_code != 201:
                    continue
                started = time.perf_counter()
                await controls.settle_refund(refund["paystack_refund_id"], "processed")
                while (await api.get(f"/refunds/{refund['id']}")).json()["status"] != "processed":
                    await asyncio.sleep(0.002)
                to_processed.append(time.perf_counter() - started)
                if (n + 1) % 10 == 0:
                    self.progress.say(f"refunds: {n + 1}/{self.args.refund_count}")
        self.figures["refunds"] = {
            "create_p50_ms": percentile(asked, 50) * 1000,
            "create_p99_ms": percentile(asked, 99) * 1000,
            "processed_p50_ms": percentile(to_processed, 50) * 1000,
            "processed_p99_ms": percentile(to_processed, 99) * 1000,
            "answers": {str(code): count for code, count in answered.items()},
            "n": len(to_processed),
        }
        codes = ", ".join(f"{count} answered {code}" for code, count in sorted(answered.items()))
        self.row(
            "refund create (POST /invoices/{id}/refunds)",
            ["refunds"],
            lambda f: f"p50 {f['create_p50_ms']:.1f} ms, p99 {f['create_p99_ms']:.1f} ms",
            codes,
        )
        self.row(
            "refund processed -> API shows it",
            ["refunds"],
            lambda f: f"p50 {f['processed_p50_ms']:.1f} ms, p99 {f['processed_p99_ms']:.1f} ms",
            f"n={len(to_processed)}; from the sandbox's settle (refund.processing and "
            "refund.processed sent) to GET /refunds/{id} saying processed",
        )

    # --- 3 and 6. webhook ACK, ours and the baseline's -----------------------------

    async def bench_webhooks(self, references: list[str]) -> None:
        baseline_url = self.start_baseline(references)
        targets = {
            "payrecon": f"{self.stack.api_url}/webhooks/paystack",
            "baseline": f"{baseline_url}/webhooks/paystack",
        }
        steps: dict[str, dict[int, Step]] = {name: {} for name in targets}
        generator = await Generator(self.directory / "generator.log").start()
        try:
            # Unmeasured: opens connections and takes the first trip through each code path.
            for url in targets.values():
                await generator.step(url, 50, self.signed(references, 100))
            await self.wait_until_quiet()
            for rate in self.args.rates:
                # Signed before the step: the generator only sends.
                deliveries = self.signed(references, int(rate * self.args.rate_seconds))
                for name, url in targets.items():
                    steps[name][rate] = await generator.step(url, rate, deliveries)
                    await self.wait_until_quiet()  # each step meets only the load it makes
        finally:
            await generator.stop()
        self.figures["webhook_ack"] = {
            name: {str(rate): step.figures() for rate, step in by_rate.items()}
            for name, by_rate in steps.items()
        }
        self.figures["rate_held_p99_under_50ms"] = {
            name: max((r for r, step in by_rate.items() if held(step)), default=0)
            for name, by_rate in steps.items()
        }
        for rate in self.args.rates:
            self.ack_row(rate, steps["payrecon"][rate], steps["baseline"][rate])
        self.row(
            "highest rate held with ACK p99 < 50 ms",
            ["rate_held_p99_under_50ms"],
            lambda f: f"payrecon {f['payrecon']}/s",
            baseline_held(self.figures["rate_held_p99_under_50ms"]),
        )

    def ack_row(self, rate: int, ours: Step, theirs: Step) -> None:
        ratio = f"; p99 ratio {ours.p99 / theirs.p99:.1f}x" if ours.valid and theirs.valid else ""
        self.row(
            f"webhook ACK at {rate}/s",
            ["webhook_ack", "payrecon", str(rate)],
            ack,
            f"baseline {ack(theirs.figures())}{ratio}; generator lag p50 {ms(ours.lag_p50)}, "
            f"p99 {ms(ours.lag_p99)}",
            "webhook_ack" if rate == ACK_GOAL_RATE else "",
        )

    def start_baseline(self, references: list[str]) -> str:
        from bench.baseline import prepare

        database = self.directory / "baseline.db"
        prepare(str(database), references)
        port = free_port()
        service = Service(
            "baseline",
            python_module("bench.baseline"),
            env={
                "BASELINE_DB": str(database),
                "BASELINE_PORT": str(port),
                "PAYSTACK_SECRET_KEY": self.stack.secret_key,
            },
            log_path=self.directory / "baseline.log",
        ).start()
        self.extra.append(service)
        wait_for_http(f"http://127.0.0.1:{port}/docs", process=service.process)
        return f"http://127.0.0.1:{port}"

    # --- 4b. provider calls on the polling-only path over a simulated day ----------

    async def bench_polling_day(self) -> None:
        factor = self.args.day_seconds / DAY
        url = self.add_api(
            "api-polling",
            PAYRECON_POLL_SCHEDULE=",".join(f"{s * factor:.4f}" for s in POLL_SCHEDULE),
            PAYRECON_LATE_PAYMENT_WINDOW="0",
        )
        async with self.api(url) as api, httpx.AsyncClient(base_url=self.stack.sandbox_url) as sb:
            await SandboxControls(sb).set_webhooks(False)
            ids, _, _ = await self.create(
                api, self.args.polling_count, 10, due_in_seconds=int(self.args.day_seconds)
            )
            engine = make_engine(self.stack.database_url)

            def all_expired() -> bool:
                rows = [queries.get_invoice(engine, i) for i in ids]
                return all(row is not None and row.status == "expired" for row in rows)

            # Until every one expired (or a generous bound): what follows counts their calls.
            await AsyncRetrying(
                stop=stop_after_delay(self.args.day_seconds * 3 + 60),
                wait=wait_fixed(1),
                retry=retry_if_result(lambda expired: not expired),
                retry_error_callback=lambda _: False,
            )(asyncio.to_thread, all_expired)
            engine.dispose()
            await asyncio.sleep(2)  # the last look after the (zero) late window
            calls = []
            for invoice in ids:
                counts = await provider_calls(sb, invoice)
                calls.append(counts["initialize"] + counts["verify"])
            await SandboxControls(sb).set_webhooks(True)
        self.figures["calls_polling_day"] = {
            "payrecon_mean": statistics.mean(calls),
            "payrecon_max": max(calls),
            "naive_cron": NAIVE_CRON_CALLS_PER_DAY + 1,
            "simulated_day_seconds": self.args.day_seconds,
        }
        self.row(
            "provider calls / invoice, polling only, 24 h",
            ["calls_polling_day"],
            lambda f: f"payrecon mean {f['payrecon_mean']:.1f}, max {f['payrecon_max']}",
            f"naive cron (verify every minute): {NAIVE_CRON_CALLS_PER_DAY + 1}",
        )

    # --- 5. capacity: open invoices waiting on timers ------------------------------

    async def bench_capacity(self) -> None:
        """Many open invoices, each waiting on its poll timer: memory, and whether the
        timers fire on time while the rest are still being created."""
        count = self.args.capacity
        # Each invoice's first poll timer fires after the last one is created, so the
        # figures are taken with every invoice open and the timers are not racing creation.
        rate = self.figures.get("create_c20", {}).get("per_second", 20.0)
        timer = self.args.capacity_timer or count / rate + 30
        url = self.add_api(
            "api-capacity",
            PAYRECON_POLL_SCHEDULE=str(timer),
            PAYRECON_LATE_PAYMENT_WINDOW="0",
        )
        worker_pids = [self.stack.services[name].pid for name in self.stack.named("worker")]
        temporal_pid = self.stack.services["temporal"].pid

        def workers_rss() -> float:
            return sum(rss_mib(pid) for pid in worker_pids)

        before = workers_rss(), rss_mib(temporal_pid)
        async with self.api(url) as api:
            ids, _, wall = await self.create(api, count, 20, due_in_seconds=int(DAY))
        open_rss = workers_rss(), rss_mib(temporal_pid)
        per_worker = [rss_mib(pid) for pid in worker_pids]
        # Until the last ones' first timers have fired too.
        wait = timer + 10
        with self.progress.phase(f"waiting {wait:.0f} s for every first poll timer"):
            for _ in range(int(wait // 30)):
                await asyncio.sleep(30)
                self.progress.say(f"    workers' RSS {workers_rss():.0f} MiB")
            await asyncio.sleep(wait % 30)
        sample = random.Random(11).sample(ids, min(len(ids), self.args.capacity_sample))
        lateness = await self.timer_lateness(sample)
        self.figures["capacity"] = {
            "open_invoices": count,
            "created": len(ids),
            "per_second": len(ids) / wall,
            "workers": len(worker_pids),
            "worker_rss_mib": {"before": before[0], "open": open_rss[0], "each": per_worker},
            "temporal_rss_mib": {"before": before[1], "open": open_rss[1]},
            "sampled": len(sample),
            "fired": len(lateness),
            "lateness_p50_ms": percentile(lateness, 50) * 1000,
            "lateness_p99_ms": percentile(lateness, 99) * 1000,
            "lateness_max_ms": max(lateness, default=0) * 1000,
        }
        self.row(
            f"capacity: {len(ids)} open invoices on timers, {len(worker_pids)} worker(s)",
            ["capacity"],
            lambda f: (
                f"created at {f['per_second']:.0f}/s; worker RSS "
                f"{f['worker_rss_mib']['before']:.0f} -> {f['worker_rss_mib']['open']:.0f} MiB, "
                f"Temporal {f['temporal_rss_mib']['before']:.0f} -> "
                f"{f['temporal_rss_mib']['open']:.0f} MiB"
            ),
            f"each worker {', '.join(f'{r:.0f}' for r in per_worker)} MiB; "
            f"{self.create_retries} creates retried after 503, {self.create_failures} failed",
            "capacity",
        )
        self.row(
            f"timers fired on time ({timer:.0f} s poll timer)",
            ["capacity"],
            timers,
            f"max {ms(max(lateness, default=0))}; TimerFired - (TimerStarted + duration), "
            "from histories",
        )

    async def bench_reconciliation(self) -> None:
        """A window of many Paystack transactions reconciled, the sandbox's books and our
        invoice rows seeded directly (not through as many creates); beside the naive way,
        verifying each invoice one call at a time, timed on a sample."""
        count = self.args.recon_count
        # Yesterday: a window none of the other phases' invoices fall in.
        until = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
        since = until - timedelta(hours=2)
        step = (until - since) / (count + 1)
        references = [f"inv-bench{index:08d}" for index in range(count)]
        with self.progress.phase(f"seeding {count:,} paid invoices on both sides"):
            await self.seed_books(references, since, step)
        async with httpx.AsyncClient(base_url=self.stack.sandbox_url, timeout=60) as sandbox:
            controls = SandboxControls(sandbox)
            calls_before = (await controls.stats())["calls"]
            # With more than one worker, the largest: the one the run's pages landed on.
            worker_pids = [self.stack.services[name].pid for name in self.stack.named("worker")]
            rss_before = max(rss_mib(pid) for pid in worker_pids)
            peak = rss_before
            client = await self.temporal()
            settings = Settings(payrecon_development_mode=True)
            run_input = reconciliation_input(settings, Trigger.ON_DEMAND)
            run_input.window_from, run_input.window_to = since, until
            run_input.page_size = self.args.recon_page_size
            started = time.perf_counter()
            handle = await client.start_workflow(
                ReconciliationWorkflow.run,
                run_input,
                id=f"recon_bench_{uuid.uuid4().hex[:12]}",
                task_queue=settings.temporal_task_queue,
            )
            result = asyncio.ensure_future(handle.result())
            while not result.done():
                peak = max(peak, *(rss_mib(pid) for pid in worker_pids))
                self.progress.say(f"    reconciling: {time.perf_counter() - started:.0f} s")
                await asyncio.wait({result}, timeout=5)
            summary: RunSummary = result.result()
            wall = time.perf_counter() - started
            calls_after = (await controls.stats())["calls"]
            calls = {kind: calls_after[kind] - calls_before.get(kind, 0) for kind in calls_after}
        sample = references[: self.args.recon_naive_sample]
        naive = await self.naive_verify(sample)
        self.figures["reconciliation"] = {
            "records": summary.records_seen,
            "matched": summary.records_matched,
            "counts": summary.counts,
            "wall_seconds": wall,
            "records_per_second": summary.records_seen / wall,
            "worker_rss_mib": {"before": rss_before, "peak": peak},
            "paystack_calls": calls,
            "naive_sample": len(sample),
            "naive_records_per_second": len(sample) / naive,
        }
        self.recon_rows(count, naive)

    def recon_rows(self, count: int, naive: float) -> None:
        f = self.figures["reconciliation"]
        self.row(
            f"reconcile {f['records']:,} Paystack transactions",
            ["reconciliation"],
            reconciled,
            f"{f['matched']:,} matched, discrepancies {f['counts'] or 'none'}",
            "reconciliation",
        )
        lists, naive_per_second = f["paystack_calls"].get("list", 0), f["naive_records_per_second"]
        self.row(
            "naive: verify each invoice, one call at a time",
            ["reconciliation"],
            lambda f: f"{f['naive_records_per_second']:,.0f} records/s",
            f"{f['naive_sample']:,} in {naive:.1f} s; {count:,} would take "
            f"{count / naive_per_second:.0f} s and {count:,} calls (the sweep: {lists:,}); "
            "only the local sandbox answers in under a millisecond",
        )

    async def naive_verify(self, sample: list[str]) -> float:
        """The naive way, timed: one verify per invoice, one after another."""
        started = time.perf_counter()
        paystack = PaystackClient(self.stack.sandbox_url, DEV_PAYSTACK_SECRET_KEY)
        try:
            for reference in sample:
                await paystack.verify(reference)
        finally:
            await paystack.aclose()
        return time.perf_counter() - started

    async def seed_books(self, references: list[str], since: datetime, step: timedelta) -> None:
        """The same paid invoices on Paystack's side (the sandbox's bulk control) and ours
        (rows written straight to the database, as the workflows' records would be)."""
        engine = make_engine(self.stack.database_url)
        amount, batch = 500_000, 10_000
        async with httpx.AsyncClient(base_url=self.stack.sandbox_url, timeout=120) as sandbox:
            controls = SandboxControls(sandbox)
            for start in range(0, len(references), batch):
                chunk = references[start : start + batch]
                moments = [since + step * (start + offset + 1) for offset in range(len(chunk))]
                await controls.bulk_transactions(
                    [
                        {
                            "reference": reference,
                            "amount": amount,
                            "currency": "NGN",
                            "email": "bench@example.com",
                            "created_at": moment.isoformat(),
                            "status": "success",
                        }
                        for reference, moment in zip(chunk, moments, strict=True)
                    ]
                )
                await asyncio.to_thread(insert_paid_invoices, engine, chunk, moments, amount, "NGN")
                self.progress.say(f"    seeded {start + len(chunk):,}")
        engine.dispose()

    async def temporal(self) -> Client:
        """One client for the run, as the stack's processes (development mode) connect:
        with their codec."""
        if self._temporal is None:
            converter = payrecon_data_converter(Settings(payrecon_development_mode=True))
            self._temporal = await Client.connect(
                self.stack.temporal_address, data_converter=converter
            )
        return self._temporal

    async def timer_lateness(self, invoice_ids: list[str]) -> list[float]:
        client = await self.temporal()
        lateness = []
        for invoice_id in invoice_ids:
            history = await client.get_workflow_handle(f"invoice-{invoice_id}").fetch_history()
            started: dict[int, tuple[datetime, float]] = {}
            for event in history.events:
                if event.HasField("timer_started_event_attributes"):
                    attributes = event.timer_started_event_attributes
                    started[event.event_id] = (
                        event.event_time.ToDatetime(),
                        attributes.start_to_fire_timeout.ToTimedelta().total_seconds(),
                    )
                elif event.HasField("timer_fired_event_attributes"):
                    at, duration = started[event.timer_fired_event_attributes.started_event_id]
                    fired = event.event_time.ToDatetime()
                    lateness.append((fired - at).total_seconds() - duration)
                    break
        return lateness

    async def wait_until_quiet(self, limit: float = 180.0) -> None:
        """Lets the stack finish what a phase left, so the next one starts clean: quiet is
        `--quiet-seconds` in a row with no Paystack call, no webhook on its way from the
        sandbox, no event delivery or customer email still due and no sweep running."""
        database = sqlite_path(self.stack.database_url)
        going: list[str] = []
        async with httpx.AsyncClient(base_url=self.stack.sandbox_url) as sandbox:
            last, steady, deadline = -1, 0, time.monotonic() + limit
            while steady < self.args.quiet_seconds and time.monotonic() < deadline:
                stats = await SandboxControls(sandbox).stats()
                calls = sum(stats["calls"].values())
                going = await busy(await self.temporal(), database)
                if stats.get("webhooks_in_flight"):
                    going.append(f"{stats['webhooks_in_flight']} Paystack webhooks in flight")
                steady = steady + 1 if calls == last and not going else 0
                last = calls
                await asyncio.sleep(1)
        if steady < self.args.quiet_seconds:
            still = ", ".join(going) or "Paystack calls going on"
            self.progress.say(f"    not quiet after {limit:.0f} s ({still}); going on")

    async def sweeps_for(self, phase: str) -> None:
        """Scheduled sweeps run in the reconciliation phase only: elsewhere they would be
        load no phase asked for."""
        paused = phase != "reconciliation"
        if paused != self.sweeps_paused:
            await pause_sweeps(await self.temporal(), paused)
            self.sweeps_paused = paused

    # --- the run -------------------------------------------------------------------

    async def run(self) -> int:
        started = time.perf_counter()
        try:
            with self.progress.phase("starting the stack"):
                await asyncio.to_thread(self.stack.start_all)
                await self.register_merchant()
            steps: list[tuple[str, Callable[[], Awaitable[Any]]]] = []
            created: list[str] = []

            async def create_step() -> None:
                created.extend(await self.bench_create())

            steps = [
                ("create", create_step),
                ("paid", self.bench_time_to_paid),
                ("refunds", self.bench_refunds),
                ("ack", lambda: self.bench_webhooks(created)),
                ("polling", self.bench_polling_day),
                ("reconciliation", self.bench_reconciliation),
                # Last: its invoices stay open and polling, so nothing after it is quiet.
                ("capacity", self.bench_capacity),
            ]
            first = True
            for name, step in steps:
                if name not in self.args.phases:
                    continue
                await self.sweeps_for(name)
                if not first:
                    await self.wait_until_quiet()
                first = False
                with self.progress.phase(name):
                    await step()
                for row in self.rows[len(self.printed) :]:
                    self.progress.say("    " + " | ".join(row))
                    self.printed.append(row)
        finally:
            for service in self.extra:
                service.stop()
            self.stack.stop_all()
            self.merchant.stop()
        self.figures["wall"] = {"seconds": time.perf_counter() - started}
        self.row("wall time", ["wall"], lambda f: f"{f['seconds']:.0f} s", "")
        self.progress.close()
        report(self.rows, self.figures, vars(self.args), self.args.results_dir)
        return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--create-count", type=int, default=400)
    parser.add_argument("--paid-count", type=int, default=50)
    parser.add_argument("--refund-count", type=int, default=50)
    parser.add_argument(
        "--rates", type=lambda s: [int(r) for r in s.split(",")], default=[50, 100, 200]
    )
    parser.add_argument("--rate-seconds", type=float, default=5.0)
    parser.add_argument("--polling-count", type=int, default=20)
    parser.add_argument("--day-seconds", type=float, default=60.0, help="a simulated 24 h")
    parser.add_argument(
        "--capacity", type=int, default=3_000, help="open invoices (10000 takes ~15 min here)"
    )
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument(
        "--phases",
        type=lambda s: s.split(","),
        default=["create", "paid", "refunds", "ack", "polling", "reconciliation", "capacity"],
    )
    parser.add_argument("--recon-count", type=int, default=100_000)
    parser.add_argument("--recon-page-size", type=int, default=100)
    parser.add_argument("--recon-naive-sample", type=int, default=10_000)
    parser.add_argument(
        "--capacity-timer", type=float, default=0.0, help="poll timer, s (0: after creation)"
    )
    parser.add_argument("--capacity-sample", type=int, default=200)
    parser.add_argument(
        "--quiet-seconds",
        type=int,
        default=3,
        help="seconds in a row with nothing going on that tell the stack finished a phase",
    )
    parser.add_argument("--results-dir", default=str(RESULTS))
    args = parser.parse_args()
    # A SIGTERM unwinds like Ctrl-C, so the stack's processes are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    return asyncio.run(Bench(args).run())


if __name__ == "__main__":
    exit_process(main())
