"""The Temporal worker: runs invoice workflows and their activities.

python worker.py        (make run starts it for you)
"""

from __future__ import annotations

import asyncio
import signal
from concurrent.futures import ThreadPoolExecutor

import structlog
from sqlalchemy import Engine
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

from activities.database import DatabaseActivities
from activities.paystack import PaystackActivities
from config import Settings, get_settings
from db.engine import make_engine
from db.migrate import migrate
from log import configure_logging
from paystack.client import PaystackClient
from workflows.invoice import InvoiceWorkflow

log = structlog.get_logger(__name__)

ACTIVITY_THREADS = 32


def build_worker(
    client: Client,
    settings: Settings,
    engine: Engine,
    paystack: PaystackClient,
    executor: ThreadPoolExecutor,
) -> Worker:
    paystack_activities = PaystackActivities(paystack, settings.paystack_callback_url)
    database_activities = DatabaseActivities(engine)
    return Worker(
        client,
        task_queue=settings.temporal_task_queue,
        workflows=[InvoiceWorkflow],
        activities=[
            paystack_activities.initialize_transaction,
            paystack_activities.verify_transaction,
            database_activities.record_invoice,
        ],
        activity_executor=executor,
        # No more activities at once than threads to run the synchronous ones.
        max_concurrent_activities=ACTIVITY_THREADS,
    )


def make_paystack_client(settings: Settings) -> PaystackClient:
    return PaystackClient(
        settings.paystack_base_url,
        settings.paystack_secret_key.get_secret_value(),
        timeout=settings.paystack_timeout_seconds,
    )


async def main() -> None:
    settings = get_settings()
    configure_logging(settings.payrecon_log_level)
    # Workflow and activity context goes into structured fields, not the message text.
    workflow.logger.workflow_info_on_message = False
    activity.logger.activity_info_on_message = False
    engine = make_engine(settings.database_url)
    migrate(engine)
    client = await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace)
    paystack = make_paystack_client(settings)
    with ThreadPoolExecutor(
        max_workers=ACTIVITY_THREADS, thread_name_prefix="activity"
    ) as executor:
        worker = build_worker(client, settings, engine, paystack, executor)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        log.info(
            "worker.started",
            task_queue=settings.temporal_task_queue,
            temporal=settings.temporal_address,
            paystack=settings.paystack_base_url,
        )
        async with worker:
            await stop.wait()
        log.info("worker.stopped")
    await paystack.aclose()
    engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
