"""Webhook faults in the sandbox: drop, duplicate, delay, reorder, bad signatures, and
Paystack's retries on its schedule, scaled (time_factor 0.001: 3 minutes -> 0.18 s).
"""

from __future__ import annotations

import time
from itertools import pairwise
from typing import Any

import httpx

from paystack.signature import SIGNATURE_HEADER, is_valid_signature
from sandbox.app import create_app
from sandbox.fault_config import FaultConfig
from tests.sandbox.support import (
    FAST_RETRY,
    SECRET,
    Receiver,
    deliveries,
    fault_stats,
    initialize,
    paid,
    pay,
    sandbox_settings,
    serve,
    set_faults,
    wait_until_idle,
)

# Webhook faults


def test_drop_with_a_count_loses_the_next_delivery_only(
    paystack: httpx.Client, http: httpx.Client, hooks: Receiver
) -> None:
    set_faults(http, webhooks={"drop": {"count": 1}})

    paid(paystack, http, "drop-1")
    paid(paystack, http, "drop-2")

    hooks.wait_for(1)
    wait_until_idle(http)
    assert [r.reference for r in hooks.requests] == ["drop-2"]
    (lost,) = deliveries(http, "drop-1", 1)
    assert lost["dropped"] is True
    assert lost["delivered"] is False
    assert lost["status_code"] is None
    assert lost["attempt"] == 0
    assert http.get("/_sandbox/faults").json()["webhooks"]["drop"] == {"count": 0}
    stats = http.get("/_sandbox/stats").json()
    assert stats["faults"]["dropped"] == 1
    assert stats["webhooks_sent"] == 1


def test_duplicate_sends_extra_copies(
    paystack: httpx.Client, http: httpx.Client, hooks: Receiver
) -> None:
    set_faults(http, webhooks={"duplicate": {"count": 2}, "duplicate_copies": 3})

    paid(paystack, http, "dup-1")

    received = hooks.wait_for(4)
    assert len({r.body for r in received}) == 1
    assert all(r.signed_correctly for r in received)
    log = deliveries(http, "dup-1", 4)
    assert sorted(entry["duplicate"] for entry in log) == [False, True, True, True]
    assert len({entry["delivery_id"] for entry in log}) == 4
    assert all(entry["attempt"] == 1 and entry["delivered"] for entry in log)
    # One of the two counted chances is left.
    assert http.get("/_sandbox/faults").json()["webhooks"]["duplicate"] == {"count": 1}
    assert fault_stats(http)["duplicated"] == 3


def test_delay_waits_before_sending(
    paystack: httpx.Client, http: httpx.Client, hooks: Receiver
) -> None:
    set_faults(http, webhooks={"delay": 1, "delay_ms": [300, 400]})
    initialize(paystack, reference="slow-1")

    started = time.monotonic()
    pay(http, "slow-1")

    (hook,) = hooks.wait_for(1)
    assert hook.arrived_at - started >= 0.29
    (attempt,) = deliveries(http, "slow-1", 1)
    assert 300 <= attempt["delay_ms"] <= 400
    assert fault_stats(http)["delayed"] == 1


def test_reorder_sends_after_the_next_delivery(
    paystack: httpx.Client, http: httpx.Client, hooks: Receiver
) -> None:
    set_faults(http, webhooks={"reorder": {"count": 1}})

    paid(paystack, http, "first-1")
    paid(paystack, http, "second-1")

    received = hooks.wait_for(2)
    assert [r.reference for r in received] == ["second-1", "first-1"]
    assert deliveries(http, "first-1", 1)[0]["reordered"] is True
    assert deliveries(http, "second-1", 1)[0]["reordered"] is False
    assert fault_stats(http)["reordered"] == 1


def test_reorder_without_a_next_delivery_waits_for_the_hold_time(
    paystack: httpx.Client, http: httpx.Client, hooks: Receiver
) -> None:
    set_faults(http, webhooks={"reorder": 1, "reorder_hold_ms": 300})
    initialize(paystack, reference="alone-1")

    started = time.monotonic()
    pay(http, "alone-1")

    (hook,) = hooks.wait_for(1)
    assert hook.arrived_at - started >= 0.29


def test_bad_signature_is_rejected_and_the_retry_is_signed_correctly(
    paystack: httpx.Client, http: httpx.Client, hooks: Receiver
) -> None:
    hooks.reject_bad_signatures = True
    set_faults(http, webhooks={"bad_signature": {"count": 1}, "retry": FAST_RETRY})

    paid(paystack, http, "badsig-1")

    first, second = hooks.wait_for(2)
    assert not is_valid_signature(first.body, first.headers[SIGNATURE_HEADER], SECRET)
    assert len(first.headers[SIGNATURE_HEADER]) == 128  # still looks like an HMAC-SHA512
    assert is_valid_signature(second.body, second.headers[SIGNATURE_HEADER], SECRET)
    assert first.body == second.body
    log = deliveries(http, "badsig-1", 2)
    assert [(e["attempt"], e["bad_signature"], e["retry"], e["status_code"]) for e in log] == [
        (1, True, False, 401),
        (2, False, True, 200),
    ]
    assert log[0]["delivery_id"] == log[1]["delivery_id"]
    assert fault_stats(http)["bad_signature"] == 1
    assert fault_stats(http)["retried"] == 1


def test_retries_on_the_scaled_schedule_until_200(
    paystack: httpx.Client, http: httpx.Client, hooks: Receiver
) -> None:
    hooks.answers.extend([500, 500])
    set_faults(http, webhooks={"retry": FAST_RETRY})

    paid(paystack, http, "retry-1")

    received = hooks.wait_for(3)
    # 3 minutes x 0.001 between tries.
    gaps = [later.arrived_at - earlier.arrived_at for earlier, later in pairwise(received)]
    assert all(0.15 <= gap <= 1.0 for gap in gaps), gaps
    wait_until_idle(http)
    log = deliveries(http, "retry-1", 3)
    assert [(e["attempt"], e["retry"], e["status_code"]) for e in log] == [
        (1, False, 500),
        (2, True, 500),
        (3, True, 200),
    ]
    assert len(hooks.requests) == 3
    stats = http.get("/_sandbox/stats").json()
    assert stats["faults"]["retried"] == 2
    assert stats["faults"]["retry_exhausted"] == 0
    assert stats["webhooks_sent"] == 3


def test_retries_stop_at_the_horizon(
    paystack: httpx.Client, http: httpx.Client, hooks: Receiver
) -> None:
    # Test mode: hourly for 10 hours; 1 hour x 0.00002 = 72 ms.
    hooks.answers.extend([500] * 20)
    set_faults(http, webhooks={"retry": {"enabled": True, "time_factor": 0.00002, "mode": "test"}})

    paid(paystack, http, "horizon-1")

    hooks.wait_for(11)
    wait_until_idle(http)
    assert len(hooks.requests) == 11
    assert [e["attempt"] for e in deliveries(http, "horizon-1", 11)] == list(range(1, 12))
    assert fault_stats(http)["retried"] == 10
    assert fault_stats(http)["retry_exhausted"] == 1


def test_retries_stop_when_faults_are_turned_off(
    paystack: httpx.Client, http: httpx.Client, hooks: Receiver
) -> None:
    hooks.answers.extend([500] * 5)
    set_faults(http, webhooks={"retry": FAST_RETRY})

    paid(paystack, http, "stopped-1")
    hooks.wait_for(1)
    http.delete("/_sandbox/faults")

    wait_until_idle(http)
    assert len(hooks.requests) == 1


def test_no_retry_by_default(paystack: httpx.Client, http: httpx.Client, hooks: Receiver) -> None:
    hooks.answers.append(500)

    paid(paystack, http, "once-1")

    hooks.wait_for(1)
    wait_until_idle(http)
    assert len(hooks.requests) == 1
    assert deliveries(http, "once-1", 1)[0]["status_code"] == 500


def test_reset_cancels_waiting_retries(
    paystack: httpx.Client, http: httpx.Client, hooks: Receiver
) -> None:
    hooks.answers.append(500)
    # Unscaled: the next try would be 3 minutes away.
    set_faults(http, webhooks={"retry": {"enabled": True}})
    paid(paystack, http, "pending-1")
    hooks.wait_for(1)
    assert http.get("/_sandbox/stats").json()["webhooks_in_flight"] == 1

    http.post("/_sandbox/reset").raise_for_status()

    stats = http.get("/_sandbox/stats").json()
    assert stats["webhooks_in_flight"] == 0
    assert set(stats["faults"].values()) == {0}
    assert http.get("/_sandbox/faults").json() == FaultConfig().model_dump(mode="json")


def test_shutdown_does_not_wait_for_pending_retries(receiver: tuple[Receiver, str]) -> None:
    recorder, webhook_url = receiver
    recorder.answers.append(503)
    faults = FaultConfig.model_validate({"webhooks": {"retry": {"enabled": True}}})
    headers = {"Authorization": f"Bearer {SECRET}"}

    def make_app(port: int) -> Any:
        settings = sandbox_settings(port, sandbox_webhook_url=webhook_url, sandbox_faults=faults)
        return create_app(settings)

    with serve(make_app) as url, httpx.Client(base_url=url, headers=headers) as client:
        initialize(client, reference="shutdown-1")
        pay(client, "shutdown-1").raise_for_status()
        recorder.wait_for(1)
        assert client.get("/_sandbox/faults").json()["webhooks"]["retry"]["enabled"] is True
        assert client.get("/_sandbox/stats").json()["webhooks_in_flight"] == 1
        stopping = time.monotonic()

    assert time.monotonic() - stopping < 2
