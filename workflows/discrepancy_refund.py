"""An operator's refund of a payment that is no invoice's to keep: an orphan payment, or an
invoice's second payment (POST /reconciliation/discrepancies/{id}/refund). One workflow per
discrepancy, ever, so a repeated request makes no second refund.

    vet        the database must show this refund asked for by an operator through the API,
               of this discrepancy's transaction and amount; otherwise the workflow fails
               and no money moves (it can be started by anyone who reaches Temporal)
    refund     Paystack refund of the whole transaction, payrecon's refund id in its
               merchant_note (looked for before every create: never two)
    follow     look at the transaction's refunds on a backoff of durable timers until it is
               final
    settle     processed: the discrepancy is resolved, with the operator's note; failed: it
               stays open, and its audit trail says so
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.paystack import CreateRefundInput, PaystackActivities
    from activities.reconciliation import (
        ReconciliationActivities,
        RefundOutcome,
        RefundRequestCheck,
    )
    from domain.refunds import REFUND_POLL_SCHEDULE, RefundStatus, refund_id_for_key
    from paystack.refunds import RefundRecord
    from workflows.policies import (
        PAYSTACK_CALL_TIMEOUT,
        PAYSTACK_LOOK_RETRY,
        RECORD_RETRY,
        RECORD_TIMEOUT,
    )

# Who asks for these refunds, in payrecon's refund ids: the operators, not one API caller.
OPERATORS_REFUND = "operators"
# After 0.1.0 (README, "Versions"): runs started before this change made no check.
VET_REQUEST = "vet-refund-request"


@dataclass
class DiscrepancyRefundInput:
    discrepancy_id: str
    transaction_id: int
    amount: int
    operator: str
    note: str
    paystack_task_queue: str | None = None
    poll_schedule: list[float] = field(default_factory=lambda: list(REFUND_POLL_SCHEDULE))


def discrepancy_refund_workflow_id(discrepancy_id: str) -> str:
    return f"refund-{discrepancy_id}"


@workflow.defn
class DiscrepancyRefundWorkflow:
    @workflow.run
    async def run(self, input: DiscrepancyRefundInput) -> str:
        refund_id = refund_id_for_key(OPERATORS_REFUND, input.discrepancy_id, "refund")
        if workflow.patched(VET_REQUEST):
            await workflow.execute_activity_method(
                ReconciliationActivities.vet_discrepancy_refund,
                RefundRequestCheck(
                    discrepancy_id=input.discrepancy_id,
                    transaction_id=input.transaction_id,
                    amount=input.amount,
                    operator=input.operator,
                    note=input.note,
                ),
                start_to_close_timeout=RECORD_TIMEOUT,
                retry_policy=RECORD_RETRY,
                summary="the operator's request, as the database holds it",
            )
        try:
            record: RefundRecord = await workflow.execute_activity_method(
                PaystackActivities.create_refund,
                CreateRefundInput(
                    refund_id=refund_id,
                    transaction_id=input.transaction_id,
                    amount=input.amount,
                    customer_note=input.note,
                ),
                task_queue=input.paystack_task_queue,
                start_to_close_timeout=PAYSTACK_CALL_TIMEOUT,
                retry_policy=PAYSTACK_LOOK_RETRY,
                summary=f"Paystack refund {refund_id}",
            )
        except ActivityError as error:
            return await self._settle(input, refund_id, None, RefundStatus.FAILED, error.cause)
        status = RefundStatus.from_paystack(record.status)
        looks = 0
        while not status.is_final:
            schedule = input.poll_schedule
            await workflow.sleep(
                timedelta(seconds=schedule[min(looks, len(schedule) - 1)]),
                summary="next refund check",
            )
            looks += 1
            records: list[RefundRecord] = await workflow.execute_activity_method(
                PaystackActivities.refunds_of_transaction,
                input.transaction_id,
                task_queue=input.paystack_task_queue,
                start_to_close_timeout=PAYSTACK_CALL_TIMEOUT,
                retry_policy=PAYSTACK_LOOK_RETRY,
                summary="Paystack refunds of the payment",
            )
            found = next((r for r in records if r.id == record.id), None)
            if found is not None:
                status = RefundStatus.from_paystack(found.status)
        return await self._settle(input, refund_id, record.id, status, None)

    async def _settle(
        self,
        input: DiscrepancyRefundInput,
        refund_id: str,
        paystack_refund_id: int | None,
        status: RefundStatus,
        failure: BaseException | None,
    ) -> str:
        outcome = RefundOutcome(
            discrepancy_id=input.discrepancy_id,
            refund_id=refund_id,
            paystack_refund_id=paystack_refund_id,
            status=status.value,
            amount=input.amount,
            operator=input.operator,
            note=input.note,
            failure=str(failure) if failure else None,
        )
        await workflow.execute_activity_method(
            ReconciliationActivities.settle_discrepancy_refund,
            outcome,
            start_to_close_timeout=RECORD_TIMEOUT,
            retry_policy=RECORD_RETRY,
            summary=f"refund {status.value}",
        )
        return status.value
