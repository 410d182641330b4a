"""Settings of the local Paystack sandbox, read from environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from config import DEV_PAYSTACK_SECRET_KEY
from sandbox.fault_config import FaultConfig


class SandboxSettings(BaseSettings):
    # No env prefix: PAYSTACK_SECRET_KEY is shared with the app that calls the sandbox.
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    paystack_secret_key: SecretStr = SecretStr(DEV_PAYSTACK_SECRET_KEY)
    sandbox_host: str = "127.0.0.1"
    sandbox_port: int = Field(8100, ge=0, le=65535)
    sandbox_public_url: str | None = None
    sandbox_webhook_url: str = "http://127.0.0.1:8000/webhooks/paystack"
    sandbox_webhooks_enabled: bool = True
    sandbox_state_file: Path | None = None
    # A refund moves pending -> processing -> processed by itself over this long, as
    # Paystack's do; 0: only POST /_sandbox/refunds/{id}/settle moves it.
    sandbox_refund_auto_seconds: float = Field(3.0, ge=0, le=3600)
    # SANDBOX_FAULTS: the JSON that POST /_sandbox/faults takes; everything off when unset.
    sandbox_faults: FaultConfig = Field(default_factory=FaultConfig)

    @property
    def public_url(self) -> str:
        """Base of the checkout links handed out by /transaction/initialize."""
        base = self.sandbox_public_url or f"http://{self.sandbox_host}:{self.sandbox_port}"
        return base.rstrip("/")
