"""Faults of the sandbox's Paystack API: errors, latency and timeouts, before and after
the transaction is committed (as when Paystack's answer is lost).
"""

from __future__ import annotations

import time

import httpx
import pytest

from tests.sandbox.support import (
    fault_stats,
    initialize,
    set_faults,
    verify,
)

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
