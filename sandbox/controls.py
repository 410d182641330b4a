"""The sandbox's test controls (`/_sandbox/...`), as the tests, `make demo`, the screenshot,
chaos and the bench use them: the one place their routes are written."""

from __future__ import annotations

from typing import Any

import httpx


def pay_path(reference: str) -> str:
    return f"/_sandbox/transactions/{reference}/pay"


def transaction_path(reference: str) -> str:
    return f"/_sandbox/transactions/{reference}"


TRANSACTIONS, SETTLEMENTS_RUN = "/_sandbox/transactions", "/_sandbox/settlements/run"
CONFIG, FAULTS, STATS, WEBHOOKS, RESET = (
    "/_sandbox/config",
    "/_sandbox/faults",
    "/_sandbox/stats",
    "/_sandbox/webhooks",
    "/_sandbox/reset",
)


class SandboxControls:
    """The controls over an async HTTP client whose base URL is the sandbox."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def pay(self, reference: str, outcome: str = "success", **fields: Any) -> Any:
        """The customer pays (or fails to): Paystack records it and sends its webhook."""
        response = await self.http.post(pay_path(reference), json={"outcome": outcome, **fields})
        response.raise_for_status()
        return response.json()["data"]

    async def transaction(self, reference: str) -> dict[str, Any] | None:
        """What the sandbox holds for a reference (with its call counters), if anything."""
        response = await self.http.get(transaction_path(reference))
        if response.status_code == 404:
            return None
        response.raise_for_status()
        found: dict[str, Any] = response.json()
        return found

    async def resend_webhook(self, reference: str, copies: int = 1) -> None:
        response = await self.http.post(
            f"{transaction_path(reference)}/webhook", json={"copies": copies}
        )
        response.raise_for_status()

    async def set_webhooks(self, enabled: bool) -> None:
        response = await self.http.post(CONFIG, json={"webhooks_enabled": enabled})
        response.raise_for_status()

    async def set_faults(self, **faults: Any) -> dict[str, Any]:
        response = await self.http.post(FAULTS, json=faults)
        response.raise_for_status()
        merged: dict[str, Any] = response.json()
        return merged

    async def clear_faults(self) -> None:
        (await self.http.delete(FAULTS)).raise_for_status()

    async def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = (await self.http.get(STATS)).json()
        return stats

    async def webhooks(self, reference: str) -> list[dict[str, Any]]:
        log: list[dict[str, Any]] = (
            await self.http.get(WEBHOOKS, params={"reference": reference})
        ).json()
        return log

    async def create_payment(
        self, amount: int, currency: str, email: str, reference: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        """A payment no invoice asked for (a payment page), with its charge.success."""
        body = {"amount": amount, "currency": currency, "email": email, **fields}
        if reference is not None:
            body["reference"] = reference
        response = await self.http.post(TRANSACTIONS, json=body)
        response.raise_for_status()
        created: dict[str, Any] = response.json()["data"]
        return created

    async def reverse(self, reference: str) -> None:
        """A successful transaction reversed on Paystack's side, with no refund."""
        (await self.http.post(f"{transaction_path(reference)}/reverse")).raise_for_status()

    async def run_settlements(self, fault: str | None = None) -> dict[str, Any]:
        """Pays out every successful transaction not yet settled; the whole answer, with
        `faults` naming what was put wrong on purpose."""
        response = await self.http.post(SETTLEMENTS_RUN, json={"fault": fault})
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        return answer

    async def settle_refund(self, refund_id: int, outcome: str = "processed") -> dict[str, Any]:
        """Moves a refund on to `outcome`, each step with its webhook."""
        response = await self.http.post(
            f"/_sandbox/refunds/{refund_id}/settle", json={"outcome": outcome}
        )
        response.raise_for_status()
        refund: dict[str, Any] = response.json()["data"]
        return refund

    async def open_dispute(self, transaction: str | int, **fields: Any) -> dict[str, Any]:
        """The card holder disputes a payment; `charge.dispute.create` follows."""
        response = await self.http.post(
            "/_sandbox/disputes", json={"transaction": transaction, **fields}
        )
        response.raise_for_status()
        dispute: dict[str, Any] = response.json()["data"]
        return dispute

    async def bulk_transactions(self, transactions: list[dict[str, Any]]) -> int:
        response = await self.http.post(f"{TRANSACTIONS}/bulk", json={"transactions": transactions})
        response.raise_for_status()
        created: int = response.json()["data"]["created"]
        return created
