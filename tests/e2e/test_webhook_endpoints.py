"""The merchants' webhook endpoints over real HTTP: made with a secret shown once and stored
sealed, read, changed, rotated, deleted; each caller's own; bad input refused with nothing
changed; their delivery attempts listed; a stored event sent again by the API and the CLI."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func
from sqlmodel import Session, col, delete, select
from standardwebhooks import Webhook

from db.engine import write_session
from db.models import EventAttempt, EventDelivery, OutboundEvent, WebhookEndpoint
from devstack.processes import free_port
from outbound.secrets import unseal
from tests.helpers import eventually
from tests.stack import API_KEY, Stack, another_api

ENDPOINT_ID = re.compile(r"we_[0-9a-f]{24}")
SHOWN = {
    "id",
    "url",
    "events",
    "description",
    "enabled",
    "disabled_reason",
    "created_at",
    "updated_at",
}
# Nothing listens there: an endpoint made only to be read never receives anything.
NOWHERE = "http://127.0.0.1:9/payrecon-tests"
UNKNOWN_ID = "we_000000000000000000000000"


@pytest.fixture
def made(stack: Stack) -> Iterator[list[str]]:
    """Ids of the endpoints a test makes: removed afterwards, so the session's other
    invoices send them nothing."""
    ids: list[str] = []
    yield ids
    with write_session(stack.engine) as session:
        session.exec(delete(WebhookEndpoint).where(col(WebhookEndpoint.id).in_(ids)))
        session.exec(delete(EventAttempt).where(col(EventAttempt.endpoint_id).in_(ids)))


async def _create(client: httpx.AsyncClient, made: list[str], **body: Any) -> dict[str, Any]:
    response = await client.post("/webhook-endpoints", json={"url": NOWHERE, **body})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    made.append(created["id"])
    return created


def _row(stack: Stack, endpoint_id: str) -> WebhookEndpoint:
    with Session(stack.engine) as session:
        row = session.get(WebhookEndpoint, endpoint_id)
    assert row is not None
    return row


def _endpoint_count(stack: Stack) -> int:
    with Session(stack.engine) as session:
        return session.exec(select(func.count()).select_from(WebhookEndpoint)).one()


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def test_an_endpoint_is_made_with_its_secret_shown_once_and_stored_sealed(
    stack: Stack, api: httpx.AsyncClient, made: list[str]
) -> None:
    response = await api.post(
        "/webhook-endpoints",
        json={
            "url": "HTTP://127.0.0.1:9/Payrecon-Tests",
            "events": ["invoice.paid", "invoice.needs_review", "invoice.paid"],
            "description": "Order service",
        },
    )
    assert response.status_code == 201, response.text
    created = response.json()
    made.append(created["id"])

    assert set(created) == SHOWN | {"secret"}
    assert ENDPOINT_ID.fullmatch(created["id"]), created
    # Scheme and host normalised; the path as given. Repeated types kept once.
    assert created["url"] == "http://127.0.0.1:9/Payrecon-Tests"
    assert created["events"] == ["invoice.paid", "invoice.needs_review"]
    assert created["description"] == "Order service"
    assert created["enabled"] is True and created["disabled_reason"] is None
    assert created["created_at"] == created["updated_at"]
    assert abs(_at(created["created_at"]) - datetime.now(UTC)) < timedelta(minutes=1)
    secret = created["secret"]
    assert secret.startswith("whsec_") and len(secret) > len("whsec_") + 30

    read = await api.get(f"/webhook-endpoints/{created['id']}")
    assert read.status_code == 200, read.text
    assert read.json() == {key: created[key] for key in SHOWN}
    listed = await api.get("/webhook-endpoints", params={"limit": 200})
    assert listed.status_code == 200, listed.text
    [mine] = [item for item in listed.json()["items"] if item["id"] == created["id"]]
    assert mine == read.json()
    for answer in (read, listed):
        assert secret not in answer.text and secret.removeprefix("whsec_") not in answer.text

    row = _row(stack, created["id"])
    assert row.caller == "default"
    assert secret not in row.secret and secret.removeprefix("whsec_") not in row.secret
    assert unseal(stack.settings.codec_keys, row.secret) == secret
    assert row.previous_secret is None and row.previous_secret_expires_at is None


async def test_each_endpoint_has_its_own_secret(api: httpx.AsyncClient, made: list[str]) -> None:
    first, second = await _create(api, made), await _create(api, made)
    assert first["id"] != second["id"] and first["secret"] != second["secret"]
    # No events given: every type.
    assert first["events"] == [] and first["description"] is None


async def test_an_endpoint_changes_only_in_the_fields_given(
    stack: Stack, api: httpx.AsyncClient, made: list[str]
) -> None:
    created = await _create(api, made, events=["invoice.paid"], description="before")
    path = f"/webhook-endpoints/{created['id']}"

    changed = await api.patch(
        path, json={"url": "http://127.0.0.1:9/elsewhere", "events": ["invoice.expired"]}
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert set(body) == SHOWN
    assert body["url"] == "http://127.0.0.1:9/elsewhere"
    assert body["events"] == ["invoice.expired"]
    assert body["description"] == "before" and body["enabled"] is True
    assert _at(body["updated_at"]) > _at(created["updated_at"])
    assert body["created_at"] == created["created_at"]

    cleared = (await api.patch(path, json={"description": None, "events": []})).json()
    assert cleared["description"] is None and cleared["events"] == []
    assert cleared["url"] == "http://127.0.0.1:9/elsewhere"

    off = await api.patch(path, json={"enabled": False})
    assert off.status_code == 200 and off.json()["enabled"] is False
    assert _row(stack, created["id"]).enabled is False
    assert (await api.get(path)).json()["enabled"] is False

    # As payrecon leaves an endpoint that failed for 5 days.
    with write_session(stack.engine) as session:
        row = session.get(WebhookEndpoint, created["id"])
        assert row is not None
        row.disabled_reason = "every delivery failed since 2026-11-18T10:00:00+00:00"
        row.failing_since = datetime.now(UTC) - timedelta(days=5)
        session.add(row)
    disabled = (await api.get(path)).json()
    assert disabled["enabled"] is False and disabled["disabled_reason"].startswith("every")

    on = await api.patch(path, json={"enabled": True})
    assert on.status_code == 200, on.text
    assert on.json()["enabled"] is True and on.json()["disabled_reason"] is None
    row = _row(stack, created["id"])
    assert row.enabled and row.disabled_reason is None and row.failing_since is None
    # The secret is not the PATCH's to change.
    assert unseal(stack.settings.codec_keys, row.secret) == created["secret"]


async def test_a_deleted_endpoint_is_gone(
    stack: Stack, api: httpx.AsyncClient, made: list[str]
) -> None:
    created = await _create(api, made)
    path = f"/webhook-endpoints/{created['id']}"

    deleted = await api.delete(path)
    assert deleted.status_code == 204 and deleted.content == b""
    with Session(stack.engine) as session:
        assert session.get(WebhookEndpoint, created["id"]) is None
    for method, suffix in [
        ("GET", ""),
        ("DELETE", ""),
        ("PATCH", ""),
        ("POST", "/rotate-secret"),
        ("GET", "/deliveries"),
    ]:
        body = {"enabled": True} if method == "PATCH" else None
        answer = await api.request(method, path + suffix, json=body)
        assert answer.status_code == 404, (method, suffix, answer.text)
        assert answer.json() == {"detail": f"no webhook endpoint {created['id']}"}
    listed = (await api.get("/webhook-endpoints", params={"limit": 200})).json()
    assert created["id"] not in {item["id"] for item in listed["items"]}


async def test_a_rotated_secret_replaces_the_old_which_signs_for_24_hours_more(
    stack: Stack, api: httpx.AsyncClient, made: list[str]
) -> None:
    created = await _create(api, made)
    path = f"/webhook-endpoints/{created['id']}"

    rotated = await api.post(f"{path}/rotate-secret")
    assert rotated.status_code == 200, rotated.text
    body = rotated.json()
    assert set(body) == SHOWN | {"secret"}
    assert body["id"] == created["id"] and body["url"] == created["url"]
    new = body["secret"]
    assert new.startswith("whsec_") and new != created["secret"]

    row = _row(stack, created["id"])
    keys = stack.settings.codec_keys
    assert unseal(keys, row.secret) == new
    assert row.previous_secret is not None and row.previous_secret_expires_at is not None
    assert unseal(keys, row.previous_secret) == created["secret"]
    expected = datetime.now(UTC) + timedelta(hours=24)
    assert abs(row.previous_secret_expires_at - expected) < timedelta(minutes=1)
    read = await api.get(path)
    assert "secret" not in read.json() and new not in read.text

    # Again: the secret just replaced signs alongside; the first one no longer does.
    third = (await api.post(f"{path}/rotate-secret")).json()["secret"]
    row = _row(stack, created["id"])
    assert row.previous_secret is not None
    assert unseal(keys, row.secret) == third and unseal(keys, row.previous_secret) == new


async def test_a_caller_sees_only_its_own_endpoints_and_an_operator_every_one(
    stack: Stack,
    api: httpx.AsyncClient,
    shop: httpx.AsyncClient,
    operator: httpx.AsyncClient,
    made: list[str],
) -> None:
    mine = await _create(api, made, description="mine")
    path = f"/webhook-endpoints/{mine['id']}"
    for method, suffix, body in [
        ("GET", "", None),
        ("PATCH", "", {"enabled": False, "url": "http://127.0.0.1:9/theirs"}),
        ("POST", "/rotate-secret", None),
        ("GET", "/deliveries", None),
        ("DELETE", "", None),
    ]:
        answer = await shop.request(method, path + suffix, json=body)
        assert answer.status_code == 404, (method, suffix, answer.text)
        assert answer.json() == {"detail": f"no webhook endpoint {mine['id']}"}
    theirs = (await shop.get("/webhook-endpoints", params={"limit": 200})).json()
    assert mine["id"] not in {item["id"] for item in theirs["items"]}
    # Untouched by the other caller's tries.
    row = _row(stack, mine["id"])
    assert row.enabled and row.url == NOWHERE
    assert unseal(stack.settings.codec_keys, row.secret) == mine["secret"]

    shops = await _create(shop, made, description="shop's")
    assert _row(stack, shops["id"]).caller == "shop"
    seen = (await operator.get("/webhook-endpoints", params={"limit": 200})).json()
    assert {mine["id"], shops["id"]} <= {item["id"] for item in seen["items"]}
    assert seen["total"] > theirs["total"]
    assert (await operator.get(path)).json()["description"] == "mine"

    ops = await _create(operator, made)
    row = _row(stack, ops["id"])
    assert row.caller == "ops"
    assert (await api.get(f"/webhook-endpoints/{ops['id']}")).status_code == 404
    # An operator may turn anyone's endpoint off.
    off = await operator.patch(path, json={"enabled": False})
    assert off.status_code == 200 and _row(stack, mine["id"]).enabled is False


@dataclass
class Refused:
    method: str
    path: str
    body: Any
    status: int
    says: str


async def test_bad_input_is_a_4xx_naming_the_problem_and_changes_nothing(
    stack: Stack, api: httpx.AsyncClient, made: list[str]
) -> None:
    existing = await _create(api, made, events=["invoice.paid"])
    too_long = "http://127.0.0.1:9/" + "a" * 2030
    cases = [
        Refused("POST", "", {"url": "ftp://example.com/hook"}, 422, "https://"),
        Refused("POST", "", {"url": "example.com/hook"}, 422, "https://"),
        Refused("POST", "", {"url": "http://user:pw@127.0.0.1:9/"}, 422, "password"),
        Refused("POST", "", {"url": "http://127.0.0.1:9/#x"}, 422, "fragment"),
        Refused("POST", "", {"url": too_long}, 422, "2048"),
        Refused("POST", "", {"url": ""}, 422, "at least 1 character"),
        Refused("POST", "", {}, 422, "Field required"),
        Refused("POST", "", {"url": NOWHERE, "events": ["invoice.deleted"]}, 422, "invoice.paid"),
        Refused("POST", "", {"url": NOWHERE, "events": "invoice.paid"}, 422, "valid list"),
        Refused("POST", "", {"url": NOWHERE, "secret": "whsec_mine"}, 422, "Extra inputs"),
        Refused("POST", "", {"url": NOWHERE, "description": "x" * 501}, 422, "500 characters"),
        Refused("POST", "", b'{"url": "http://127.0.0.1:9/"', 400, "not valid JSON"),
        Refused("PATCH", f"/{existing['id']}", {"url": None}, 422, "must not be null"),
        Refused("PATCH", f"/{existing['id']}", {"enabled": "yes"}, 422, "valid boolean"),
        Refused("PATCH", f"/{existing['id']}", {"events": ["charge.success"]}, 422, "invoice."),
        Refused("PATCH", f"/{existing['id']}", {"caller": "shop"}, 422, "Extra inputs"),
        Refused("PATCH", f"/{existing['id']}", {"url": "gopher://x/"}, 422, "https://"),
        Refused("PATCH", f"/{existing['id']}", b"{", 400, "not valid JSON"),
        Refused("PATCH", f"/{UNKNOWN_ID}", {"enabled": False}, 404, UNKNOWN_ID),
        Refused("GET", f"/{UNKNOWN_ID}", None, 404, UNKNOWN_ID),
        Refused("DELETE", f"/{UNKNOWN_ID}", None, 404, UNKNOWN_ID),
        Refused("POST", f"/{UNKNOWN_ID}/rotate-secret", None, 404, UNKNOWN_ID),
        Refused("GET", f"/{UNKNOWN_ID}/deliveries", None, 404, UNKNOWN_ID),
        Refused("GET", "/we_not-an-id", None, 422, "pattern"),
        Refused("GET", f"/{existing['id']}/deliveries?limit=0", None, 422, "limit"),
        Refused("GET", "?offset=-1", None, 422, "offset"),
    ]
    before_count, before_row = _endpoint_count(stack), _row(stack, existing["id"])
    for case in cases:
        content = case.body if isinstance(case.body, bytes) else None
        payload = None if isinstance(case.body, bytes) else case.body
        answer = await api.request(
            case.method,
            f"/webhook-endpoints{case.path}",
            content=content,
            json=payload,
            headers={"Content-Type": "application/json"},
        )
        assert answer.status_code == case.status, (case, answer.text)
        assert answer.headers["content-type"] == "application/json", case
        detail = answer.json()["detail"]
        assert case.says in json.dumps(detail), (case, detail)
        if case.status == 422 and isinstance(case.body, dict) and case.body:
            # Pydantic's and the URL check's errors alike point at the field.
            fields = {tuple(problem["loc"])[:2] for problem in detail}
            assert fields & {("body", name) for name in case.body}, (case, detail)
    after_row = _row(stack, existing["id"])
    assert _endpoint_count(stack) == before_count
    assert after_row.model_dump() == before_row.model_dump()

    async with httpx.AsyncClient(base_url=stack.api_url) as anonymous:
        unauthenticated = await anonymous.post("/webhook-endpoints", json={"url": NOWHERE})
    assert unauthenticated.status_code == 401 and "API key" in unauthenticated.json()["detail"]
    assert _endpoint_count(stack) == before_count


async def test_deliveries_list_the_attempts_newest_first(
    stack: Stack, api: httpx.AsyncClient, made: list[str]
) -> None:
    created = await _create(api, made)
    path = f"/webhook-endpoints/{created['id']}/deliveries"
    empty = await api.get(path)
    assert empty.status_code == 200, empty.text
    assert empty.json() == {"items": [], "total": 0, "limit": 50, "offset": 0}

    start = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    event_id = f"evt_inv-{uuid.uuid4().hex[:24]}_2"
    attempts = [
        EventAttempt(
            event_id=event_id,
            endpoint_id=created["id"],
            attempt=1,
            attempted_at=start,
            outcome="failed",
            status_code=None,
            latency_ms=10000.0,
            error="ReadTimeout: timed out",
            next_attempt_at=start + timedelta(seconds=5),
        ),
        EventAttempt(
            event_id=event_id,
            endpoint_id=created["id"],
            attempt=2,
            attempted_at=start + timedelta(seconds=5),
            outcome="failed",
            status_code=502,
            latency_ms=31.5,
            error="Bad Gateway",
            next_attempt_at=start + timedelta(minutes=5, seconds=5),
        ),
        EventAttempt(
            event_id=event_id,
            endpoint_id=created["id"],
            attempt=3,
            attempted_at=start + timedelta(minutes=5, seconds=5),
            outcome="delivered",
            status_code=200,
            latency_ms=12.25,
            error=None,
            next_attempt_at=None,
        ),
    ]
    # Another endpoint's attempt is not this one's.
    other = EventAttempt(
        event_id=event_id,
        endpoint_id=UNKNOWN_ID,
        attempt=1,
        attempted_at=start + timedelta(hours=1),
        outcome="delivered",
        status_code=200,
        latency_ms=1.0,
    )
    # A delivery is listed from the moment it is due, before its first attempt.
    due_id = f"evt_inv-{uuid.uuid4().hex[:24]}_3"
    due = EventDelivery(
        event_id=due_id,
        endpoint_id=created["id"],
        status="pending",
        attempts=0,
        due_at=start + timedelta(hours=1),
        created_at=start + timedelta(hours=1),
        updated_at=start + timedelta(hours=1),
    )
    with write_session(stack.engine) as session:
        session.add_all([*attempts, other, due])
    try:
        page = (await api.get(path)).json()
        assert page["total"] == 4 and page["limit"] == 50 and page["offset"] == 0
        pending, *tried = page["items"]
        assert pending == {
            "event_id": due_id,
            "attempt": 1,
            "attempted_at": None,
            "outcome": "pending",
            "status_code": None,
            "latency_ms": None,
            "error": None,
            "next_attempt_at": "2026-11-23T11:00:00Z",
        }
        assert [item["attempt"] for item in tried] == [3, 2, 1]
        newest, _, oldest = tried
        assert newest == {
            "event_id": event_id,
            "attempt": 3,
            "attempted_at": "2026-11-23T10:05:05Z",
            "outcome": "delivered",
            "status_code": 200,
            "latency_ms": 12.25,
            "error": None,
            "next_attempt_at": None,
        }
        assert oldest["status_code"] is None and oldest["error"] == "ReadTimeout: timed out"
        assert _at(oldest["next_attempt_at"]) == start + timedelta(seconds=5)

        second = (await api.get(path, params={"limit": 1, "offset": 2})).json()
        assert second["total"] == 4 and (second["limit"], second["offset"]) == (1, 2)
        assert [item["attempt"] for item in second["items"]] == [2]
        assert second["items"][0]["status_code"] == 502
    finally:
        with write_session(stack.engine) as session:
            session.exec(delete(EventAttempt).where(col(EventAttempt.event_id) == event_id))
            session.exec(delete(EventDelivery).where(col(EventDelivery.event_id) == due_id))


# --- sending a stored event again -----------------------------------------------------


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@asynccontextmanager
async def receiver() -> AsyncIterator[tuple[str, asyncio.Queue[Received]]]:
    """A merchant's endpoint on this machine, answering 200 to whatever it is sent."""
    received: asyncio.Queue[Received] = asyncio.Queue()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        fields = (line.partition(":") for line in head.split("\r\n")[1:] if line)
        headers = {name.strip().lower(): value.strip() for name, _, value in fields}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        await received.put(Received(headers, body))
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}/hook", received


def _store_event(stack: Stack, caller: str) -> OutboundEvent:
    event_id = f"evt_inv-{uuid.uuid4().hex[:24]}_2"
    payload = json.dumps({"type": "invoice.paid", "data": {"id": event_id}}, separators=(",", ":"))
    event = OutboundEvent(
        id=event_id,
        type="invoice.paid",
        caller=caller,
        invoice_id=None,
        created_at=datetime.now(UTC),
        payload=payload,
    )
    with write_session(stack.engine) as session:
        session.add(event)
        session.flush()
        session.expunge(event)
    return event


async def _next_for(received: asyncio.Queue[Received], event_id: str) -> Received:
    """The next request for this event (other tests' invoices may send theirs meanwhile)."""
    async with asyncio.timeout(30):
        while True:
            request = await received.get()
            if request.headers.get("webhook-id") == event_id:
                return request


async def test_an_event_is_sent_again_signed_with_both_secrets_during_a_rotation(
    stack: Stack,
    api: httpx.AsyncClient,
    shop: httpx.AsyncClient,
    operator: httpx.AsyncClient,
    made: list[str],
) -> None:
    event = _store_event(stack, "default")
    async with receiver() as (url, received):
        endpoint = await _create(api, made, url=url, events=["invoice.paid"])
        rotated = (await api.post(f"/webhook-endpoints/{endpoint['id']}/rotate-secret")).json()

        # Another caller's event is as unknown as none.
        refused = await shop.post(f"/events/{event.id}/redeliver")
        assert refused.status_code == 404, refused.text
        assert refused.json() == {"detail": f"no event {event.id}"}
        unknown = await api.post("/events/evt_inv-000000000000000000000000_1/redeliver")
        assert unknown.status_code == 404, unknown.text
        assert (await api.post("/events/not%20an%20id/redeliver")).status_code == 422

        answer = await api.post(f"/events/{event.id}/redeliver")
        assert answer.status_code == 202, answer.text
        assert answer.json()["event_id"] == event.id
        # One delivery: the caller's one endpoint that takes the event's type.
        [delivery_id] = answer.json()["delivery_ids"]
        delivered = await _next_for(received, event.id)

    # The same id and body, signed by the new secret and by the one it replaced.
    assert delivered.body == event.payload.encode()
    for secret in (endpoint["secret"], rotated["secret"]):
        assert Webhook(secret).verify(delivered.body, delivered.headers) == json.loads(
            event.payload
        )

    async def attempt_listed() -> None:
        page = (await api.get(f"/webhook-endpoints/{endpoint['id']}/deliveries")).json()
        assert [(i["event_id"], i["outcome"], i["status_code"]) for i in page["items"]] == [
            (event.id, "delivered", 200)
        ]

    await eventually(attempt_listed)
    # An operator may send anyone's event again.
    again = await operator.post(f"/events/{event.id}/redeliver")
    assert again.status_code == 202
    assert again.json()["delivery_ids"] and delivery_id not in again.json()["delivery_ids"]


async def test_without_temporal_a_redelivery_still_goes_out(stack: Stack) -> None:
    """A redelivery is rows in the outbox: it needs the database, not Temporal."""
    event = _store_event(stack, "default")
    with another_api(
        stack,
        "api-redeliver-no-temporal",
        TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}",
        PAYRECON_CREATE_TIMEOUT_SECONDS="3",
        PAYRECON_RELAY_SCAN_SECONDS="3600",
    ) as down:
        headers = {"Authorization": f"Bearer {API_KEY}"}
        async with httpx.AsyncClient(base_url=down.api_url, headers=headers, timeout=30) as api:
            answer = await api.post(f"/events/{event.id}/redeliver")
            missing = await api.post("/events/evt_inv-000000000000000000000000_1/redeliver")
    assert answer.status_code == 202, answer.text
    assert answer.json()["event_id"] == event.id
    assert missing.status_code == 404, missing.text


async def test_the_cli_sends_an_event_again(stack: Stack) -> None:
    event = _store_event(stack, "shop")

    code, output = await _payrecon(stack, "events", "redeliver", event.id)
    assert code == 0, output
    assert f"event {event.id}: redelivery queued, deliveries " in output

    code, output = await _payrecon(stack, "events", "redeliver", "evt_missing_1")
    assert code == 1 and "no event evt_missing_1" in output


async def _payrecon(stack: Stack, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli.main",
        *args,
        env={**stack.env, "COLUMNS": "200"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output = (await process.communicate())[0].decode()
    assert process.returncode is not None
    return process.returncode, output
