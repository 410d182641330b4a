"""Every odd webhook gets the right answer and changes nothing it should not."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import httpx
import pytest

from paystack.signature import SIGNATURE_HEADER, sign
from tests.helpers import (
    INVOICE,
    answer_before_the_body_ends,
    charge_success,
    create_invoice,
    deliveries,
    delivery_count,
    eventually,
    pay,
    post_webhook,
    provider_calls,
    signals_in_history,
    signals_received,
    status_changes,
    verify_slow,
    wait_for_status,
    workflow_task_open,
)
from tests.stack import SECRET_KEY, Stack, another_api

PAYSTACK_ADDRESS = "52.31.139.75"


async def _unchanged(api: httpx.AsyncClient, stack: Stack, invoice_id: str) -> None:
    current = (await api.get(f"/invoices/{invoice_id}")).json()
    assert current["status"] == "pending"
    assert status_changes(stack, invoice_id) == ["pending"]


@pytest.mark.parametrize(
    "signature",
    [
        "",
        "sha512=abc",
        "UPPERCASE",
        "TRUNCATED",
        "0" * 128,
    ],
)
async def test_bad_signatures_are_401_and_change_nothing(
    stack: Stack, api: httpx.AsyncClient, signature: str
) -> None:
    invoice = await create_invoice(api, due_in_seconds=600)
    body = json.dumps(charge_success(invoice["id"])).encode()
    good = sign(body, SECRET_KEY)
    signature = {"UPPERCASE": good.upper(), "TRUNCATED": good[:64]}.get(signature, signature)
    before = delivery_count(stack)

    response = await post_webhook(stack, body, signature=signature)

    assert response.status_code == 401
    assert response.json() == {"detail": "invalid webhook signature"}
    assert delivery_count(stack) == before
    await _unchanged(api, stack, invoice["id"])


async def test_missing_signature_header_is_401(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.api_url) as client:
        response = await client.post(
            "/webhooks/paystack", json=charge_success("inv-000000000000000000000000")
        )
    assert response.status_code == 401


async def test_body_over_one_mebibyte_is_413(stack: Stack) -> None:
    before = delivery_count(stack)
    event = charge_success("inv-000000000000000000000000", padding="x" * (1024 * 1024))
    response = await post_webhook(stack, event)
    assert response.status_code == 413
    assert "1 MiB" in response.json()["detail"]
    status, answer = await answer_before_the_body_ends(
        stack,
        "/webhooks/paystack",
        {"Content-Type": "application/json", SIGNATURE_HEADER: "0" * 128},
        b'{"event": "' + b"x" * (1024 * 1024),
    )
    assert status == 413 and "1 MiB" in answer["detail"]
    assert delivery_count(stack) == before


async def test_signed_but_not_json_content_type_is_415(stack: Stack) -> None:
    body = json.dumps(charge_success("inv-000000000000000000000000")).encode()
    async with httpx.AsyncClient(base_url=stack.api_url) as client:
        response = await client.post(
            "/webhooks/paystack",
            content=body,
            headers={"content-type": "text/plain", SIGNATURE_HEADER: sign(body, SECRET_KEY)},
        )
    assert response.status_code == 415
    assert "application/json" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[]", "JSON object"),
        (b'"charge.success"', "JSON object"),
        (b"null", "JSON object"),
        (b'{"event": "charge.success"}', "'data'"),
        (b'{"data": {"reference": "x"}}', "'event'"),
        (b'{"event": "charge.success", "data": "x"}', "'data'"),
        (b"\xff\xfe\x00", "not valid JSON"),
        # Bodies that crashed the route (a 500, which Paystack retries for 72 hours):
        (b'{"event": "x", "data": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5001, "nested too deeply"),
        (b'{"event": "charge.success", "data": {"id": 18446744073709551616}}', "64-bit"),
        (b'{"event": "charge.success", "data": {"id": -1}}', "64-bit"),
        (b'{"event": "charge.success\\u0000", "data": {}}', "NUL"),
        (b'{"event": "charge.success", "data": {"reference": "a\\u0000b"}}', "NUL"),
        (b'{"event": "' + b"e" * 3000 + b'", "data": {}}', "longer than 100"),
        (b'{"event": "x", "data": {"reference": "' + b"r" * 3000 + b'"}}', "longer than 200"),
    ],
)
async def test_signed_bodies_that_are_not_events_are_400(
    stack: Stack, body: bytes, message: str
) -> None:
    before = delivery_count(stack)
    response = await post_webhook(stack, body)
    assert response.status_code == 400
    assert message in response.json()["detail"]
    assert delivery_count(stack) == before


async def test_the_largest_paystack_id_is_an_ordinary_delivery(stack: Stack) -> None:
    # Paystack's ids are unsigned 64-bit: 2^64 - 1 is legal, and is kept exactly.
    body = json.dumps(
        {"event": "charge.success", "data": {"id": 2**64 - 1, "reference": "big-id-1"}}
    ).encode()
    response = await post_webhook(stack, body)
    assert response.status_code == 200 and response.json() == {"outcome": "unknown_reference"}
    [stored] = deliveries(stack, "big-id-1")
    assert stored.transaction_id == 2**64 - 1


async def test_charge_success_without_reference_is_recorded_and_ignored(stack: Stack) -> None:
    before = delivery_count(stack)
    event = {"event": "charge.success", "data": {"id": 1, "amount": 5000, "status": "success"}}
    response = await post_webhook(stack, event)
    assert response.status_code == 200
    assert response.json() == {"outcome": "unknown_reference"}
    assert delivery_count(stack) == before + 1


@pytest.mark.parametrize(
    "event_name", ["transfer.success", "subscription.create", "invoice.update", "made.up"]
)
async def test_events_we_do_not_act_on_are_recorded_with_200(
    stack: Stack, api: httpx.AsyncClient, event_name: str
) -> None:
    invoice = await create_invoice(api, due_in_seconds=600)
    before = delivery_count(stack)
    event = {"event": event_name, "data": {"reference": invoice["id"], "id": 9}}

    response = await post_webhook(stack, event)

    assert response.status_code == 200
    assert response.json() == {"outcome": "ignored"}
    assert delivery_count(stack) == before + 1
    await _unchanged(api, stack, invoice["id"])


@pytest.mark.parametrize(
    "claims",
    [
        {"amount": "250000"},
        {"amount": INVOICE["amount"] * 10},
        {"currency": "USD"},
        {"status": "failed"},
    ],
)
async def test_webhook_claims_alone_never_change_an_unpaid_invoice(
    stack: Stack, api: httpx.AsyncClient, sandbox: httpx.AsyncClient, claims: dict[str, object]
) -> None:
    invoice = await create_invoice(api, due_in_seconds=600)

    response = await post_webhook(stack, charge_success(invoice["id"], **claims))

    assert response.status_code == 200
    assert response.json() == {"outcome": "queued"}

    async def verified() -> None:
        assert (await provider_calls(sandbox, invoice["id"]))["verify"] >= 1

    await eventually(verified)
    await _unchanged(api, stack, invoice["id"])


async def test_a_repeated_delivery_is_counted_on_its_row_and_signalled_once(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    invoice = await create_invoice(api, due_in_seconds=600)
    event = charge_success(invoice["id"])

    first = await post_webhook(stack, event)
    again = [await post_webhook(stack, event) for _ in range(3)]
    other = await post_webhook(stack, charge_success(invoice["id"], amount=1))

    assert [r.json()["outcome"] for r in (first, *again, other)] == [
        "queued",
        "duplicate",
        "duplicate",
        "duplicate",
        "queued",
    ]

    def relayed() -> None:
        stored = [(d.outcome, d.repeats) for d in deliveries(stack, invoice["id"])]
        assert stored == [("signalled", 3), ("signalled", 0)], stored

    await eventually(relayed)
    # A row says signalled once the server accepted the signal; one accepted while the
    # workflow's task is open reaches its history only when that task completes.
    assert await signals_in_history(stack, invoice["id"], at_least=2) == ["payment_notified"] * 2
    # The timeline counts repeats on the delivery's one entry, as the row does.
    timeline = await api.get(f"/invoices/{invoice['id']}/events", params={"limit": 200})
    received = [e["detail"] for e in timeline.json()["items"] if e["kind"] == "webhook_received"]
    assert [(d["outcome"], d.get("repeats", 0)) for d in received] == [("queued", 3), ("queued", 0)]


# Long enough that the first notice's verify is still under way when the second delivery's
# signal is accepted, on a loaded machine; well within the Paystack client's 10 s timeout.
SLOW_VERIFY_SECONDS = 3.0


async def test_each_signalled_delivery_reaches_the_history_once_behind_a_slow_verify(
    stack: Stack, api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    # The verify on a payment notice is a local activity: while Paystack takes its time, the
    # workflow task stays open, and every signal the server accepts meanwhile is held back
    # until that task completes. The rows say signalled before the history shows it.
    invoice = await create_invoice(api, due_in_seconds=600)
    event = charge_success(invoice["id"])
    async with verify_slow(sandbox, invoice["id"], SLOW_VERIFY_SECONDS):
        first = await post_webhook(stack, event)

        async def verifying_the_first_notice() -> None:
            assert await signals_received(stack, invoice["id"]) == ["payment_notified"]
            assert (await provider_calls(sandbox, invoice["id"]))["verify"] >= 1
            assert await workflow_task_open(stack, invoice["id"])

        await eventually(verifying_the_first_notice)
        again = [await post_webhook(stack, event) for _ in range(3)]
        other = await post_webhook(stack, charge_success(invoice["id"], amount=1))
        assert [r.json()["outcome"] for r in (first, *again, other)] == [
            "queued",
            "duplicate",
            "duplicate",
            "duplicate",
            "queued",
        ]

        def relayed() -> None:
            stored = [(d.outcome, d.repeats) for d in deliveries(stack, invoice["id"])]
            assert stored == [("signalled", 3), ("signalled", 0)], stored

        await eventually(relayed)
        # The race, every run: the second row is signalled, its signal not yet in history.
        assert await signals_received(stack, invoice["id"]) == ["payment_notified"], (
            "the second signal was not held back: this test no longer makes the race happen"
        )
        signalled = [d for d in deliveries(stack, invoice["id"]) if d.outcome == "signalled"]
        # One signal per signalled row, once the slow verifies let the tasks complete.
        written = await signals_in_history(
            stack, invoice["id"], at_least=len(signalled), within=6 * SLOW_VERIFY_SECONDS
        )

    assert written == ["payment_notified"] * len(signalled)


async def test_replayed_event_after_the_invoice_closed_changes_nothing(
    stack: Stack, api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    invoice = await create_invoice(api)
    await pay(sandbox, invoice["id"])
    paid = await wait_for_status(api, invoice["id"], "paid")
    await stack.temporal.get_workflow_handle(f"invoice-{invoice['id']}").result()

    replay = charge_success(invoice["id"], amount=1, currency="GHS")
    response = await post_webhook(stack, replay)

    assert response.status_code == 200
    assert response.json() == {"outcome": "queued"}

    def relayed_to_a_closed_workflow() -> None:
        assert deliveries(stack, invoice["id"])[-1].outcome == "workflow_closed"

    await eventually(relayed_to_a_closed_workflow)
    assert (await api.get(f"/invoices/{invoice['id']}")).json() == paid
    assert status_changes(stack, invoice["id"]) == ["pending", "paid"]


@pytest.fixture(scope="module")
def api_behind_proxy(stack: Stack) -> Iterator[Stack]:
    with another_api(
        stack,
        "api-allowlist",
        PAYRECON_WEBHOOK_ALLOWED_IPS=f"{PAYSTACK_ADDRESS},52.49.173.169,52.214.14.220",
        PAYRECON_TRUSTED_PROXY_HEADER="X-Forwarded-For",
        PAYRECON_TRUSTED_PROXIES="127.0.0.0/8",  # the test client is our proxy here
    ) as api:
        yield api


@pytest.mark.parametrize(
    ("forwarded_for", "expected"),
    [
        (None, 403),
        (PAYSTACK_ADDRESS, 200),
        (f"10.1.2.3, {PAYSTACK_ADDRESS}", 200),
        (f"{PAYSTACK_ADDRESS}, 10.1.2.3", 403),
        ("not-an-address", 403),
    ],
)
async def test_source_allowlist_behind_a_trusted_proxy(
    api_behind_proxy: Stack, forwarded_for: str | None, expected: int
) -> None:
    before = delivery_count(api_behind_proxy)
    # A body of its own: a stored one would only be counted as a repeat.
    body = json.dumps({"event": "made.up", "data": {"id": uuid.uuid4().int >> 64}}).encode()
    headers = {"content-type": "application/json", SIGNATURE_HEADER: sign(body, SECRET_KEY)}
    if forwarded_for is not None:
        headers["X-Forwarded-For"] = forwarded_for
    async with httpx.AsyncClient(base_url=api_behind_proxy.api_url) as client:
        response = await client.post("/webhooks/paystack", content=body, headers=headers)

    assert response.status_code == expected, response.text
    assert delivery_count(api_behind_proxy) == before + (1 if expected == 200 else 0)


async def test_a_second_header_line_cannot_smuggle_an_allowed_address(
    api_behind_proxy: Stack,
) -> None:
    # The caller writes an allowed address on a line of its own; our proxy appends the real
    # one on another. Reading only the first line would let the caller in.
    body = json.dumps({"event": "made.up", "data": {}}).encode()
    headers = [
        ("content-type", "application/json"),
        (SIGNATURE_HEADER, sign(body, SECRET_KEY)),
        ("X-Forwarded-For", PAYSTACK_ADDRESS),
        ("X-Forwarded-For", "10.9.9.9"),
    ]
    async with httpx.AsyncClient(base_url=api_behind_proxy.api_url) as client:
        response = await client.post("/webhooks/paystack", content=body, headers=headers)
    assert response.status_code == 403, response.text


@pytest.mark.parametrize(
    "proxies",
    [
        {},  # no trusted proxy configured: the header is nobody's word
        {  # trusted proxies configured, but the test client is not one of them
            "PAYRECON_TRUSTED_PROXY_HEADER": "X-Forwarded-For",
            "PAYRECON_TRUSTED_PROXIES": "10.0.0.0/8",
        },
    ],
    ids=["no-trusted-proxies", "peer-is-no-proxy-of-ours"],
)
async def test_a_forwarded_header_is_ignored_unless_our_proxy_sent_it(
    stack: Stack, proxies: dict[str, str]
) -> None:
    with another_api(
        stack, "api-allowlist-direct", PAYRECON_WEBHOOK_ALLOWED_IPS=PAYSTACK_ADDRESS, **proxies
    ) as direct:
        body = json.dumps({"event": "made.up", "data": {}}).encode()
        headers = {
            "content-type": "application/json",
            SIGNATURE_HEADER: sign(body, SECRET_KEY),
            "X-Forwarded-For": PAYSTACK_ADDRESS,
        }
        async with httpx.AsyncClient(base_url=direct.api_url) as client:
            response = await client.post("/webhooks/paystack", content=body, headers=headers)
    assert response.status_code == 403, response.text
