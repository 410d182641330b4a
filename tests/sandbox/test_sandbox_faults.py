"""Fault injection in the Paystack sandbox, over real HTTP (see tests/sandbox/conftest.py).

Timings use small windows: retries run with time_factor 0.001 (3 minutes -> 0.18 s).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsError

from paystack.signature import SIGNATURE_HEADER, is_valid_signature
from sandbox.app import create_app
from sandbox.context import Sandbox
from sandbox.fault_config import FaultConfig
from sandbox.faults import FAULT_COUNTERS, Faults
from sandbox.retry_schedule import HOUR, retry_offsets
from sandbox.settings import SandboxSettings
from tests.sandbox.support import (
    SECRET,
    Receiver,
    deliveries,
    initialize,
    pay,
    sandbox_settings,
    serve,
    verify,
)

FAST_RETRY = {"enabled": True, "time_factor": 0.001}


def set_faults(http: httpx.Client, **changes: Any) -> dict[str, Any]:
    response = http.post("/_sandbox/faults", json=changes)
    assert response.status_code == 200, response.text
    config: dict[str, Any] = response.json()
    return config


def fault_stats(http: httpx.Client) -> dict[str, int]:
    counters: dict[str, int] = http.get("/_sandbox/stats").json()["faults"]
    return counters


def paid(paystack: httpx.Client, http: httpx.Client, reference: str) -> None:
    initialize(paystack, reference=reference)
    assert pay(http, reference).status_code == 200


def wait_until_idle(http: httpx.Client, timeout: float = 5.0) -> None:
    """Until no delivery is being sent, waiting, or due for a retry."""
    deadline = time.monotonic() + timeout
    while http.get("/_sandbox/stats").json()["webhooks_in_flight"]:
        assert time.monotonic() < deadline, "deliveries still in flight"
        time.sleep(0.02)


@pytest.fixture
def impatient(sandbox_url: str) -> Iterator[httpx.Client]:
    """A client with the key that gives up after 0.2 s."""
    headers = {"Authorization": f"Bearer {SECRET}"}
    with httpx.Client(base_url=sandbox_url, headers=headers, timeout=0.2) as client:
        yield client


# Configuration


def test_faults_are_off_by_default_and_partial_updates_merge(http: httpx.Client) -> None:
    defaults = http.get("/_sandbox/faults").json()
    assert defaults == FaultConfig().model_dump(mode="json")
    assert defaults["seed"] is None
    assert defaults["webhooks"]["drop"] == 0
    assert defaults["webhooks"]["retry"] == {"enabled": False, "time_factor": 1.0, "mode": "live"}
    assert defaults["api"]["initialize"]["error_statuses"] == [500, 502, 503, 429]
    assert defaults["api"]["initialize"]["after_commit"] == 0
    assert "after_commit" not in defaults["api"]["verify"]

    set_faults(http, webhooks={"drop": 0.25, "delay_ms": [10, 20]})
    merged = set_faults(
        http, seed=7, webhooks={"duplicate": {"count": 2}}, api={"verify": {"error_rate": 1}}
    )

    assert merged["seed"] == 7
    assert merged["webhooks"]["drop"] == 0.25
    assert merged["webhooks"]["delay_ms"] == [10, 20]
    assert merged["webhooks"]["duplicate"] == {"count": 2}
    assert merged["api"]["verify"]["error_rate"] == 1
    assert merged["api"]["initialize"]["error_rate"] == 0
    assert http.get("/_sandbox/faults").json() == merged


@pytest.mark.parametrize(
    "changes",
    [
        {"webhooks": {"drop": 1.5}},
        {"webhooks": {"duplicate": -0.1}},
        {"webhooks": {"reorder": True}},
        {"webhooks": {"bad_signature": {"count": -1}}},
        {"webhooks": {"drop": {"count": 1, "extra": 2}}},
        {"webhooks": {"dorp": 0.5}},
        {"webhooks": {"delay_ms": [500, 100]}},
        {"webhooks": {"retry": {"time_factor": 0}}},
        {"webhooks": {"retry": {"mode": "sometimes"}}},
        {"api": {"initialize": {"error_statuses": [404]}}},
        {"api": {"initialize": {"error_statuses": []}}},
        {"api": {"verify": {"after_commit": 0.5}}},
        {"api": {"verify": {"timeout_seconds": 0}}},
        {"seed": "abc"},
    ],
)
def test_invalid_fault_config_is_422_and_changes_nothing(
    http: httpx.Client, changes: dict[str, Any]
) -> None:
    before = set_faults(http, webhooks={"drop": 0.5})

    response = http.post("/_sandbox/faults", json=changes)

    assert response.status_code == 422, response.text
    assert response.json()["detail"]
    assert http.get("/_sandbox/faults").json() == before


def test_a_body_that_is_not_an_object_is_422(http: httpx.Client) -> None:
    assert http.post("/_sandbox/faults", json=[1, 2]).status_code == 422
    assert http.post("/_sandbox/faults", json={"webhooks": 0.5}).status_code == 422


def test_delete_turns_every_fault_off_and_keeps_counters(
    paystack: httpx.Client, http: httpx.Client
) -> None:
    set_faults(http, seed=1, api={"verify": {"error_rate": 1, "error_statuses": [500]}})
    assert paystack.get("/transaction/verify/any").status_code == 500

    response = http.delete("/_sandbox/faults")

    assert response.status_code == 200
    assert response.json() == FaultConfig().model_dump(mode="json")
    assert http.get("/_sandbox/faults").json() == FaultConfig().model_dump(mode="json")
    assert paystack.get("/transaction/verify/any").status_code == 404
    assert fault_stats(http)["verify_error"] == 1


def test_faults_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "SANDBOX_FAULTS",
        '{"seed": 3, "webhooks": {"drop": {"count": 2}, "retry": {"enabled": true}},'
        ' "api": {"initialize": {"after_commit": 0.5}}}',
    )
    settings = SandboxSettings(_env_file=None)

    faults = settings.sandbox_faults
    assert faults.seed == 3
    assert faults.webhooks.retry.enabled is True
    assert faults.api.initialize.after_commit == 0.5
    # The live config is a copy: using up counts leaves the settings as they were.
    sandbox = Sandbox.from_settings(settings)
    assert sandbox.faults.plan_webhook().drop is True
    assert sandbox.faults.config.model_dump()["webhooks"]["drop"] == {"count": 1}
    assert settings.sandbox_faults.model_dump()["webhooks"]["drop"] == {"count": 2}

    monkeypatch.setenv("SANDBOX_FAULTS", '{"webhooks": {"drop": 2}}')
    with pytest.raises(ValidationError):
        SandboxSettings(_env_file=None)
    monkeypatch.setenv("SANDBOX_FAULTS", "not json")
    with pytest.raises(SettingsError):
        SandboxSettings(_env_file=None)


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


# API faults


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (429, "Too many requests"),
        (500, "Something went wrong"),
        (502, "Bad Gateway"),
        (503, "Service Unavailable"),
    ],
)
def test_verify_injected_errors_look_like_paystack(
    paystack: httpx.Client, http: httpx.Client, status: int, message: str
) -> None:
    initialize(paystack, reference="err-1")
    set_faults(http, api={"verify": {"error_rate": {"count": 1}, "error_statuses": [status]}})

    response = paystack.get("/transaction/verify/err-1")

    assert response.status_code == status
    assert response.json() == {"status": False, "message": message, "type": "api_error"}
    assert verify(paystack, "err-1")["reference"] == "err-1"
    assert fault_stats(http)["verify_error"] == 1


def test_initialize_error_before_commit_creates_nothing(
    paystack: httpx.Client, http: httpx.Client
) -> None:
    set_faults(http, api={"initialize": {"error_rate": {"count": 1}, "error_statuses": [503]}})
    body = {"email": "ada@example.com", "amount": 50_000, "reference": "before-1"}

    failed = paystack.post("/transaction/initialize", json=body)

    assert failed.status_code == 503
    assert http.get("/_sandbox/stats").json()["transactions"] == 0
    # The client's retry with the same reference is the first creation.
    assert paystack.post("/transaction/initialize", json=body).status_code == 200
    assert fault_stats(http)["initialize_error"] == 1
    assert fault_stats(http)["initialize_after_commit"] == 0


def test_initialize_error_after_commit_loses_the_answer(
    paystack: httpx.Client, http: httpx.Client
) -> None:
    set_faults(
        http,
        api={
            "initialize": {"error_rate": {"count": 1}, "error_statuses": [500], "after_commit": 1}
        },
    )
    body = {"email": "ada@example.com", "amount": 50_000, "reference": "after-1"}

    failed = paystack.post("/transaction/initialize", json=body)

    assert failed.status_code == 500
    assert verify(paystack, "after-1")["status"] == "abandoned"
    retried = paystack.post("/transaction/initialize", json=body)
    assert retried.status_code == 400
    assert retried.json()["message"] == "Duplicate Transaction Reference"
    assert retried.json()["code"] == "duplicate_reference"
    assert fault_stats(http)["initialize_error"] == 1
    assert fault_stats(http)["initialize_after_commit"] == 1


def test_faults_apply_only_after_the_key_check(http: httpx.Client) -> None:
    everything = {"error_rate": 1, "latency_ms": [0, 0]}
    set_faults(http, api={"initialize": everything, "verify": everything})

    wrong = {"Authorization": "Bearer sk_test_wrong"}
    assert http.get("/transaction/verify/x", headers=wrong).status_code == 401
    body = {"email": "ada@example.com", "amount": 50_000}
    assert http.post("/transaction/initialize", json=body, headers=wrong).status_code == 401
    assert set(fault_stats(http).values()) == {0}


def test_latency_slows_every_answer(paystack: httpx.Client, http: httpx.Client) -> None:
    latency = {"latency_ms": [200, 250]}
    set_faults(http, api={"initialize": latency, "verify": latency})

    started = time.monotonic()
    initialize(paystack, reference="lag-1")
    verify(paystack, "lag-1")
    elapsed = time.monotonic() - started

    assert 0.4 <= elapsed < 2
    assert fault_stats(http)["initialize_latency"] == 1
    assert fault_stats(http)["verify_latency"] == 1


def test_initialize_timeout_before_commit(
    impatient: httpx.Client, paystack: httpx.Client, http: httpx.Client
) -> None:
    set_faults(http, api={"initialize": {"timeout_rate": {"count": 1}, "timeout_seconds": 0.4}})

    with pytest.raises(httpx.TimeoutException):
        impatient.post(
            "/transaction/initialize",
            json={"email": "ada@example.com", "amount": 50_000, "reference": "to-1"},
        )

    time.sleep(0.5)  # past the sandbox's own timeout: still nothing was created
    assert paystack.get("/transaction/verify/to-1").status_code == 404
    assert fault_stats(http)["initialize_timeout"] == 1


def test_initialize_timeout_after_commit(
    impatient: httpx.Client, paystack: httpx.Client, http: httpx.Client
) -> None:
    set_faults(
        http,
        api={"initialize": {"timeout_rate": 1, "timeout_seconds": 0.4, "after_commit": 1}},
    )
    body = {"email": "ada@example.com", "amount": 50_000, "reference": "to-2"}

    with pytest.raises(httpx.TimeoutException):
        impatient.post("/transaction/initialize", json=body)

    assert verify(paystack, "to-2")["status"] == "abandoned"
    http.delete("/_sandbox/faults")
    assert (
        paystack.post("/transaction/initialize", json=body).json()["code"] == "duplicate_reference"
    )
    assert fault_stats(http)["initialize_timeout"] == 1
    assert fault_stats(http)["initialize_after_commit"] == 1


def test_verify_timeout_answers_504_late_to_a_patient_client(
    impatient: httpx.Client, paystack: httpx.Client, http: httpx.Client
) -> None:
    initialize(paystack, reference="to-3")
    set_faults(http, api={"verify": {"timeout_rate": {"count": 2}, "timeout_seconds": 0.3}})

    with pytest.raises(httpx.TimeoutException):
        impatient.get("/transaction/verify/to-3")
    started = time.monotonic()
    late = paystack.get("/transaction/verify/to-3")

    assert time.monotonic() - started >= 0.29
    assert late.status_code == 504
    assert late.json() == {"status": False, "message": "Gateway Timeout", "type": "api_error"}
    assert verify(paystack, "to-3")["reference"] == "to-3"
    assert fault_stats(http)["verify_timeout"] == 2


# Repeatability, counters, reset


def test_a_seed_repeats_the_same_faults(paystack: httpx.Client, http: httpx.Client) -> None:
    initialize(paystack, reference="seeded-1")

    def statuses(seed: int) -> list[int]:
        set_faults(http, seed=seed, api={"verify": {"error_rate": 0.5, "error_statuses": [500]}})
        return [paystack.get("/transaction/verify/seeded-1").status_code for _ in range(16)]

    first = statuses(42)
    assert set(first) == {200, 500}
    assert statuses(42) == first
    assert statuses(43) != first


def test_a_seed_repeats_webhook_plans() -> None:
    config = FaultConfig.model_validate(
        {
            "seed": 5,
            "webhooks": {
                "drop": 0.3,
                "duplicate": 0.3,
                "delay": 0.5,
                "reorder": 0.2,
                "bad_signature": 0.2,
            },
        }
    )

    def plans() -> list[Any]:
        faults = Faults(config.model_copy(deep=True))
        return [faults.plan_webhook() for _ in range(40)]

    first = plans()
    assert plans() == first
    assert any(p.drop for p in first) and any(p.extra_copies for p in first)
    assert any(p.delay_s for p in first) and not all(p.delay_s for p in first)


def test_stats_count_faults_by_kind_and_reset_clears_them(
    paystack: httpx.Client, http: httpx.Client, hooks: Receiver
) -> None:
    set_faults(
        http,
        webhooks={"drop": {"count": 1}, "duplicate": {"count": 1}, "duplicate_copies": 1},
        api={"verify": {"error_rate": {"count": 1}}},
    )
    paid(paystack, http, "stats-1")
    paid(paystack, http, "stats-2")
    paystack.get("/transaction/verify/stats-1")
    hooks.wait_for(2)

    counters = fault_stats(http)
    assert set(counters) == set(FAULT_COUNTERS)
    assert {k: v for k, v in counters.items() if v} == {
        "dropped": 1,
        "duplicated": 1,
        "verify_error": 1,
    }

    http.post("/_sandbox/reset").raise_for_status()
    assert set(fault_stats(http).values()) == {0}
    assert http.get("/_sandbox/faults").json()["webhooks"]["drop"] == 0


def test_retry_schedule_follows_paystack() -> None:
    live = retry_offsets("live")
    assert live[:5] == (180, 360, 540, 720, 720 + HOUR)
    assert all(later - earlier == HOUR for earlier, later in pairwise(live[4:]))
    assert live[-1] <= 72 * HOUR < live[-1] + HOUR
    assert len(live) == 4 + 71
    assert retry_offsets("test") == tuple(HOUR * n for n in range(1, 11))
    assert retry_offsets("live", 0.001)[0] == pytest.approx(0.18)


def test_faults_limited_to_references_spare_every_other_call(
    paystack: httpx.Client, http: httpx.Client
) -> None:
    paid(paystack, http, "spared-1")
    paid(paystack, http, "targeted-1")
    set_faults(
        http,
        api={
            "verify": {
                "error_rate": {"count": 1},
                "error_statuses": [503],
                "only_references": ["targeted-1"],
            }
        },
    )

    assert paystack.get("/transaction/verify/spared-1").status_code == 200
    assert paystack.get("/transaction/verify/targeted-1").status_code == 503
    assert paystack.get("/transaction/verify/targeted-1").status_code == 200
    assert fault_stats(http)["verify_error"] == 1
