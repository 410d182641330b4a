"""`make bench`: payrecon's speed, measured on its own stack, beside a naive baseline.

    python -m bench.run [--capacity 100000] [--rates 50,100,200,400] ...

Starts a Temporal dev server, the sandbox (no added latency), a worker and the API on free
ports, measures, prints one table and saves it as JSON under bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client
from tenacity import AsyncRetrying, retry_if_result, stop_after_delay, wait_fixed

from activities.reconciliation import RunSummary
from bench.load import ms, open_loop, percentile, provider_calls, rss_mib, signed_deliveries
from bench.report import Row, last_run, report
from bench.seed import insert_paid_invoices
from config import DEV_PAYSTACK_SECRET_KEY, Settings
from db import queries
from db.engine import make_engine
from devstack.merchant import Merchant
from devstack.processes import Service, free_port, python_module, wait_for_http
from devstack.progress import Progress
from devstack.stack import Stack
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


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.directory = Path(tempfile.mkdtemp(prefix="payrecon-bench-"))
        self.stack = Stack(
            self.directory,
            settings={
                "PAYRECON_POLL_SCHEDULE": ",".join(str(s) for s in POLL_SCHEDULE),
                "PAYRECON_LATE_PAYMENT_WINDOW": "0",
            },
            # Refunds move when the bench settles them, not by themselves.
            sandbox_settings={"SANDBOX_REFUND_AUTO_SECONDS": "0"},
        )
        self.rows: list[Row] = []
        self.figures: dict[str, Any] = {}
        self.extra: list[Service] = []
        self.create_retries = 0
        self.create_failures = 0
        self.deliveries_made = 0
        self.printed: list[Row] = []
        self.progress = Progress()
        # The merchant's endpoint, registered for the bench's API key: every event goes to it.
        self.merchant = Merchant()
        # The last run's figures, to show beside this run's (None: no earlier run).
        self.last = last_run(args.results_dir)

    # --- helpers -------------------------------------------------------------------

    def signed(self, references: list[str], count: int) -> list[bytes]:
        """Distinct deliveries: each call's ids follow the last call's."""
        bodies = signed_deliveries(references, count, self.deliveries_made)
        self.deliveries_made += count
        return bodies

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

    def beside_last(self, figure: str, shown: Callable[[dict[str, Any]], str]) -> str:
        previous = (self.last or {}).get(figure)
        if not previous:
            return "last run: none"
        try:
            return f"last run: {shown(previous)}"
        except (KeyError, TypeError, ValueError):
            return "last run: not comparable"

    async def register_merchant(self) -> None:
        async with self.api() as api:
            answer = await api.post("/webhook-endpoints", json={"url": self.merchant.url})
        answer.raise_for_status()
        self.merchant.secret = answer.json()["secret"]

    # --- 1. create -----------------------------------------------------------------

    async def bench_create(self) -> list[str]:
        created: list[str] = []
        async with self.api() as api:
            await self.create(api, 20, 5)  # warm-up
            for concurrency, count in (
                (1, self.args.create_count // 4),
                (20, self.args.create_count),
            ):
                ids, latencies, wall = await self.create(api, count, concurrency)
                created += ids
                p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
                last = self.beside_last(
                    f"create_c{concurrency}",
                    lambda f: (
                        f"p50 {f['p50_ms']:.1f} ms, p99 {f['p99_ms']:.1f} ms, "
                        f"{f['per_second']:.0f} invoices/s"
                    ),
                )
                self.rows.append(
                    (
                        f"create, concurrency {concurrency}",
                        f"p50 {ms(p50)}, p99 {ms(p99)}, {count / wall:.0f} invoices/s",
                        f"n={count}; {last}",
                    )
                )
                self.figures[f"create_c{concurrency}"] = {
                    "p50_ms": p50 * 1000,
                    "p99_ms": p99 * 1000,
                    "per_second": count / wall,
                    "n": count,
                }
        return created

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
                event = await asyncio.to_thread(
                    self.merchant.wait_for, invoice, "invoice.paid", EVENT_WAIT_SECONDS
                )
                if event is None:
                    missing += 1
                else:
                    to_merchant.append((event.received_at - sent).total_seconds())
                counts = await provider_calls(sb, invoice)
                calls.append(counts["initialize"] + counts["verify"])
        p50, p99 = percentile(samples, 50), percentile(samples, 99)
        last = self.beside_last(
            "time_to_paid", lambda f: f"p50 {f['p50_ms']:.1f} ms, p99 {f['p99_ms']:.1f} ms"
        )
        self.rows.append(
            (
                "time to paid (webhook sent -> API says paid)",
                f"p50 {ms(p50)}, p99 {ms(p99)}",
                f"n={len(samples)}; {last}",
            )
        )
        e50, e99 = percentile(to_merchant, 50), percentile(to_merchant, 99)
        met = "met" if to_merchant and not missing and e99 < EVENT_GOAL_P99 else "NOT met"
        self.rows.append(
            (
                "invoice.paid at the merchant (webhook in -> merchant has it)",
                f"p50 {ms(e50)}, p99 {ms(e99)}",
                f"goal p99 < {ms(EVENT_GOAL_P99)}: {met}; n={len(to_merchant)}, "
                f"{missing} not there within {EVENT_WAIT_SECONDS:.0f} s",
            )
        )
        self.figures["paid_event_to_merchant"] = {
            "p50_ms": e50 * 1000,
            "p99_ms": e99 * 1000,
            "goal_p99_ms": EVENT_GOAL_P99 * 1000,
            "n": len(to_merchant),
            "missing": missing,
        }
        self.rows.append(
            (
                "provider calls / invoice, webhook path",
                f"mean {statistics.mean(calls):.2f}, max {max(calls)}",
                "initialize + verify",
            )
        )
        self.figures["time_to_paid"] = {"p50_ms": p50 * 1000, "p99_ms": p99 * 1000}
        self.figures["calls_webhook_path"] = {"mean": statistics.mean(calls), "max": max(calls)}

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
        a50, a99 = percentile(asked, 50), percentile(asked, 99)
        p50, p99 = percentile(to_processed, 50), percentile(to_processed, 99)
        codes = ", ".join(f"{count} answered {code}" for code, count in sorted(answered.items()))
        self.rows.append(
            ("refund create (POST /invoices/{id}/refunds)", f"p50 {ms(a50)}, p99 {ms(a99)}", codes)
        )
        self.rows.append(
            (
                "refund processed -> API shows it",
                f"p50 {ms(p50)}, p99 {ms(p99)}",
                f"n={len(to_processed)}; from the sandbox's settle (refund.processing and "
                "refund.processed sent) to GET /refunds/{id} saying processed",
            )
        )
        self.figures["refunds"] = {
            "create_p50_ms": a50 * 1000,
            "create_p99_ms": a99 * 1000,
            "processed_p50_ms": p50 * 1000,
            "processed_p99_ms": p99 * 1000,
            "answers": {str(code): count for code, count in answered.items()},
            "n": len(to_processed),
        }

    # --- 3 and 6. webhook ACK, ours and the baseline's -----------------------------

    async def bench_webhooks(self, references: list[str]) -> None:
        baseline_url = self.start_baseline(references)
        targets = {
            "payrecon": f"{self.stack.api_url}/webhooks/paystack",
            "baseline": f"{baseline_url}/webhooks/paystack",
        }
        results: dict[str, dict[int, tuple[float, float]]] = {"payrecon": {}, "baseline": {}}
        failed: dict[str, dict[int, int]] = {"payrecon": {}, "baseline": {}}
        lag: dict[str, dict[int, float]] = {"payrecon": {}, "baseline": {}}
        limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
        async with contextlib.AsyncExitStack() as stack:
            clients = {
                name: await stack.enter_async_context(httpx.AsyncClient(timeout=30, limits=limits))
                for name in targets
            }
            # Unmeasured: opens connections and takes the first trip through each code path.
            for name, url in targets.items():
                warm_up = self.signed(references, 100)
                await open_loop(clients[name], url, warm_up, 50, self.stack.secret_key)
            await self.wait_until_quiet()
            for rate in self.args.rates:
                count = int(rate * self.args.rate_seconds)
                bodies = self.signed(references, count)
                for name, url in targets.items():
                    latencies, failures, behind = await open_loop(
                        clients[name], url, bodies, rate, self.stack.secret_key
                    )
                    results[name][rate] = (percentile(latencies, 50), percentile(latencies, 99))
                    failed[name][rate] = len(failures)
                    lag[name][rate] = behind
                    await self.wait_until_quiet()  # each run meets only the load it makes
        for rate in self.args.rates:
            ours, theirs = results["payrecon"][rate], results["baseline"][rate]
            lost = {name: f", {f[rate]} not 200" if f[rate] else "" for name, f in failed.items()}
            self.rows.append(
                (
                    f"webhook ACK at {rate}/s",
                    f"payrecon p50 {ms(ours[0])}, p99 {ms(ours[1])}{lost['payrecon']}",
                    f"baseline p50 {ms(theirs[0])}, p99 {ms(theirs[1])}{lost['baseline']}; "
                    f"p99 ratio {ours[1] / theirs[1]:.1f}x; "
                    f"generator lag p99 {ms(lag['payrecon'][rate])}",
                )
            )
        held = {
            name: max(
                (r for r, (_, p99) in by_rate.items() if p99 < 0.050 and not failed[name][r]),
                default=0,
            )
            for name, by_rate in results.items()
        }
        self.rows.append(
            (
                "highest rate held with ACK p99 < 50 ms",
                f"payrecon {held['payrecon']}/s",
                f"baseline {held['baseline']}/s"
                + (
                    f"; ratio {held['payrecon'] / held['baseline']:.2f}" if held["baseline"] else ""
                ),
            )
        )
        self.figures["webhook_ack"] = {
            name: {
                str(rate): {"p50_ms": v[0] * 1000, "p99_ms": v[1] * 1000} for rate, v in r.items()
            }
            for name, r in results.items()
        }
        self.figures["rate_held_p99_under_50ms"] = held
        self.figures["load_generator_p99_lag_ms"] = {
            name: {str(rate): v * 1000 for rate, v in by_rate.items()}
            for name, by_rate in lag.items()
        }

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
        self.rows.append(
            (
                "provider calls / invoice, polling only, 24 h",
                f"payrecon mean {statistics.mean(calls):.1f}, max {max(calls)}",
                f"naive cron (verify every minute): {NAIVE_CRON_CALLS_PER_DAY + 1}",
            )
        )
        self.figures["calls_polling_day"] = {
            "payrecon_mean": statistics.mean(calls),
            "payrecon_max": max(calls),
            "naive_cron": NAIVE_CRON_CALLS_PER_DAY + 1,
            "simulated_day_seconds": self.args.day_seconds,
        }

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
        worker_pid = self.stack.services["worker"].pid
        temporal_pid = self.stack.services["temporal"].pid
        before = rss_mib(worker_pid), rss_mib(temporal_pid)
        async with self.api(url) as api:
            ids, _, wall = await self.create(api, count, 20, due_in_seconds=int(DAY))
        open_rss = rss_mib(worker_pid), rss_mib(temporal_pid)
        await asyncio.sleep(timer + 10)  # the last ones' first timers have fired too
        sample = random.Random(11).sample(ids, min(len(ids), self.args.capacity_sample))
        lateness = await self.timer_lateness(sample)
        self.rows.append(
            (
                f"capacity: {len(ids)} open invoices on timers",
                f"worker RSS {before[0]:.0f} -> {open_rss[0]:.0f} MiB, "
                f"Temporal {before[1]:.0f} -> {open_rss[1]:.0f} MiB",
                f"created at {len(ids) / wall:.0f}/s; {self.create_retries} creates retried "
                f"after 503, {self.create_failures} failed",
            )
        )
        self.rows.append(
            (
                f"timers fired on time ({timer:.0f} s poll timer)",
                f"{len(lateness)}/{len(sample)} sampled fired; lateness p50 "
                f"{ms(percentile(lateness, 50))}, p99 {ms(percentile(lateness, 99))}, "
                f"max {ms(max(lateness, default=0))}",
                "TimerFired - (TimerStarted + duration), from histories",
            )
        )
        self.figures["capacity"] = {
            "open_invoices": count,
            "worker_rss_mib": {"before": before[0], "open": open_rss[0]},
            "temporal_rss_mib": {"before": before[1], "open": open_rss[1]},
            "sampled": len(sample),
            "fired": len(lateness),
            "lateness_p50_ms": percentile(lateness, 50) * 1000,
            "lateness_p99_ms": percentile(lateness, 99) * 1000,
        }

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
            worker_pid = self.stack.services["worker"].pid
            rss_before = rss_mib(worker_pid)
            peak = rss_before
            client = await self.temporal_client()
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
                peak = max(peak, rss_mib(worker_pid))
                self.progress.say(f"    reconciling: {time.perf_counter() - started:.0f} s")
                await asyncio.wait({result}, timeout=5)
            summary: RunSummary = result.result()
            wall = time.perf_counter() - started
            calls_after = (await controls.stats())["calls"]
            calls = {kind: calls_after[kind] - calls_before.get(kind, 0) for kind in calls_after}
            # The naive way: one verify per invoice, one after another, on a sample.
            sample = references[: self.args.recon_naive_sample]
            naive_started = time.perf_counter()
            paystack = PaystackClient(self.stack.sandbox_url, DEV_PAYSTACK_SECRET_KEY)
            try:
                for reference in sample:
                    await paystack.verify(reference)
            finally:
                await paystack.aclose()
            naive = time.perf_counter() - naive_started
        per_second = summary.records_seen / wall
        naive_per_second = len(sample) / naive
        self.rows.append(
            (
                f"reconcile {summary.records_seen:,} Paystack transactions",
                f"{wall:.1f} s, {per_second:,.0f} records/s; worker RSS {rss_before:.0f} -> "
                f"peak {peak:.0f} MiB; {calls.get('list', 0)} list calls, "
                f"{calls.get('verify', 0)} verifies",
                f"goal < 120 s and < 400 MB; {summary.records_matched:,} matched, "
                f"discrepancies {summary.counts or 'none'}",
            )
        )
        self.rows.append(
            (
                "naive: verify each invoice, one call at a time",
                f"{naive_per_second:,.0f} records/s ({len(sample):,} in {naive:.1f} s)",
                f"{count:,} would take {count / naive_per_second:.0f} s and {count:,} calls "
                f"(the sweep: {calls.get('list', 0):,}); only the local sandbox answers in "
                "under a millisecond",
            )
        )
        self.figures["reconciliation"] = {
            "records": summary.records_seen,
            "matched": summary.records_matched,
            "counts": summary.counts,
            "wall_seconds": wall,
            "records_per_second": per_second,
            "worker_rss_mib": {"before": rss_before, "peak": peak},
            "paystack_calls": calls,
            "naive_sample": len(sample),
            "naive_records_per_second": naive_per_second,
        }

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

    async def temporal_client(self) -> Client:
        converter = payrecon_data_converter(Settings(payrecon_development_mode=True))
        return await Client.connect(self.stack.temporal_address, data_converter=converter)

    async def timer_lateness(self, invoice_ids: list[str]) -> list[float]:
        # As the stack's processes (development mode) connect: with their codec.
        converter = payrecon_data_converter(Settings(payrecon_development_mode=True))
        client = await Client.connect(self.stack.temporal_address, data_converter=converter)
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
        """Lets the worker finish what a phase left queued, so the next one starts clean."""
        async with httpx.AsyncClient(base_url=self.stack.sandbox_url) as sandbox:
            last, steady, deadline = -1, 0, time.monotonic() + limit
            while steady < self.args.quiet_seconds and time.monotonic() < deadline:
                calls = (await SandboxControls(sandbox).stats())["calls"]
                total = calls["verify"] + calls["initialize"]
                steady = steady + 1 if total == last else 0
                last = total
                await asyncio.sleep(1)

    # --- the run -------------------------------------------------------------------

    async def run(self) -> int:
        started = time.perf_counter()
        try:
            with self.progress.phase("starting the stack"):
                await asyncio.to_thread(self.stack.start_all)
                self.merchant.start()
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
        self.rows.append(("wall time", f"{time.perf_counter() - started:.0f} s", ""))
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
        "--capacity", type=int, default=3_000, help="open invoices (10000 takes ~8 min here)"
    )
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
        help="seconds with no Paystack call that tell the worker has finished a phase",
    )
    parser.add_argument("--results-dir", default=str(RESULTS))
    args = parser.parse_args()
    # A SIGTERM unwinds like Ctrl-C, so the stack's processes are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    return asyncio.run(Bench(args).run())


if __name__ == "__main__":
    exit_process(main())
