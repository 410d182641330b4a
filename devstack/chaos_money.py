"""Money after payment in `make chaos`: while processes are killed and Paystack misbehaves,
paid invoices are refunded through the API (in full, in part, failing, needing attention
then retried), refunded on Paystack's dashboard, and disputed (declined with evidence, or
accepted with the refund Paystack makes). Paystack's refund create loses some answers.
At the end each invoice's refunds and disputes are judged against the sandbox's books: no
refund above what was paid, none made twice at Paystack, and every refund's and dispute's
final state as Paystack has it."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from devstack.chaos_books import Books, ChaosInvoice, patiently, retrying
from devstack.progress import Phase, Progress
from domain.refunds import refund_id_in
from sandbox.controls import SandboxControls

PLANS = (
    "full",
    "partial",
    "failing",
    "attention",
    "dashboard",
    "dispute_declined",
    "dispute_accepted",
)
# Paystack's POST /refund fails a share of calls, half of them after making the refund.
REFUND_FAULTS: dict[str, Any] = {
    "error_rate": 0.3,
    "error_statuses": [500, 502, 503],
    "latency_ms": [0, 50],
    "after_commit": 0.5,
}
# Refunds in flight are checked this often (s) when no webhook says they moved.
REFUND_POLL_SCHEDULE = "2,4,8"
ACCOUNT = {"currency": "NGN", "account_number": "0123456789", "bank_id": "9"}


@dataclass
class Story:
    plan: str
    invoice: ChaosInvoice
    notes: list[str] = field(default_factory=list)
    done: bool = False


@dataclass
class Judged:
    over_refunded: list[str] = field(default_factory=list)
    made_twice: list[str] = field(default_factory=list)
    refunds_differing: list[str] = field(default_factory=list)
    disputes_differing: list[str] = field(default_factory=list)
    refunds_seen: int = 0
    disputes_seen: int = 0
    # Each invoice's status as Paystack's processed refunds make it.
    expected_status: dict[str, str] = field(default_factory=dict)


class MoneyAfterPayment:
    def __init__(
        self,
        books: Books,
        api: httpx.AsyncClient,
        sandbox: httpx.AsyncClient,
        rng: random.Random,
        *,
        per_plan: int,
    ) -> None:
        self.books, self.api, self.rng = books, api, rng
        self.controls = SandboxControls(sandbox)
        self.paystack = httpx.AsyncClient(
            base_url=books.stack.sandbox_url,
            headers={"Authorization": f"Bearer {books.stack.secret_key}"},
            timeout=30,
        )
        self.per_plan = per_plan
        self.stories: list[Story] = []
        # Refunds refused while an invoice's workflow was behind what the API showed.
        self.caught_up = 0

    async def aclose(self) -> None:
        await self.paystack.aclose()

    # --- during chaos ---------------------------------------------------------------

    async def during(self, window: float, phase: Phase, until: float) -> None:
        """Each plan, `per_plan` times, on an invoice the API shows paid, at random moments
        of the kill phase; all at once, each waiting for its own moment."""
        plans = [plan for plan in PLANS for _ in range(self.per_plan)]
        self.rng.shuffle(plans)
        began = time.monotonic()
        moments = sorted(self.rng.uniform(0.2, 0.8) * window for _ in plans)

        async def one(plan: str, at: float) -> None:
            await asyncio.sleep(max(0.0, began + at - time.monotonic()))
            invoice = await self._paid_invoice(until)
            if invoice is None:
                return
            story = Story(plan, invoice)
            self.stories.append(story)
            try:
                await self._play(story, until)
                story.done = True
            except Exception as failure:
                story.notes.append(f"failed: {failure!r}")

        await asyncio.gather(*(one(plan, at) for plan, at in zip(plans, moments, strict=True)))
        done = Counter(story.plan for story in self.stories if story.done)
        phase.note("money after payment: " + ", ".join(f"{p} {n}" for p, n in sorted(done.items())))

    async def _paid_invoice(self, until: float) -> ChaosInvoice | None:
        """A paid invoice no other part of chaos has taken (none is refunded twice over)."""
        while time.monotonic() < until:
            invoice = await self.books.take_paid_invoice(until)
            if invoice is not None:
                self.books.trouble.after_payment.add(invoice.invoice_id or "")
                return invoice
            await asyncio.sleep(1)
        return None

    async def _play(self, story: Story, until: float) -> None:
        invoice = story.invoice
        assert invoice.invoice_id is not None
        shown = (
            await retrying(lambda: self.api.get(f"/invoices/{invoice.invoice_id}"), until=until)
        ).json()
        match story.plan:
            case "full" | "failing" | "attention":
                refund = await self._refund(invoice.invoice_id, None, until)
                outcome = {"full": "processed", "failing": "failed"}.get(
                    story.plan, "needs-attention"
                )
                await self._settle(refund, outcome, until)
                if story.plan == "attention":
                    await self._retry_when_needed(refund, until)
                    await self._settle(refund, "processed", until)
            case "partial":
                refund = await self._refund(invoice.invoice_id, invoice.amount // 3, until)
                await self._settle(refund, "processed", until)
            case "dashboard":
                made = await self._dashboard_refund(
                    shown["paystack_transaction_id"], invoice.amount // 2, until
                )
                await self._settle_paystack(made, "processed", until)
            case "dispute_declined" | "dispute_accepted":
                dispute = await patiently(
                    lambda: self.controls.open_dispute(shown["paystack_transaction_id"]), until
                )
                await self._dispute_shown(invoice.invoice_id, dispute["id"], until)
                await self._resolve(
                    invoice, dispute["id"], shown["paystack_transaction_id"], story.plan, until
                )

    async def _refund(self, invoice_id: str, amount: int | None, until: float) -> dict[str, Any]:
        """Asked through the API with a key, so a retry is the same refund; answered once
        Paystack has it (201), or later found with its Paystack id (202, then polled)."""
        body = {} if amount is None else {"amount": amount}
        key = {"Idempotency-Key": f"chaos-refund-{invoice_id}"}
        while True:
            answer = await retrying(
                lambda: self.api.post(f"/invoices/{invoice_id}/refunds", json=body, headers=key),
                until=until,
            )
            # The API showed it paid, but its workflow is still pending: Temporal, killed,
            # came back without its last moments, and the workflow verifies again.
            behind = answer.status_code == 409 and "it is pending" in answer.text
            if not behind or time.monotonic() >= until:
                break
            self.caught_up += 1
            await asyncio.sleep(1)
        if answer.status_code not in (200, 201, 202):
            raise RuntimeError(f"refund answered {answer.status_code}: {answer.text[:200]}")
        refund: dict[str, Any] = answer.json()
        url = f"/refunds/{refund['id']}"
        while refund["paystack_refund_id"] is None and time.monotonic() < until:
            await asyncio.sleep(1)
            refund = (await retrying(lambda: self.api.get(url), until=until)).json()
        return refund

    async def _dashboard_refund(self, transaction_id: int, amount: int, until: float) -> int:
        """Made by hand on Paystack's dashboard: once, even when Paystack loses the answer
        (the person looks before trying again)."""
        note = f"refunded by hand {transaction_id}"
        while time.monotonic() < until:
            listed = await patiently(
                lambda: self.paystack.get("/refund", params={"transaction": str(transaction_id)}),
                until,
            )
            if listed.status_code == 200:
                for refund in listed.json()["data"]:
                    if refund.get("merchant_note") == note:
                        return int(refund["id"])
                made = await patiently(
                    lambda: self.paystack.post(
                        "/refund",
                        json={
                            "transaction": str(transaction_id),
                            "amount": amount,
                            "merchant_note": note,
                        },
                    ),
                    until,
                )
                if made.status_code == 200:
                    return int(made.json()["data"]["id"])
            await asyncio.sleep(0.5)
        raise TimeoutError(f"no dashboard refund of {transaction_id}")

    async def _settle(self, refund: dict[str, Any], outcome: str, until: float) -> None:
        await self._settle_paystack(refund["paystack_refund_id"], outcome, until)

    async def _settle_paystack(self, paystack_refund_id: int, outcome: str, until: float) -> None:
        await patiently(lambda: self.controls.settle_refund(paystack_refund_id, outcome), until)

    async def _retry_when_needed(self, refund: dict[str, Any], until: float) -> None:
        """The operator sends the customer's account once payrecon shows it needs one (and
        not again once a retry, even one whose answer a kill lost, took it on)."""
        url, tried = f"/refunds/{refund['id']}", False
        while time.monotonic() < until:
            status = (await retrying(lambda: self.api.get(url), until=until)).json()["status"]
            if status == "needs_attention":
                tried = True
                retried = await retrying(
                    lambda: self.api.post(f"{url}/retry", json=ACCOUNT), until=until
                )
                if retried.status_code == 200:
                    return
            elif tried and status in ("processing", "processed"):
                return
            await asyncio.sleep(1)
        raise TimeoutError(f"refund {refund['id']} never needed attention")

    async def _dispute_shown(self, invoice_id: str, dispute_id: int, until: float) -> None:
        while time.monotonic() < until:
            shown = await retrying(lambda: self.api.get(f"/invoices/{invoice_id}"), until=until)
            if any(d["id"] == dispute_id for d in shown.json()["disputes"]):
                return
            await asyncio.sleep(1)
        raise TimeoutError(f"dispute {dispute_id} never shown")

    async def _dispute_resolved(self, invoice: ChaosInvoice, dispute_id: int, until: float) -> None:
        while time.monotonic() < until:
            shown = await retrying(
                lambda: self.api.get(f"/invoices/{invoice.invoice_id}"), until=until
            )
            if any(
                d["id"] == dispute_id and d["status"] == "resolved"
                for d in shown.json()["disputes"]
            ):
                return
            await asyncio.sleep(1)
        raise TimeoutError(f"dispute {dispute_id} never shown resolved")

    async def _resolve(
        self, invoice: ChaosInvoice, dispute_id: int, transaction_id: int, plan: str, until: float
    ) -> None:
        url = await retrying(
            lambda: self.api.get(
                f"/disputes/{dispute_id}/upload-url", params={"filename": "proof.pdf"}
            ),
            until=until,
        )
        uploaded = url.json()
        await patiently(
            lambda: self.paystack.put(uploaded["signed_url"], content=b"%PDF-1.4 proof"), until
        )
        accepted = plan == "dispute_accepted"
        answer = await retrying(
            lambda: self.api.post(
                f"/disputes/{dispute_id}/resolve",
                json={
                    "resolution": "merchant_accepted" if accepted else "declined",
                    "message": "chaos",
                    "refund_amount": invoice.amount if accepted else 0,
                    "uploaded_filename": uploaded["file_name"],
                },
            ),
            until=until,
        )
        if answer.status_code == 409:
            # A kill lost the answer to a resolve that went through: the retry is refused.
            await self._dispute_resolved(invoice, dispute_id, until)
        elif answer.status_code != 200:
            raise RuntimeError(f"resolve answered {answer.status_code}: {answer.text[:200]}")
        if accepted:
            # Paystack made the dispute's refund: it goes through as any refund does.
            listed = await patiently(
                lambda: self.paystack.get("/refund", params={"transaction": str(transaction_id)}),
                until,
            )
            for refund in listed.json()["data"]:
                if refund.get("dispute") == dispute_id and refund["status"] == "pending":
                    await self._settle_paystack(refund["id"], "processed", until)

    # --- after chaos ----------------------------------------------------------------

    async def judge(self, until: float) -> Judged:
        """Waits until payrecon shows every refund and dispute as the sandbox has them, or
        the time is up; then counts what differs."""
        judged = Judged()
        while True:
            judged = await self._compare()
            if not (judged.refunds_differing or judged.disputes_differing):
                break
            if time.monotonic() >= until:
                break
            await asyncio.sleep(2)
        return judged

    async def _compare(self) -> Judged:
        judged = Judged()
        for story in self.stories:
            invoice_id = story.invoice.invoice_id
            assert invoice_id is not None
            shown = (await self.api.get(f"/invoices/{invoice_id}")).json()
            ours = (
                await self.api.get(f"/invoices/{invoice_id}/refunds", params={"limit": 200})
            ).json()
            theirs = (
                await self.paystack.get(
                    "/refund", params={"transaction": str(shown["paystack_transaction_id"])}
                )
            ).json()["data"]
            judged.refunds_seen += len(theirs)
            processed = sum(r["amount"] for r in theirs if r["status"] == "processed")
            held = sum(r["amount"] for r in ours["items"] if r["status"] != "failed")
            if processed > (shown["amount_paid"] or 0) or held > (shown["amount_paid"] or 0):
                judged.over_refunded.append(invoice_id)
            notes = Counter(refund_id_in(r.get("merchant_note")) for r in theirs)
            judged.made_twice += [rf for rf, n in notes.items() if rf and n > 1]
            by_paystack = {r["paystack_refund_id"]: r for r in ours["items"]}
            for refund in theirs:
                mine = by_paystack.get(refund["id"])
                status = refund["status"].replace("-", "_")
                if mine is None or (mine["status"], mine["amount"]) != (status, refund["amount"]):
                    judged.refunds_differing.append(f"{invoice_id}: refund {refund['id']}")
            disputes = (
                await self.paystack.get(
                    "/dispute", params={"transaction": str(shown["paystack_transaction_id"])}
                )
            ).json()["data"]
            judged.disputes_seen += len(disputes)
            mine_disputes = {d["id"]: d for d in shown["disputes"]}
            for dispute in disputes:
                mine = mine_disputes.get(dispute["id"])
                status = dispute["status"].replace("-", "_")
                if mine is None or mine["status"] != status:
                    judged.disputes_differing.append(f"{invoice_id}: dispute {dispute['id']}")
            # The invoice's status follows what Paystack processed.
            expected = (
                "refunded"
                if processed and processed >= (shown["amount_paid"] or 0)
                else "partially_refunded"
                if processed
                else "paid"
            )
            judged.expected_status[invoice_id] = expected
            if shown["status"] != expected:
                judged.refunds_differing.append(
                    f"{invoice_id}: {shown['status']}, Paystack's refunds say {expected}"
                )
        return judged


def rows(
    money: MoneyAfterPayment, judged: Judged, faults: dict[str, int]
) -> tuple[list[tuple[str, str]], bool]:
    done = Counter(story.plan for story in money.stories if story.done)
    failed = [story for story in money.stories if not story.done]
    made = [
        ("money after payment", ", ".join(f"{plan} {done.get(plan, 0)}" for plan in PLANS)),
        (
            "refunds asked while the workflow was behind",
            f"{money.caught_up} (refused as pending, then made once it caught up)",
        ),
        (
            "refund answers lost at Paystack",
            f"{faults.get('refund_after_commit', 0)} (the refund made, its answer lost)",
        ),
        ("over-refunds", str(len(judged.over_refunded))),
        ("refunds made twice at Paystack", str(len(judged.made_twice))),
        (
            "refunds not as Paystack has them",
            f"{len(judged.refunds_differing)} (of {judged.refunds_seen})",
        ),
        (
            "disputes not as Paystack has them",
            f"{len(judged.disputes_differing)} (of {judged.disputes_seen})",
        ),
    ]
    for example in (judged.over_refunded + judged.made_twice + judged.refunds_differing)[:5]:
        made.append(("  e.g.", example))
    for example in judged.disputes_differing[:3]:
        made.append(("  e.g.", example))
    for story in failed[:5]:
        made.append(
            (f"  e.g. {story.plan} not played", f"{story.invoice.invoice_id} {story.notes}")
        )
    ok = (
        not failed
        and sum(done.values()) == len(PLANS) * money.per_plan
        and not judged.over_refunded
        and not judged.made_twice
        and not judged.refunds_differing
        and not judged.disputes_differing
    )
    return made, ok


async def judge(
    money: MoneyAfterPayment, progress: Progress, until: float
) -> tuple[list[tuple[str, str]], bool, Judged]:
    with progress.phase("money after payment: refunds and disputes against Paystack's"):
        judged = await money.judge(until)
    stats = await money.controls.stats()
    made, ok = rows(money, judged, stats.get("faults", {}))
    return made, ok, judged
