"""A whole payrecon stack as child processes on free loopback ports, in one directory:
Temporal dev server (file persistence), sandbox, worker and API. Used by `make chaos` and
`make bench`; each part can be killed and started again."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from config import DEV_API_KEY, DEV_PAYSTACK_SECRET_KEY
from devstack.processes import (
    Service,
    free_port,
    python_module,
    temporal_dev_server,
    wait_for_http,
    wait_for_port,
)
from workflows.types import search_attribute_kinds

PARTS = ("temporal", "sandbox", "worker", "api")


@dataclass
class LocalStack:
    directory: Path
    secret_key: str = DEV_PAYSTACK_SECRET_KEY
    api_key: str = DEV_API_KEY
    ports: dict[str, int] = field(
        default_factory=lambda: {name: free_port() for name in ("temporal", "ui", "api", "sandbox")}
    )
    services: dict[str, Service] = field(default_factory=dict)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['api']}"

    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['sandbox']}"

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.directory / 'payrecon.db'}"

    def env(self, **overrides: str) -> dict[str, str]:
        """The settings every payrecon process of this stack shares."""
        return {
            "PAYSTACK_SECRET_KEY": self.secret_key,
            "PAYSTACK_BASE_URL": self.sandbox_url,
            "TEMPORAL_ADDRESS": f"127.0.0.1:{self.ports['temporal']}",
            "DATABASE_URL": self.database_url,
            "PAYRECON_API_KEYS": self.api_key,
            "PAYRECON_API_PORT": str(self.ports["api"]),
            "PAYRECON_LOG_LEVEL": "WARNING",
            "PAYRECON_WORKER_METRICS_ADDRESS": "",
            **overrides,
        }

    def build(self, env: dict[str, str], sandbox_env: dict[str, str] | None = None) -> None:
        logs = self.directory
        self.services = {
            "temporal": Service(
                "temporal",
                temporal_dev_server(
                    self.directory / "temporal.db",
                    self.ports["temporal"],
                    self.ports["ui"],
                    search_attribute_kinds(),
                ),
                log_path=logs / "temporal.log",
            ),
            "sandbox": Service(
                "sandbox",
                python_module("sandbox"),
                env={
                    **env,
                    "SANDBOX_PORT": str(self.ports["sandbox"]),
                    "SANDBOX_WEBHOOK_URL": f"{self.api_url}/webhooks/paystack",
                    **(sandbox_env or {}),
                },
                log_path=logs / "sandbox.log",
            ),
            "worker": Service(
                "worker", python_module("worker"), env=env, log_path=logs / "worker.log"
            ),
            "api": Service("api", python_module("api"), env=env, log_path=logs / "api.log"),
        }

    def wait_ready(self, name: str) -> None:
        if name == "temporal":
            wait_for_port("127.0.0.1", self.ports["temporal"], timeout=60)
        elif name == "sandbox":
            wait_for_http(f"{self.sandbox_url}/_sandbox/healthz", timeout=60)
        elif name == "api":
            wait_for_http(f"{self.api_url}/healthz", timeout=60)

    def start(self, name: str) -> None:
        self.services[name].start()
        self.wait_ready(name)

    def start_all(self) -> None:
        for name in PARTS:
            self.start(name)

    def stop_all(self) -> None:
        for service in reversed(list(self.services.values())):
            service.stop()
