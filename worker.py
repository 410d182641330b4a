"""The Temporal worker: runs invoice workflows and their activities.

    python -m worker        (make run starts it for you)

Three pollers share one process: the invoice queue (workflows and database writes), the
Paystack queue, whose activity rate is capped across every worker by the server, and the
events queue (merchants' endpoints, customers' emails), whose slow answers hold up no
invoice.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from concurrent.futures import ThreadPoolExecutor

import httpx
import structlog
from sqlalchemy import Engine
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker

from activities.announce import Announcer
from activities.database import DatabaseActivities
from activities.email import EmailActivities, make_mailer
from activities.events import EventActivities
from activities.paystack import PaystackActivities
from activities.reconciliation import ReconciliationActivities
from config import Settings, get_settings
from db.engine import make_engine
from db.migrate import migrate
from lifecycle import exit_process
from log import configure_logging
from paystack.client import PaystackClient, make_paystack_client
from temporal_config import connect
from workflows.discrepancy_refund import DiscrepancyRefundWorkflow
from workflows.events import EventWorkflow
from workflows.invoice import InvoiceWorkflow
from workflows.reconciliation import ReconciliationWorkflow
from workflows.retention import WebhookRetentionWorkflow
from workflows.schedules import ensure_schedules

log = structlog.get_logger(__name__)

ACTIVITY_THREADS = 32
PAYSTACK_CONCURRENCY = 100
# Deliveries wait on merchants' servers, each up to its timeout: many at once.
EVENT_CONCURRENCY = 200


def build_workers(
    client: Client,
    settings: Settings,
    engine: Engine,
    paystack: PaystackClient,
    executor: ThreadPoolExecutor,
    outbound: httpx.AsyncClient,
) -> list[Worker]:
    paystack_activities = PaystackActivities(paystack, settings.paystack_callback_url, engine)
    database = DatabaseActivities(engine)
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
        # Mostly local activities of the invoice workflows; the retention sweep and the
        # announce of each transition are regular ones (see workflows/invoice.py).
        activities=[
            database.record_invoice,
            database.load_invoice,
            database.delete_expired_deliveries,
            paystack_activities.initialize_transaction,
            *paystack_activities.capped(),
            Announcer(client, engine).announce_event,
            reconciliation.start_run,
            reconciliation.finish_run,
            reconciliation.heal_missed_payment,
            reconciliation.notify_invoice,
            reconciliation.settle_discrepancy_refund,
            reconciliation.tell_operators,
        ],
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
    events = EventActivities(
        engine,
        outbound,
        settings.codec_keys,
        development_mode=settings.payrecon_development_mode,
    )
    emails = EmailActivities(engine, make_mailer(settings), settings.payrecon_email_from)
    telling = Worker(
        client,
        task_queue=settings.temporal_events_task_queue,
        workflows=[EventWorkflow],
        activities=[
            events.store_event,
            events.redelivery_targets,
            events.deliver_event,
            emails.send_customer_email,
        ],
        activity_executor=executor,
        max_concurrent_activities=ACTIVITY_THREADS,
        max_concurrent_local_activities=EVENT_CONCURRENCY,
    )
    return [invoices, paystack_calls, telling]


def make_runtime(settings: Settings) -> Runtime | None:
    """The SDK's own metrics (task latencies, schedule-to-start, slots) for Prometheus."""
    if not settings.payrecon_worker_metrics_address:
        return None
    metrics = PrometheusConfig(bind_address=settings.payrecon_worker_metrics_address)
    return Runtime(telemetry=TelemetryConfig(metrics=metrics))


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
    paystack = make_paystack_client(settings)
    outbound = httpx.AsyncClient()
    with ThreadPoolExecutor(ACTIVITY_THREADS, thread_name_prefix="activity") as executor:
        workers = build_workers(client, settings, engine, paystack, executor, outbound)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        log.info(
            "worker.started",
            task_queues=[
                settings.temporal_task_queue,
                settings.temporal_paystack_task_queue,
                settings.temporal_events_task_queue,
            ],
            temporal=client.service_client.config.target_host,
            namespace=client.namespace,
            paystack=settings.paystack_base_url,
            metrics=settings.payrecon_worker_metrics_address or None,
        )
        async with contextlib.AsyncExitStack() as running:
            for worker in workers:
                await running.enter_async_context(worker)
            await stop.wait()
        log.info("worker.stopped")
    await paystack.aclose()
    await outbound.aclose()
    engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
    exit_process(0)
