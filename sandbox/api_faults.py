"""Injected latency, errors and timeouts on POST /transaction/initialize and GET verify.

An endpoint calls `before_work` once the key is checked and `after_work` once its
work is done (for initialize: the transaction is created). A fault planned
"after commit" strikes in `after_work`: the change is made, the answer is lost.

A timeout sleeps `timeout_seconds` and then answers late with a 504, as a
gateway in front of a stuck server would; the client's own timeout fires first.
The handler keeps running after the client gives up, so work that was under
way still completes.
"""

from __future__ import annotations

import asyncio

from sandbox.errors import PaystackError
from sandbox.faults import CallPlan, Faults

GATEWAY_TIMEOUT = 504
# Paystack documents no bodies for these; these read like its other error envelopes.
ERROR_MESSAGES: dict[int, str] = {
    429: "Too many requests",
    500: "Something went wrong",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
DEFAULT_ERROR_MESSAGE = "Something went wrong"


def injected_error(status_code: int) -> PaystackError:
    message = ERROR_MESSAGES.get(status_code, DEFAULT_ERROR_MESSAGE)
    return PaystackError(status_code, message, error_type="api_error")


async def before_work(faults: Faults, call: CallPlan) -> None:
    """Latency, then any fault planned to strike before the work is done."""
    if call.latency_s > 0:
        faults.count(f"{call.endpoint}_latency")
        await asyncio.sleep(call.latency_s)
    if call.faulty and not call.after_commit:
        await _strike(faults, call)


async def after_work(faults: Faults, call: CallPlan) -> None:
    """Any fault planned to strike after the work is done: the answer is lost."""
    if call.faulty and call.after_commit:
        faults.count(f"{call.endpoint}_after_commit")
        await _strike(faults, call)


async def _strike(faults: Faults, call: CallPlan) -> None:
    if call.timeout_s is not None:
        faults.count(f"{call.endpoint}_timeout")
        await asyncio.sleep(call.timeout_s)
        raise injected_error(GATEWAY_TIMEOUT)
    if call.error_status is not None:
        faults.count(f"{call.endpoint}_error")
        raise injected_error(call.error_status)
