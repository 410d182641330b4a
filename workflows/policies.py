"""How the invoice workflow calls out: timeouts, retry policies and limits. Plain values:
the workflow (workflows/invoice.py) imports them."""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import TimeoutError as TemporalTimeoutError

from domain.errors import ErrorType

# The API caller waits for the payment link, so creation gives up after a bounded time,
# within the API's own wait (PAYRECON_CREATE_TIMEOUT_SECONDS, 30 s): the workflow notices
# its deadline at its next workflow task, at most ~8 s late while a local activity runs.
INITIALIZE_DEADLINE = timedelta(seconds=20)
_NOT_RETRIED = [
    ErrorType.PAYSTACK_REJECTED,
    ErrorType.PAYSTACK_UNAUTHORIZED,
    ErrorType.DUPLICATE_REFERENCE,
]
# 0.5 + 1 + 2 + 4 + 4 + 4 s between seven attempts: about the deadline when Paystack
# refuses connections at once; the deadline's timer ends a slower outage.
INITIALIZE_ATTEMPTS = RetryPolicy(
    initial_interval=timedelta(milliseconds=500),
    maximum_interval=timedelta(seconds=4),
    maximum_attempts=7,
    non_retryable_error_types=_NOT_RETRIED,
)
INITIALIZE_CALL_TIMEOUT = timedelta(seconds=10)
PAYSTACK_CALL_TIMEOUT = timedelta(seconds=15)
# Verify retries until Paystack answers: an invoice never expires unverified.
VERIFY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=60),
    non_retryable_error_types=[ErrorType.PAYSTACK_REJECTED, ErrorType.PAYSTACK_UNAUTHORIZED],
)
# A payment notice's verify runs as a local activity: the payer is waiting, and it saves
# two trips through the server. If Paystack fails it twice (each call ends by the client's
# own timeout), the capped queue's verify takes over and retries until Paystack answers.
NOTICE_VERIFY_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=250),
    maximum_attempts=2,
    non_retryable_error_types=[ErrorType.PAYSTACK_REJECTED, ErrorType.PAYSTACK_UNAUTHORIZED],
)
# How a failed local activity reaches the workflow: wrapped in ActivityError, or bare, and
# when replayed from its marker a timeout arrives bare even if it came wrapped live.
LOCAL_ACTIVITY_FAILURES = (ActivityError, ApplicationError, TemporalTimeoutError)
RECORD_TIMEOUT = timedelta(seconds=30)
RECORD_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30))
# The invoice's record: one short transaction (SQLite's busy wait is 10 s), handed to the
# worker whose task decided it. If that worker dies holding it, the retry comes this soon:
# a create or a payment waits on it.
INVOICE_RECORD_TIMEOUT = timedelta(seconds=12)
INVOICE_RECORD_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10)
)
MIN_TIMER = timedelta(milliseconds=1)
# A verify-now this soon after Paystack's last answer is answered from it: a customer's
# browser refreshing the checkout return costs Paystack nothing more.
VERIFY_NOW_INTERVAL = timedelta(seconds=2)
# Paystack references tried when the first is already taken: `<id>`, `<id>.2`, … `<id>.10`.
# Each answer lost (Paystack slower than our timeout, its transaction made) takes one, and a
# taken reference's link can never be read back: `make chaos` saw three lost in a row.
MAX_PAYSTACK_REFERENCES = 10
# Payment notices that come faster than this are answered by one verify between them: a
# flood of distinct notices for one invoice costs Paystack one call per interval.
NOTICE_VERIFY_INTERVAL = timedelta(seconds=2)
# A refund's create, and each look at a transaction's refunds or a dispute, retry until
# Paystack answers (the create first looks for the refund, so a retry never makes two).
PAYSTACK_LOOK_RETRY = VERIFY_RETRY
# An operator's call (a refund's retry, a dispute's answer): the operator waits for it.
OPERATOR_CALL_ATTEMPTS = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_attempts=3,
    non_retryable_error_types=[ErrorType.PAYSTACK_REJECTED, ErrorType.PAYSTACK_UNAUTHORIZED],
)
