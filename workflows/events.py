"""Telling others about one invoice event: the merchant's endpoints, each until it answers,
and the customer, by email. One workflow per event, started by the invoice's workflow at the
transition (workflows/invoice.py), which never waits for it: `paid` is recorded first, and
a slow or broken endpoint delays only its own deliveries.

    store      the event, once, with the endpoints it goes to (its caller's, by type)
    deliver    to each endpoint: at once, then after 5 s, 5 m, 30 m, 2 h, 5 h, 10 h, 10 h…
               (jittered), until a 2xx, a 410 (the endpoint is disabled), or 3 days
    email      the customer's receipt or invoice, when the event sends one

A redelivery (POST /events/{id}/redeliver) is a run for a stored event: its current
endpoints, the same id and body, no email.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    # Imported by name so the sandbox can resolve InvoiceEvent's field types through them.
    import domain.disputes
    import domain.invoice
    import domain.refunds  # noqa: F401
    from activities.email import CustomerEmailInput, EmailActivities
    from activities.events import DeliveryAttempt, DeliveryOutcome, EventActivities
    from domain.events import EmailKind, InvoiceEvent
    from workflows.policies import LOCAL_ACTIVITY_FAILURES, MIN_TIMER, RECORD_RETRY, RECORD_TIMEOUT
    from workflows.types import EventPolicy

# Each attempt's answer is recorded by the attempt itself; a database hiccup is retried,
# then counted as a failed attempt.
ATTEMPT_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=3)
# Past the HTTP timeout: the time to record the answer.
ATTEMPT_OVERHEAD = timedelta(seconds=20)
EMAIL_TIMEOUT = timedelta(seconds=30)
EMAIL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5), maximum_interval=timedelta(hours=1)
)
JITTER = 0.2


@dataclass
class EventInput:
    event_id: str
    policy: EventPolicy
    # The transition's event; None for a redelivery of a stored one.
    event: InvoiceEvent | None = None


@dataclass
class EventReport:
    delivered: list[str] = field(default_factory=list)
    not_delivered: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)


def event_workflow_id(event_id: str) -> str:
    return f"event-{event_id}"


@workflow.defn
class EventWorkflow:
    @workflow.run
    async def run(self, input: EventInput) -> EventReport:
        endpoint_ids = await self._store(input)
        event = input.event
        # Every delivery and email at once: the customer's receipt never waits for a merchant.
        emails = [(event, kind) for kind in event.emails] if event is not None else []
        sending = asyncio.gather(*(self._email(told, kind, input.policy) for told, kind in emails))
        outcomes = await asyncio.gather(
            *(self._deliver(input, endpoint_id) for endpoint_id in endpoint_ids)
        )
        message_ids = await sending
        report = EventReport(emails=[message_id for message_id in message_ids if message_id])
        for endpoint_id, outcome in zip(endpoint_ids, outcomes, strict=True):
            done = outcome is DeliveryOutcome.DELIVERED
            (report.delivered if done else report.not_delivered).append(endpoint_id)
        return report

    async def _store(self, input: EventInput) -> list[str]:
        if input.event is None:
            return await workflow.execute_local_activity_method(
                EventActivities.redelivery_targets,
                input.event_id,
                start_to_close_timeout=RECORD_TIMEOUT,
                retry_policy=RECORD_RETRY,
                summary="the event's endpoints",
            )
        return await workflow.execute_local_activity_method(
            EventActivities.store_event,
            input.event,
            start_to_close_timeout=RECORD_TIMEOUT,
            retry_policy=RECORD_RETRY,
            summary=f"store {input.event.type.value}",
        )

    async def _deliver(self, input: EventInput, endpoint_id: str) -> DeliveryOutcome:
        policy = input.policy
        give_up_at = workflow.now() + timedelta(seconds=policy.retry_for)
        attempt = 1
        while True:
            next_at = workflow.now() + self._backoff(policy, attempt)
            try:
                outcome = await workflow.execute_local_activity_method(
                    EventActivities.deliver_event,
                    DeliveryAttempt(
                        event_id=input.event_id,
                        endpoint_id=endpoint_id,
                        attempt=attempt,
                        next_attempt_at=next_at if next_at < give_up_at else None,
                        timeout=policy.attempt_timeout,
                        disable_after=policy.disable_after,
                    ),
                    start_to_close_timeout=timedelta(seconds=policy.attempt_timeout)
                    + ATTEMPT_OVERHEAD,
                    retry_policy=ATTEMPT_RETRY,
                    summary=f"deliver to {endpoint_id}, attempt {attempt}",
                )
            except LOCAL_ACTIVITY_FAILURES as error:
                workflow.logger.warning("attempt %d to %s failed: %s", attempt, endpoint_id, error)
                outcome = DeliveryOutcome.FAILED
            if outcome is not DeliveryOutcome.FAILED or next_at >= give_up_at:
                return outcome
            await workflow.sleep(
                max(next_at - workflow.now(), MIN_TIMER), summary="next delivery attempt"
            )
            attempt += 1

    @staticmethod
    def _backoff(policy: EventPolicy, attempt: int) -> timedelta:
        """The wait after attempt `attempt` fails: the schedule's, ±20 %."""
        schedule = policy.retry_schedule
        seconds = schedule[min(attempt - 1, len(schedule) - 1)]
        return timedelta(seconds=seconds * workflow.random().uniform(1 - JITTER, 1 + JITTER))

    async def _email(self, event: InvoiceEvent, kind: EmailKind, policy: EventPolicy) -> str | None:
        try:
            return await workflow.execute_activity_method(
                EmailActivities.send_customer_email,
                CustomerEmailInput(invoice=event.invoice, kind=kind),
                start_to_close_timeout=EMAIL_TIMEOUT,
                schedule_to_close_timeout=timedelta(seconds=policy.retry_for),
                retry_policy=EMAIL_RETRY,
                summary=f"email the customer's {kind.value}",
            )
        except ActivityError as error:
            workflow.logger.error("the customer's %s was not sent: %s", kind.value, error.cause)
            return None
