"""`make run`: the whole stack in one terminal; one Ctrl-C stops it all.

Temporal dev server (+ UI), the Paystack sandbox, the worker and the API, wired so the
sandbox sends its webhooks to the API. Every setting comes from the environment.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from temporalio.envconfig import ClientConnectConfig

from config import Settings, get_settings
from devstack.processes import (
    Service,
    python_module,
    temporal_dev_server,
    wait_for_http,
    wait_for_port,
)
from temporal_config import connect_config
from workflows.types import search_attribute_kinds

DATA_DIR = Path(".data")


def _port(value: str, default: int) -> int:
    return int(os.environ.get(value, default))


def _temporal_host_port(temporal: ClientConnectConfig) -> tuple[str, int]:
    host, _, port = temporal["target_host"].rpartition(":")
    return host or "localhost", int(port)


def _banner(
    settings: Settings,
    temporal: ClientConnectConfig,
    api_url: str,
    sandbox_url: str,
    ui_url: str | None,
) -> str:
    api_key = settings.payrecon_api_keys[0].get_secret_value()
    lines = [
        "",
        "payrecon is running",
        f"  API            {api_url}   (OpenAPI docs: {api_url}/docs)",
        f"  Temporal       {temporal['target_host']}  namespace {temporal['namespace']}",
        f"  Temporal UI    {ui_url or 'not started (TEMPORAL_ADDRESS is not local)'}",
        f"  Sandbox        {sandbox_url}   (a local Paystack; webhooks -> {api_url})",
        f"  Database       {settings.database_url}",
        "",
        f"  API key              {api_key}",
        f"  Sandbox secret key   {settings.paystack_secret_key.get_secret_value()}",
        "",
        "  Try it:  make demo        (or:)",
        f"    curl -s -X POST {api_url}/invoices -H 'Authorization: Bearer {api_key}' \\",
        "      -H 'Content-Type: application/json' \\",
        '      -d \'{"customer_email": "ada@example.com", "amount": 250000, "currency": "NGN"}\'',
        "",
        "Ctrl-C stops everything.",
        "",
    ]
    return "\n".join(lines)


def _ports_in_use(ports: dict[str, int]) -> list[str]:
    taken = []
    for name, port in ports.items():
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                taken.append(f"{name} :{port}")
    return taken


def main() -> int:
    settings = get_settings()
    temporal = connect_config()
    DATA_DIR.mkdir(exist_ok=True)
    api_port = _port("PAYRECON_API_PORT", 8000)
    sandbox_port = _port("SANDBOX_PORT", 8100)
    ui_port = _port("TEMPORAL_UI_PORT", 8233)
    api_url = f"http://127.0.0.1:{api_port}"
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    temporal_host, temporal_port = _temporal_host_port(temporal)
    local_temporal = temporal_host in ("localhost", "127.0.0.1")
    sandbox_local = urlsplit(settings.paystack_base_url).hostname in ("localhost", "127.0.0.1")

    ports = {"API": api_port}
    if local_temporal:
        ports |= {"Temporal": temporal_port, "Temporal UI": ui_port}
    if sandbox_local:
        ports["sandbox"] = sandbox_port
    if settings.payrecon_worker_metrics_address:
        ports["worker metrics"] = int(settings.payrecon_worker_metrics_address.rpartition(":")[2])
    if taken := _ports_in_use(ports):
        print(
            f"make run: in use already: {', '.join(taken)}. Is another `make run` still "
            "running? Stop it, or choose other ports (see the README's Configuration).",
            file=sys.stderr,
        )
        return 1

    services: list[Service] = []
    if local_temporal:
        # Its own log: Temporal's warnings (pages of them as it stops) stay out of the way.
        services.append(
            Service(
                "temporal",
                temporal_dev_server(
                    DATA_DIR / "temporal.db", temporal_port, ui_port, search_attribute_kinds()
                ),
                log_path=DATA_DIR / "temporal.log",
            )
        )
    if sandbox_local:
        services.append(
            Service(
                "sandbox",
                python_module("sandbox"),
                env={
                    "SANDBOX_PORT": str(sandbox_port),
                    "SANDBOX_WEBHOOK_URL": f"{api_url}/webhooks/paystack",
                    "SANDBOX_STATE_FILE": str(DATA_DIR / "sandbox.json"),
                },
            )
        )
    worker = Service("worker", python_module("worker"))
    api = Service("api", python_module("api"), env={"PAYRECON_API_PORT": str(api_port)})

    stopping = False

    def request_stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        for service in services:
            service.start()
        if local_temporal:
            wait_for_port("127.0.0.1", temporal_port, timeout=60)
        if sandbox_local:
            wait_for_http(f"{sandbox_url}/_sandbox/healthz")
        services += [worker.start(), api.start()]
        wait_for_http(f"{api_url}/healthz", process=api.process)
        ui_url = f"http://localhost:{ui_port}" if local_temporal else None
        _say(_banner(settings, temporal, api_url, sandbox_url, ui_url))
        while not stopping:
            for service in services:
                if service.process is not None and service.process.poll() is not None:
                    _say(f"{service.name} exited ({service.process.returncode}); stopping")
                    stopping = True
            time.sleep(0.2)
    finally:
        # Stop first, then say so: the terminal may be gone (a closed pipe), the children not.
        for service in reversed(services):
            service.stop()
        _say(f"stopped {', '.join(service.name for service in reversed(services))}")
    return 0


def _say(text: str) -> None:
    with contextlib.suppress(OSError):
        print(text, flush=True)


if __name__ == "__main__":
    sys.exit(main())
