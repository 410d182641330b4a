"""Fault injection in the sandbox: its configuration (by control route and environment),
repeatable seeds, counters and reset.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsError

from sandbox.context import Sandbox
from sandbox.fault_config import FaultConfig
from sandbox.faults import FAULT_COUNTERS, Faults
from sandbox.retry_schedule import HOUR, retry_offsets
from sandbox.settings import SandboxSettings
from tests.sandbox.support import (
    Receiver,
    fault_stats,
    initialize,
    paid,
    set_faults,
)

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
