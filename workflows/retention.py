"""Stored webhook deliveries are kept for the audit log only so long: a Temporal schedule
runs this workflow daily, which deletes every relayed delivery received before the
retention period (PAYRECON_WEBHOOK_RETENTION_DAYS). Queued ones are kept until relayed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

RETENTION_SCHEDULE_ID = "payrecon-webhook-retention"


@dataclass
class RetentionInput:
    retention_days: int


@dataclass
class ExpiredDeliveries:
    received_before: datetime


@workflow.defn(name="WebhookRetention")
class WebhookRetentionWorkflow:
    @workflow.run
    async def run(self, retention: RetentionInput) -> int:
        cutoff = workflow.now() - timedelta(days=retention.retention_days)
        deleted: int = await workflow.execute_activity(
            "delete_expired_deliveries",
            ExpiredDeliveries(received_before=cutoff),
            result_type=int,
            start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=timedelta(minutes=1),
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=5)),
        )
        workflow.logger.info("webhook.retention_done", extra={"deleted": deleted})
        return deleted
