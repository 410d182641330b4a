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
from devstack.stack import Ports, Stack
from temporal_config import connect_config

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
    mail_url: str | None,
) -> str:
    api_key = settings.payrecon_api_keys[0].key.get_secret_value()
    lines = [
        "",
        "payrecon is running",
        f"  API            {api_url}   (OpenAPI docs: {api_url}/docs)",
        f"  Temporal       {temporal['target_host']}  namespace {temporal['namespace']}",
        f"  Temporal UI    {ui_url or 'not started (TEMPORAL_ADDRESS is not local)'}",
        f"  Sandbox        {sandbox_url}   (a local Paystack; webhooks -> {api_url})",
        f"  Mail catcher   {mail_url}   (the customers' emails)"
        if mail_url
        else "  Mail catcher   not started (SMTP_URL is set: emails go there)",
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
    temporal_host, temporal_port = _temporal_host_port(temporal)
    local_temporal = temporal_host in ("localhost", "127.0.0.1")
    sandbox_local = urlsplit(settings.paystack_base_url).hostname in ("localhost", "127.0.0.1")
    ports = Ports(
        temporal=temporal_port,
        ui=_port("TEMPORAL_UI_PORT", 8233),
        api=_port("PAYRECON_API_PORT", 8000),
        sandbox=_port("SANDBOX_PORT", 8100),
        smtp=_port("MAILCATCHER_SMTP_PORT", 1025),
        mail=_port("MAILCATCHER_PORT", 8025),
    )
    # The developer's own SMTP server, if they set one; the mail catcher otherwise.
    mail_catcher = settings.smtp_url is None
    stack = Stack(
        DATA_DIR,
        ports=ports,
        secret_key=settings.paystack_secret_key.get_secret_value(),
        api_key=settings.payrecon_api_keys[0].key.get_secret_value(),
        # Everything else is the developer's own settings, as every process reads them.
        settings={
            "PAYRECON_API_KEYS": ",".join(key.as_setting() for key in settings.payrecon_api_keys),
            "TEMPORAL_ADDRESS": temporal["target_host"],
            "PAYSTACK_BASE_URL": settings.paystack_base_url,
            "DATABASE_URL": settings.database_url,
            "PAYRECON_LOG_LEVEL": settings.payrecon_log_level,
            "PAYRECON_WORKER_METRICS_ADDRESS": settings.payrecon_worker_metrics_address,
        },
        sandbox_settings={"SANDBOX_STATE_FILE": str(DATA_DIR / "sandbox.json")},
        # Temporal's own log goes to .data/temporal.log: its pages of warnings as it stops.
        on_terminal=frozenset({"sandbox", "worker", "api"}),
        without=frozenset(
            name
            for name, local in (
                ("temporal", local_temporal),
                ("sandbox", sandbox_local),
                ("mailcatcher", mail_catcher),
            )
            if not local
        ),
    )
    wanted = {"API": ports.api}
    if local_temporal:
        wanted |= {"Temporal": ports.temporal, "Temporal UI": ports.ui}
    if sandbox_local:
        wanted["sandbox"] = ports.sandbox
    if mail_catcher:
        wanted |= {"mail catcher": ports.mail, "mail catcher SMTP": ports.smtp}
    if settings.payrecon_worker_metrics_address:
        wanted["worker metrics"] = int(settings.payrecon_worker_metrics_address.rpartition(":")[2])
    if taken := _ports_in_use(wanted):
        print(
            f"make run: in use already: {', '.join(taken)}. Is another `make run` still "
            "running? Stop it, or choose other ports (see the README's Configuration).",
            file=sys.stderr,
        )
        return 1

    stopping = False

    def request_stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        stack.start_all()
        ui_url = f"http://localhost:{ports.ui}" if local_temporal else None
        mail_url = stack.mail_url if mail_catcher else None
        _say(_banner(settings, temporal, stack.api_url, stack.sandbox_url, ui_url, mail_url))
        while not stopping:
            for service in stack.services.values():
                if service.process is not None and service.process.poll() is not None:
                    _say(f"{service.name} exited ({service.process.returncode}); stopping")
                    stopping = True
            time.sleep(0.2)
    finally:
        # Stop first, then say so: the terminal may be gone (a closed pipe), the children not.
        stack.stop_all()
        _say(f"stopped {', '.join(reversed(stack.services))}")
    return 0


def _say(text: str) -> None:
    with contextlib.suppress(OSError):
        print(text, flush=True)


if __name__ == "__main__":
    sys.exit(main())
