"""How settings become the Temporal client's connection: dev server, TLS, mTLS, API key."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pydantic import ValidationError
from temporalio.service import TLSConfig
from temporalio.testing import WorkflowEnvironment

from config import Settings
from db.engine import make_engine
from temporal_connection import connect_options
from worker import ACTIVITY_THREADS, build_workers, make_paystack_client


def test_local_dev_server_is_plain() -> None:
    options = connect_options(Settings(temporal_address="localhost:7233"))
    assert options == {"target_host": "localhost:7233", "namespace": "default", "tls": False}


def test_tls_with_the_systems_roots() -> None:
    options = connect_options(Settings(temporal_tls=True, temporal_address="t.example:7233"))
    assert options["tls"] is True


def test_mutual_tls_reads_the_ca_and_client_certificate(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_bytes(b"CA")
    (tmp_path / "client.pem").write_bytes(b"CERT")
    (tmp_path / "client.key").write_bytes(b"KEY")
    settings = Settings(
        temporal_address="temporal.internal:7233",
        temporal_namespace="payments",
        temporal_tls_ca_file=tmp_path / "ca.pem",
        temporal_tls_cert_file=tmp_path / "client.pem",
        temporal_tls_key_file=tmp_path / "client.key",
        temporal_tls_server_name="temporal.internal",
    )
    options = connect_options(settings)
    assert options["namespace"] == "payments"
    assert options["tls"] == TLSConfig(
        server_root_ca_cert=b"CA",
        client_cert=b"CERT",
        client_private_key=b"KEY",
        domain="temporal.internal",
    )
    assert "api_key" not in options


def test_temporal_cloud_api_key_turns_tls_on() -> None:
    settings = Settings(
        temporal_address="payments.a1b2c.tmprl.cloud:7233", temporal_api_key="cloud-key"
    )
    options = connect_options(settings)
    assert options["tls"] is True
    assert options["api_key"] == "cloud-key"
    assert "cloud-key" not in repr(settings)


def test_client_certificate_without_its_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="go together"):
        Settings(temporal_tls_cert_file=tmp_path / "client.pem")


async def test_paystack_activities_have_their_own_rate_capped_queue(
    temporal_env: WorkflowEnvironment,
) -> None:
    # Queues of its own: the session's worker already polls the default ones.
    settings = Settings(
        temporal_task_queue="unit-invoices",
        temporal_paystack_task_queue="unit-paystack",
        paystack_max_calls_per_second=25,
        payrecon_api_keys="k",
    )
    engine = make_engine("sqlite://")
    paystack = make_paystack_client(settings)
    with ThreadPoolExecutor(ACTIVITY_THREADS) as executor:
        invoices, paystack_calls = build_workers(
            temporal_env.client, settings, engine, paystack, executor
        )
    await paystack.aclose()
    assert invoices.task_queue == "unit-invoices"
    assert paystack_calls.task_queue == "unit-paystack"
    assert paystack_calls.config()["max_task_queue_activities_per_second"] == 25
    assert invoices.config()["max_task_queue_activities_per_second"] is None
