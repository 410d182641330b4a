"""Connecting to Temporal: the local dev server, a self-hosted cluster over TLS or mTLS, or
Temporal Cloud with an API key, all from settings."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, NoReturn

from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.service import TLSConfig

from config import Settings


def tls_config(settings: Settings) -> TLSConfig | bool:
    wants_tls = (
        settings.temporal_tls
        or settings.temporal_tls_ca_file is not None
        or settings.temporal_tls_cert_file is not None
        or settings.temporal_api_key is not None
    )
    if not wants_tls:
        return False
    custom = (
        settings.temporal_tls_ca_file,
        settings.temporal_tls_cert_file,
        settings.temporal_tls_server_name,
    )
    if all(value is None for value in custom):
        return True  # the system's trusted roots
    return TLSConfig(
        server_root_ca_cert=_read(settings.temporal_tls_ca_file),
        client_cert=_read(settings.temporal_tls_cert_file),
        client_private_key=_read(settings.temporal_tls_key_file),
        domain=settings.temporal_tls_server_name,
    )


def connect_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for Client.connect."""
    options: dict[str, Any] = {
        "target_host": settings.temporal_address,
        "namespace": settings.temporal_namespace,
        "tls": tls_config(settings),
    }
    if settings.temporal_api_key is not None:
        options["api_key"] = settings.temporal_api_key.get_secret_value()
    return options


async def connect(
    settings: Settings, *, lazy: bool = False, runtime: Runtime | None = None
) -> Client:
    return await Client.connect(**connect_options(settings), lazy=lazy, runtime=runtime)


def _read(path: Any) -> bytes | None:
    return path.read_bytes() if path is not None else None


def exit_process(code: int) -> NoReturn:
    """End a process that used a Temporal client, skipping interpreter teardown.

    The client's Rust threads can outlive the event loop and call into Python while it
    finalizes, which aborts the process (SIGABRT, "PyGILState_Release ... must be
    current"; temporalio/sdk-python#300). Output is flushed first, so nothing is lost.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)
