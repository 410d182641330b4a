"""`python -m sandbox`: serve the Paystack sandbox on SANDBOX_HOST:SANDBOX_PORT."""

from __future__ import annotations

import logging

import uvicorn

from sandbox.app import create_app
from sandbox.fault_config import FaultConfig
from sandbox.settings import SandboxSettings

logger = logging.getLogger("sandbox")


def main() -> None:
    settings = SandboxSettings()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logger.info(
        "Paystack sandbox at %s, webhooks %s to %s, state %s",
        settings.public_url,
        "on" if settings.sandbox_webhooks_enabled else "off",
        settings.sandbox_webhook_url,
        settings.sandbox_state_file or "in memory only",
    )
    if settings.sandbox_faults != FaultConfig():
        logger.info("Fault injection on: %s", settings.sandbox_faults.model_dump_json())
    # Its own lines say what it does; uvicorn's request lines would bury them.
    uvicorn.run(
        create_app(settings),
        host=settings.sandbox_host,
        port=settings.sandbox_port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
