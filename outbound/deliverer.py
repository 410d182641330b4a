"""The delivery loop: sends what the outbox holds (outbound/outbox.py), in every worker.

    events    each due delivery, signed (Standard Webhooks), to its endpoint: at once, then
              after 5 s, 5 m, 30 m, 2 h, 5 h, 10 h, 10 h… (jittered) until a 2xx, a 410
              (the endpoint is disabled), or 3 days; an endpoint whose every delivery has
              failed for 5 days is disabled too
    emails    each due customer email (receipt, invoice), retried on a backoff; a customer
              address the server refuses for good is not tried again

Rows are claimed with a lease (db/leases.py), so any number of workers share the work and
a worker that dies mid-attempt leaves its rows to another. A worker that records a change
wakes its own loop at once; the others find due rows at their next scan. A slow merchant
holds only its own endpoint's share of the attempts; a customer's receipt never waits for
a merchant.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import ssl
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import aiosmtplib
import httpx
import structlog
from sqlalchemy import Engine
from sqlmodel import Session, col

from config import CodecKey, Settings
from db import timeline
from db.engine import write_session
from db.leases import LeasedLoop, claim_due
from db.models import CustomerEmail, EventAttempt, EventDelivery, OutboundEvent, WebhookEndpoint
from db.projection import load_snapshot
from db.timeline import TimelineKind
from domain.events import EmailKind, EventType
from outbound.mail import Mailer, SmtpOptions, compose, message_id_for
from outbound.outbox import PENDING, receives
from outbound.secrets import unseal
from outbound.signing import signed_headers
from outbound.urls import UnsafeDestination, public_destination

log = structlog.get_logger(__name__)

GONE = 410
PERMANENT_SMTP_FAILURE = 500
# What of a merchant's answer is kept: enough to debug, never a page of HTML.
ERROR_CHARS = 300
JITTER = 0.2
# Past an attempt's own timeout: the time to record its answer before the lease runs out.
LEASE_MARGIN = timedelta(seconds=30)
EMAIL_TIMEOUT = timedelta(seconds=60)
EMAIL_FIRST_RETRY = 5.0
EMAIL_MAX_RETRY = 3600.0


class DeliveryOutcome(StrEnum):
    DELIVERED = "delivered"
    # Failed; tried again at the delivery's next due time.
    FAILED = "failed"
    # Failed, and it was the last attempt.
    GAVE_UP = "gave_up"
    # Not sent, or never again: the endpoint answered 410, failed too long, or is gone.
    ENDPOINT_DISABLED = "endpoint_disabled"


class EmailStatus(StrEnum):
    PENDING = PENDING
    SENT = "sent"
    # Refused for good, or not taken within the retry period.
    FAILED = "failed"
    # No SMTP server is configured (SMTP_URL): nothing is sent, now or later.
    NOT_SENT = "not_sent"


@dataclass(frozen=True)
class DeliveryPolicy:
    """How deliveries are retried: the settings' values (config.py)."""

    retry_schedule: Sequence[float]
    retry_for: float
    attempt_timeout: float
    disable_after: float

    @classmethod
    def of(cls, settings: Settings) -> DeliveryPolicy:
        return cls(
            retry_schedule=tuple(settings.payrecon_event_retry_schedule),
            retry_for=settings.payrecon_event_retry_for_seconds,
            attempt_timeout=settings.payrecon_event_timeout_seconds,
            disable_after=settings.payrecon_endpoint_disable_after_seconds,
        )

    def backoff(self, attempts: int, draw: Callable[[float, float], float]) -> timedelta:
        """The wait after the `attempts`-th attempt fails: the schedule's, ±20 %."""
        seconds = self.retry_schedule[min(attempts - 1, len(self.retry_schedule) - 1)]
        return timedelta(seconds=seconds * draw(1 - JITTER, 1 + JITTER))


@dataclass
class _Answer:
    status_code: int | None
    error: str | None
    latency_ms: float


@dataclass
class _Claimed:
    delivery: EventDelivery
    event: OutboundEvent
    endpoint: WebhookEndpoint | None


def _check_peer(response: httpx.Response, address: str | None) -> None:
    """The connection reached the vetted address, or the attempt ends (a proxy from the
    environment, say, would have chosen its own)."""
    if address is None:
        return
    stream = response.extensions.get("network_stream")
    peer = stream.get_extra_info("server_addr") if stream is not None else None
    if peer is None or str(peer[0]).split("%", 1)[0] != address:
        raise UnsafeDestination("the connection did not reach the address that was vetted")


def _is_tls(failure: httpx.HTTPError) -> bool:
    cause: BaseException | None = failure
    while cause is not None:
        if isinstance(cause, ssl.SSLError):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def make_mailer(settings: Settings) -> Mailer | None:
    """The worker's mailer; None when SMTP_URL is unset (no emails are sent)."""
    if settings.smtp_url is None:
        return None
    return Mailer(SmtpOptions.parse(settings.smtp_url.get_secret_value()))


class Deliverer(LeasedLoop):
    """One worker's delivery loop. `start` it beside the worker, `wake` it after a commit
    that owes something, `stop` it last."""

    def __init__(
        self,
        engine: Engine,
        http: httpx.AsyncClient,
        settings: Settings,
        mailer: Mailer | None,
    ) -> None:
        super().__init__(
            settings.payrecon_delivery_scan_seconds, "delivery-loop", "delivery.scan_failed"
        )
        self._engine = engine
        self._http = http
        self._policy = DeliveryPolicy.of(settings)
        self._codec_keys: list[CodecKey] = list(settings.codec_keys)
        self._development_mode = settings.payrecon_development_mode
        self._mailer = mailer
        self._operators = settings.operator_callers
        self._email_from = settings.payrecon_email_from
        self._concurrency = settings.payrecon_delivery_concurrency
        self._per_endpoint = settings.payrecon_delivery_concurrency_per_endpoint
        self._lease = timedelta(seconds=self._policy.attempt_timeout) + LEASE_MARGIN
        self._endpoint_slots: defaultdict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(self._per_endpoint)
        )
        # Jitter, not secrets.
        self._random = random.Random()  # noqa: S311

    async def scan_once(self) -> int:
        """Claims what is due, as far as free slots allow, and starts each; how many."""
        now = datetime.now(UTC)
        free = self._concurrency - self.busy
        deliveries = await asyncio.to_thread(self._claim_deliveries, now, free)
        for claimed in deliveries:
            self.spawn(self._deliver(claimed), f"deliver-{claimed.delivery.id}")
        free = self._concurrency - self.busy
        emails = await asyncio.to_thread(self._claim_emails, now, free)
        for email in emails:
            self.spawn(self._send_email(email), f"email-{email.id}")
        return len(deliveries) + len(emails)

    # --- events to endpoints -------------------------------------------------------------

    def _claim_deliveries(self, now: datetime, limit: int) -> list[_Claimed]:
        ids = claim_due(
            self._engine,
            EventDelivery,
            due=col(EventDelivery.due_at),
            where=col(EventDelivery.status) == PENDING,
            now=now,
            lease=self._lease,
            limit=limit,
        )
        claimed = []
        with Session(self._engine) as session:
            for delivery_id in ids:
                delivery = session.get(EventDelivery, delivery_id)
                assert delivery is not None
                event = session.get(OutboundEvent, delivery.event_id)
                assert event is not None, "an event's deliveries are written with it"
                endpoint = session.get(WebhookEndpoint, delivery.endpoint_id)
                claimed.append(_Claimed(delivery, event, endpoint))
        return claimed

    async def _deliver(self, claimed: _Claimed) -> None:
        delivery, event, endpoint = claimed.delivery, claimed.event, claimed.endpoint
        bound = log.bind(
            event_id=event.id,
            endpoint_id=delivery.endpoint_id,
            attempt=delivery.attempts + 1,
            invoice_id=event.invoice_id,
        )
        try:
            # An endpoint off, gone, or whose caller is no operator now (for an operator's
            # event) is sent nothing.
            takes = endpoint is not None and receives(
                endpoint, EventType(event.type), self._operators
            )
            if endpoint is None or not endpoint.enabled or not takes:
                await asyncio.to_thread(self._end_for_disabled, delivery)
                bound.info("event.endpoint_gone")
                return
            async with self._endpoint_slots[endpoint.id]:
                answer = await self._post(endpoint, event)
            outcome = await asyncio.to_thread(self._record_attempt, delivery, event, answer)
            bound.info(
                "event.attempted",
                event_type=event.type,
                outcome=outcome.value,
                status_code=answer.status_code,
                error=answer.error,
                latency_ms=round(answer.latency_ms, 1),
            )
        except Exception:
            # Its lease runs out, and a scan takes it up again.
            bound.exception("event.attempt_failed")

    async def _post(self, endpoint: WebhookEndpoint, event: OutboundEvent) -> _Answer:
        """One attempt. What is kept of a failure is its class alone (`timeout`,
        `connection_failed`, `tls_error`, `http_<status>`, `unsafe_destination: <why>`):
        nothing of what the far side said, which could map a network inside."""
        started = time.perf_counter()
        status_code: int | None = None
        error: str | None = None
        try:
            destination = await public_destination(
                endpoint.url, development_mode=self._development_mode
            )
            now = datetime.now(UTC)
            headers = signed_headers(event.id, event.payload, self._secrets(endpoint, now), now)
            # Nothing of the answer but its status is read: never a compressed body.
            headers["Accept-Encoding"] = "identity"
            options = destination.request_options()
            headers.update(options.get("headers", {}))
            # Redirects are not followed: a merchant's URL must not lead us to our own network.
            async with self._http.stream(
                "POST",
                destination.url,
                content=event.payload,
                headers=headers,
                extensions=options.get("extensions"),
                timeout=self._policy.attempt_timeout,
                follow_redirects=False,
            ) as response:
                _check_peer(response, destination.address)
                status_code = response.status_code
                if not response.is_success:
                    error = f"http_{status_code}"
        except UnsafeDestination as unsafe:
            error = f"unsafe_destination: {unsafe}"[:ERROR_CHARS]
        except httpx.TimeoutException:
            error = "timeout"
        except httpx.HTTPError as failure:
            error = "tls_error" if _is_tls(failure) else "connection_failed"
        return _Answer(status_code, error, (time.perf_counter() - started) * 1000)

    def _secrets(self, endpoint: WebhookEndpoint, now: datetime) -> list[str]:
        secrets = [unseal(self._codec_keys, endpoint.secret)]
        expires = endpoint.previous_secret_expires_at
        if endpoint.previous_secret is not None and expires is not None and now < expires:
            secrets.append(unseal(self._codec_keys, endpoint.previous_secret))
        return secrets

    def _end_for_disabled(self, delivery: EventDelivery) -> None:
        with write_session(self._engine) as session:
            row = session.get(EventDelivery, delivery.id)
            if row is not None and row.status == PENDING:
                row.status = DeliveryOutcome.ENDPOINT_DISABLED.value
                row.due_at = None
                row.updated_at = datetime.now(UTC)
                session.add(row)

    def _record_attempt(
        self, delivery: EventDelivery, event: OutboundEvent, answer: _Answer
    ) -> DeliveryOutcome:
        """The attempt, what it means for the delivery and the endpoint, and the invoice's
        timeline (a merchant's event only: operator events are on no merchant's): one
        transaction."""
        now = datetime.now(UTC)
        attempt = delivery.attempts + 1
        next_at: datetime | None = now + self._policy.backoff(attempt, self._random.uniform)
        give_up_at = delivery.created_at + timedelta(seconds=self._policy.retry_for)
        if next_at is not None and next_at >= give_up_at:
            next_at = None
        with write_session(self._engine) as session:
            endpoint = session.get(WebhookEndpoint, delivery.endpoint_id, with_for_update=True)
            outcome = _outcome_of(answer, last=next_at is None)
            if endpoint is not None:
                outcome = _apply_to_endpoint(endpoint, outcome, answer, self._policy, now)
                session.add(endpoint)
            row = session.get(EventDelivery, delivery.id, with_for_update=True)
            assert row is not None
            row.attempts = attempt
            row.updated_at = now
            row.status = PENDING if outcome is DeliveryOutcome.FAILED else outcome.value
            row.due_at = next_at if outcome is DeliveryOutcome.FAILED else None
            session.add(row)
            session.add(
                EventAttempt(
                    event_id=event.id,
                    endpoint_id=delivery.endpoint_id,
                    attempt=attempt,
                    attempted_at=now,
                    outcome=outcome.value,
                    status_code=answer.status_code,
                    latency_ms=answer.latency_ms,
                    error=answer.error,
                    next_attempt_at=row.due_at,
                )
            )
            if event.invoice_id is not None and not EventType(event.type).for_operators_only:
                timeline.add(
                    session,
                    event.invoice_id,
                    TimelineKind.EVENT_DELIVERY,
                    now,
                    event_id=event.id,
                    type=event.type,
                    endpoint_id=delivery.endpoint_id,
                    attempt=attempt,
                    outcome=outcome.value,
                    status_code=answer.status_code,
                )
        return outcome

    # --- emails to customers -------------------------------------------------------------

    def _claim_emails(self, now: datetime, limit: int) -> list[CustomerEmail]:
        ids = claim_due(
            self._engine,
            CustomerEmail,
            due=col(CustomerEmail.due_at),
            where=col(CustomerEmail.status) == EmailStatus.PENDING.value,
            now=now,
            lease=EMAIL_TIMEOUT + LEASE_MARGIN,
            limit=limit,
        )
        with Session(self._engine) as session:
            rows = [session.get(CustomerEmail, email_id) for email_id in ids]
        return [row for row in rows if row is not None]

    async def _send_email(self, email: CustomerEmail) -> None:
        bound = log.bind(invoice_id=email.invoice_id, kind=email.kind, attempt=email.attempts + 1)
        try:
            if self._mailer is None:
                await asyncio.to_thread(self._end_email, email, EmailStatus.NOT_SENT, None)
                bound.info("email.not_configured")
                return
            invoice = await asyncio.to_thread(load_snapshot, self._engine, email.invoice_id)
            assert invoice is not None, "an email is owed by a recorded change"
            kind = EmailKind(email.kind)
            message = compose(invoice, kind, self._email_from)
            try:
                async with asyncio.timeout(EMAIL_TIMEOUT.total_seconds()):
                    await self._mailer.send(message)
            except aiosmtplib.SMTPRecipientsRefused as error:
                codes = [refusal.code for refusal in error.recipients]
                if codes and all(code >= PERMANENT_SMTP_FAILURE for code in codes):
                    # Not the address itself: only the codes go on the record.
                    refused = f"the customer's address was refused ({', '.join(map(str, codes))})"
                    await asyncio.to_thread(self._end_email, email, EmailStatus.FAILED, refused)
                    bound.warning("email.refused", codes=codes)
                    return
                raise
            message_id = message_id_for(email.invoice_id, kind, self._email_from)
            await asyncio.to_thread(self._sent, email, message_id)
            bound.info("email.sent", message_id=message_id)
        except Exception as error:
            bound.warning("email.failed", error=f"{type(error).__name__}: {error}"[:ERROR_CHARS])
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self._email_later, email, type(error).__name__)

    def _sent(self, email: CustomerEmail, message_id: str) -> None:
        """The email and its timeline entry, in one transaction."""
        now = datetime.now(UTC)
        with write_session(self._engine) as session:
            row = session.get(CustomerEmail, email.id, with_for_update=True)
            assert row is not None
            row.status = EmailStatus.SENT.value
            row.message_id = message_id
            row.sent_at = now
            row.attempts += 1
            row.due_at = None
            session.add(row)
            timeline.add(
                session,
                email.invoice_id,
                TimelineKind.EMAIL_SENT,
                now,
                kind=email.kind,
                message_id=message_id,
            )

    def _end_email(self, email: CustomerEmail, status: EmailStatus, error: str | None) -> None:
        with write_session(self._engine) as session:
            row = session.get(CustomerEmail, email.id, with_for_update=True)
            assert row is not None
            row.status = status.value
            row.error = error
            row.due_at = None
            session.add(row)

    def _email_later(self, email: CustomerEmail, error: str) -> None:
        """Again on a doubling backoff, 5 s to an hour, for as long as events are retried."""
        now = datetime.now(UTC)
        attempts = email.attempts + 1
        wait = min(EMAIL_FIRST_RETRY * 2 ** (attempts - 1), EMAIL_MAX_RETRY)
        created = email.created_at or now
        with write_session(self._engine) as session:
            row = session.get(CustomerEmail, email.id, with_for_update=True)
            assert row is not None
            row.attempts = attempts
            row.error = error
            if now - created >= timedelta(seconds=self._policy.retry_for):
                row.status, row.due_at = EmailStatus.FAILED.value, None
            else:
                row.due_at = now + timedelta(seconds=wait)
            session.add(row)


def _outcome_of(answer: _Answer, *, last: bool) -> DeliveryOutcome:
    code = answer.status_code
    if code is not None and 200 <= code < 300:
        return DeliveryOutcome.DELIVERED
    if code == GONE:
        return DeliveryOutcome.ENDPOINT_DISABLED
    return DeliveryOutcome.GAVE_UP if last else DeliveryOutcome.FAILED


def _apply_to_endpoint(
    endpoint: WebhookEndpoint,
    outcome: DeliveryOutcome,
    answer: _Answer,
    policy: DeliveryPolicy,
    now: datetime,
) -> DeliveryOutcome:
    """Keeps the endpoint's failing streak; disables it on 410 or a streak too long."""
    if outcome is DeliveryOutcome.DELIVERED:
        endpoint.failing_since = None
        return outcome
    reason: str | None = None
    if outcome is DeliveryOutcome.ENDPOINT_DISABLED:
        reason = "answered 410 Gone"
    elif endpoint.failing_since is None:
        endpoint.failing_since = now
    elif now - endpoint.failing_since >= timedelta(seconds=policy.disable_after):
        reason = f"every delivery failed since {endpoint.failing_since.isoformat()}"
    if reason is None:
        return outcome
    endpoint.enabled = False
    endpoint.disabled_reason = reason
    endpoint.updated_at = now
    log.warning(
        "webhook_endpoint.disabled",
        endpoint_id=endpoint.id,
        caller=endpoint.caller,
        reason=reason,
        status_code=answer.status_code,
    )
    return DeliveryOutcome.ENDPOINT_DISABLED
