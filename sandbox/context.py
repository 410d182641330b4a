"""Everything one sandbox app instance holds, reachable from request handlers."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request

from sandbox.faults import Faults
from sandbox.settings import SandboxSettings
from sandbox.store import Store
from sandbox.webhooks import WebhookSender


@dataclass
class RuntimeConfig:
    """What /_sandbox/config can change while the sandbox runs."""

    webhooks_enabled: bool
    webhook_url: str

    @classmethod
    def from_settings(cls, settings: SandboxSettings) -> RuntimeConfig:
        return cls(settings.sandbox_webhooks_enabled, settings.sandbox_webhook_url)

    def to_dict(self) -> dict[str, Any]:
        return {"webhooks_enabled": self.webhooks_enabled, "webhook_url": self.webhook_url}


@dataclass
class Sandbox:
    settings: SandboxSettings
    store: Store
    config: RuntimeConfig
    webhooks: WebhookSender
    faults: Faults
    # Work that outlives a request (a refund settling by itself), stopped at reset and exit.
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def cancel_tasks(self) -> None:
        while self.tasks:
            tasks = list(self.tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    @classmethod
    def from_settings(cls, settings: SandboxSettings) -> Sandbox:
        store = Store(settings.sandbox_state_file)
        # A copy: remaining counts are used up in the live config, never in the settings.
        faults = Faults(settings.sandbox_faults.model_copy(deep=True))
        sender = WebhookSender(store, settings.paystack_secret_key.get_secret_value(), faults)
        return cls(settings, store, RuntimeConfig.from_settings(settings), sender, faults)

    def reset_config(self) -> None:
        self.config = RuntimeConfig.from_settings(self.settings)

    async def reset(self) -> None:
        """Back to a fresh start: no deliveries under way, no state, every fault off."""
        # Deliveries and timers first, so none of them records into the state cleared next.
        await self.cancel_tasks()
        await self.webhooks.cancel_all()
        await self.store.reset()
        self.reset_config()
        self.faults.reset()


def get_sandbox(request: Request) -> Sandbox:
    sandbox: Sandbox = request.app.state.sandbox
    return sandbox


SandboxDep = Annotated[Sandbox, Depends(get_sandbox)]
