"""How the SDK's configuration becomes the Temporal connection: dev server, TLS, mTLS,
API key, TOML profiles, and payrecon's earlier names."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.service import TLSConfig

from config import ApiKey, Settings
from db.engine import make_engine
from paystack.client import make_paystack_client
from temporal_config import TemporalConfigError, connect_config
from worker import ACTIVITY_THREADS, build_workers


def test_nothing_set_is_the_local_dev_server_in_plain_text() -> None:
    assert connect_config({}) == {
        "target_host": "localhost:7233",
        "namespace": "default",
        "tls": False,
    }


def test_tls_with_the_systems_roots() -> None:
    config = connect_config({"TEMPORAL_ADDRESS": "t.example:7233", "TEMPORAL_TLS": "true"})
    assert config["target_host"] == "t.example:7233"
    assert config["tls"] == TLSConfig()


def _certificates(tmp_path: Path) -> dict[str, Path]:
    files = {"ca": b"CA", "cert": b"CERT", "key": b"KEY"}
    for name, content in files.items():
        (tmp_path / f"{name}.pem").write_bytes(content)
    return {name: tmp_path / f"{name}.pem" for name in files}


def test_mutual_tls_by_the_sdks_own_names(tmp_path: Path) -> None:
    files = _certificates(tmp_path)
    config = connect_config(
        {
            "TEMPORAL_ADDRESS": "temporal.internal:7233",
            "TEMPORAL_NAMESPACE": "payments",
            "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(files["ca"]),
            "TEMPORAL_TLS_CLIENT_CERT_PATH": str(files["cert"]),
            "TEMPORAL_TLS_CLIENT_KEY_PATH": str(files["key"]),
            "TEMPORAL_TLS_SERVER_NAME": "temporal.internal",
        }
    )
    assert config["namespace"] == "payments"
    assert config["tls"] == TLSConfig(
        server_root_ca_cert=b"CA",
        client_cert=b"CERT",
        client_private_key=b"KEY",
        domain="temporal.internal",
    )
    assert "api_key" not in config


def test_earlier_names_still_work_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = _certificates(tmp_path)
    config = connect_config(
        {
            "TEMPORAL_ADDRESS": "temporal.internal:7233",
            "TEMPORAL_TLS_CA_FILE": str(files["ca"]),
            "TEMPORAL_TLS_CERT_FILE": str(files["cert"]),
            "TEMPORAL_TLS_KEY_FILE": str(files["key"]),
        }
    )
    assert config["tls"] == TLSConfig(
        server_root_ca_cert=b"CA", client_cert=b"CERT", client_private_key=b"KEY"
    )
    warned = capsys.readouterr().out
    for old, new in [
        ("TEMPORAL_TLS_CA_FILE", "TEMPORAL_TLS_SERVER_CA_CERT_PATH"),
        ("TEMPORAL_TLS_CERT_FILE", "TEMPORAL_TLS_CLIENT_CERT_PATH"),
        ("TEMPORAL_TLS_KEY_FILE", "TEMPORAL_TLS_CLIENT_KEY_PATH"),
    ]:
        assert old in warned and new in warned


def test_a_toml_profile_as_the_temporal_cli_reads_it(tmp_path: Path) -> None:
    profile = tmp_path / "temporal.toml"
    profile.write_text(
        '[profile.default]\naddress = "dev.internal:7233"\nnamespace = "dev"\n'
        '[profile.prod]\naddress = "prod.internal:7233"\nnamespace = "payments"\n'
    )
    config = connect_config({"TEMPORAL_CONFIG_FILE": str(profile), "TEMPORAL_PROFILE": "prod"})
    assert (config["target_host"], config["namespace"]) == ("prod.internal:7233", "payments")
    # The environment overrides the profile, as for the CLI.
    config = connect_config(
        {"TEMPORAL_CONFIG_FILE": str(profile), "TEMPORAL_NAMESPACE": "override"}
    )
    assert (config["target_host"], config["namespace"]) == ("dev.internal:7233", "override")


def test_temporal_cloud_api_key_turns_tls_on() -> None:
    config = connect_config(
        {"TEMPORAL_ADDRESS": "payments.a1b2c.tmprl.cloud:7233", "TEMPORAL_API_KEY": "cloud-key"}
    )
    assert config["tls"] is True
    assert config["api_key"] == "cloud-key"


def test_client_certificate_without_its_key_is_refused(tmp_path: Path) -> None:
    files = _certificates(tmp_path)
    with pytest.raises(TemporalConfigError, match="go together"):
        connect_config({"TEMPORAL_TLS_CLIENT_CERT_PATH": str(files["cert"])})


async def test_paystack_calls_have_a_queue_of_their_own(
    temporal: Client,
) -> None:
    # Queues of its own: the session's worker already polls the default ones.
    settings = Settings(
        temporal_task_queue="unit-invoices",
        temporal_paystack_task_queue="unit-paystack",
        paystack_max_calls_per_second=25,
        payrecon_api_keys=[ApiKey.parse("k")],
    )
    engine = make_engine("sqlite://")
    paystack = make_paystack_client(settings)
    with ThreadPoolExecutor(ACTIVITY_THREADS) as executor:
        invoices, paystack_calls = build_workers(temporal, settings, engine, paystack, executor)
    await paystack.aclose()
    assert invoices.task_queue == "unit-invoices"
    assert paystack_calls.task_queue == "unit-paystack"
    assert paystack_calls.config()["max_task_queue_activities_per_second"] == 25
    assert invoices.config()["max_task_queue_activities_per_second"] is None
