"""The Temporal worker: runs invoice workflows and their activities, and sends what the
outbox holds.

    python -m worker        (make run starts it for you)

Two pollers share one process: the invoice queue (workflows and database writes) and the
Paystack queue, whose activity rate is capped across every worker by the server. Beside
them, the delivery loop (outbound/deliverer.py) sends events to merchants' endpoints and
emails to customers, off Temporal: a slow merchant holds up no invoice.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import structlog
from sqlalchemy import Engine
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.database import DatabaseActivities
from activities.paystack import PaystackActivities
from activities.reconciliation import ReconciliationActivities
from config import Settings, get_settings
from db.engine import make_engine
from db.migrate import migrate
from lifecycle import exit_process
from log import configure_logging
from outbound.deliverer import Deliverer, make_mailer
from paystack.client import PaystackClient, make_paystack_client
from temporal_config import connect
from workflows.discrepancy_refund import DiscrepancyRefundWorkflow
from workflows.invoice import InvoiceWorkflow
from workflows.reconciliation import ReconciliationWorkflow
from workflows.retention import WebhookRetentionWorkflow
from workflows.schedules import ensure_schedules

log = structlog.get_logger(__name__)

ACTIVITY_THREADS = 32
PAYSTACK_CONCURRENCY = 100


def build_workers(
    client: Client,
    settings: Settings,
    engine: Engine,
    paystack: PaystackClient,
    executor: ThreadPoolExecutor,
    deliverer: Deliverer | None = None,
) -> list[Worker]:
    paystack_activities = PaystackActivities(
        paystack, settings.paystack_callback_url, engine, settings.codec_keys
    )
    database = DatabaseActivities(engine, deliverer.wake if deliverer else lambda: None)
    reconciliation = ReconciliationActivities(paystack, engine, client, settings)
    invoices = Worker(
        client,
        task_queue=settings.temporal_task_queue,
        workflows=[
            InvoiceWorkflow,
            WebhookRetentionWorkflow,
            ReconciliationWorkflow,
            DiscrepancyRefundWorkflow,
        ],
        # The invoice workflows' records, and their local activities (the record or
        # Paystack's initialize, the verify on a payment notice); the sweeps' database work.
        activities=[
            database.record_invoice,
            database.delete_expired_deliveries,
            paystack_activities.open_transaction,
            *paystack_activities.capped(),
            reconciliation.start_run,
            reconciliation.finish_run,
            reconciliation.heal_missed_payment,
            reconciliation.notify_invoice,
            reconciliation.vet_discrepancy_refund,
            reconciliation.settle_discrepancy_refund,
        ],
        workflow_runner=workflow_runner(),
        activity_executor=executor,
        # No more activities at once than threads to run the synchronous ones.
        max_concurrent_activities=ACTIVITY_THREADS,
    )
    paystack_calls = Worker(
        client,
        task_queue=settings.temporal_paystack_task_queue,
        # Each of the sweep's pages is one Paystack call, so the cap bounds pages a second.
        activities=[
            *paystack_activities.capped(),
            reconciliation.reconcile_transactions_page,
            reconciliation.reconcile_settlements_page,
            reconciliation.reconcile_settlement_transactions_page,
            reconciliation.reconcile_refunds_page,
            reconciliation.reconcile_disputes_page,
            reconciliation.check_books,
        ],
        max_concurrent_activities=PAYSTACK_CONCURRENCY,
        max_task_queue_activities_per_second=settings.paystack_max_calls_per_second,
    )
    return [invoices, paystack_calls]


def workflow_runner() -> WorkflowRunner:
    """The sandbox, with every module passed through: its checks on calls (no clock, no I/O,
    no randomness but through `workflow`) still hold, but a new run no longer imports the
    workflow's modules again, which was most of a new invoice's first workflow task (28 ms
    of 31). payrecon's workflow modules keep no state at module level."""
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_all_modules()
    )


def make_runtime(settings: Settings) -> Runtime | None:
    """The SDK's own metrics (task latencies, schedule-to-start, slots) for Prometheus."""
    if not settings.payrecon_worker_metrics_address:
        return None
    metrics = PrometheusConfig(bind_address=settings.payrecon_worker_metrics_address)
    return Runtime(telemetry=TelemetryConfig(metrics=metrics))


@contextlib.asynccontextmanager
async def running_worker(
    client: Client, settings: Settings, engine: Engine, executor: ThreadPoolExecutor
) -> AsyncIterator[None]:
    """The workers polling and the delivery loop sending, until the block ends."""
    paystack = make_paystack_client(settings)
    outbound = httpx.AsyncClient()
    deliverer = Deliverer(engine, outbound, settings, make_mailer(settings))
    workers = build_workers(client, settings, engine, paystack, executor, deliverer)
    try:
        async with contextlib.AsyncExitStack() as running:
            for worker in workers:
                await running.enter_async_context(worker)
            deliverer.start()
            running.push_async_callback(deliverer.stop)
            yield
    finally:
        await paystack.aclose()
        await outbound.aclose()


async def main() -> None:
    settings = get_settings()
    configure_logging(settings.payrecon_log_level)
    # Workflow and activity context goes into structured fields, not the message text.
    workflow.logger.workflow_info_on_message = False
    activity.logger.activity_info_on_message = False
    engine = make_engine(settings.database_url)
    migrate(engine)
    client = await connect(runtime=make_runtime(settings), settings=settings)
    await ensure_schedules(client, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    with ThreadPoolExecutor(ACTIVITY_THREADS, thread_name_prefix="activity") as executor:
        async with running_worker(client, settings, engine, executor):
            log.info(
                "worker.started",
                task_queues=[settings.temporal_task_queue, settings.temporal_paystack_task_queue],
                temporal=client.service_client.config.target_host,
                namespace=client.namespace,
                paystack=settings.paystack_base_url,
                metrics=settings.payrecon_worker_metrics_address or None,
            )
            await stop.wait()
        log.info("worker.stopped")
    engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
    exit_process(0)
