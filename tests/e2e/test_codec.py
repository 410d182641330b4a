"""Invoice data is ciphertext in Temporal (temporal_codec.py), and the codec endpoint
(api/routers/codec.py) decrypts it for the Temporal UI and for nobody else: the test stack's
real processes, read with a raw Temporal client that has no codec."""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.protobuf import json_format
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload, SearchAttributes
from temporalio.client import Client, WorkflowHistory

from devstack.stack import Stack as Processes
from domain.invoice import InvoiceSnapshot
from temporal_codec import ENCODING, EncryptionCodec
from tests.helpers import create_invoice, pay, wait_for_status
from tests.stack import Stack, another_api
from workflows.invoice import InvoiceWorkflow
from workflows.starter import reach_invoice
from workflows.types import CUSTOMER_EMAIL, INVOICE_STATUS, workflow_id_for

# A production API beside the test stack: its own codec key and token, its own database.
PRODUCTION_TOKEN = "codec-token-" + "t" * 32
PRODUCTION_KEY = "2026-07:" + base64.b64encode(os.urandom(32)).decode()


def secrets_of(invoice: dict[str, Any]) -> list[bytes]:
    """What must never be in Temporal in clear: the email, the metadata, the access code."""
    access_code = invoice["authorization_url"].rsplit("/", 1)[1]
    return [
        invoice["customer_email"].encode(),
        invoice["metadata"]["order_ref"].encode(),
        access_code.encode(),
    ]


async def new_invoice(api: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    marker = uuid.uuid4().hex[:12]
    return await create_invoice(
        api,
        customer_email=f"codec-{marker}@example.com",
        metadata={"order_ref": f"order-{marker}"},
        due_in_seconds=600,
        **fields,
    )


async def raw_history(stack: Stack, invoice_id: str, run_id: str | None = None) -> WorkflowHistory:
    """The history as Temporal stores it: a client without payrecon's codec."""
    raw = await Client.connect(stack.temporal.service_client.config.target_host)
    handle = raw.get_workflow_handle(workflow_id_for(invoice_id), run_id=run_id)
    return await handle.fetch_history()


def payloads_in(message: Message) -> Iterator[Payload]:
    """Every payload in `message` but search attributes' (Temporal indexes those in clear)."""
    if isinstance(message, SearchAttributes):
        return
    if isinstance(message, Payload):
        yield message
        return
    for field, value in message.ListFields():
        if field.type != field.TYPE_MESSAGE:
            continue
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            items = list(value.values())
        elif field.is_repeated:
            items = list(value)
        else:
            items = [value]
        for item in items:
            if isinstance(item, Message):
                yield from payloads_in(item)


def as_json(payloads: list[Payload]) -> dict[str, Any]:
    return {"payloads": [json_format.MessageToDict(payload) for payload in payloads]}


def from_json(document: dict[str, Any]) -> list[Payload]:
    return [json_format.ParseDict(item, Payload()) for item in document["payloads"]]


async def test_invoice_data_is_ciphertext_in_every_payload_of_the_history(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    invoice = await new_invoice(api)

    history = await raw_history(stack, invoice["id"])
    payloads = [p for event in history.events for p in payloads_in(event)]

    encrypted = [p for p in payloads if p.metadata.get("encoding") == ENCODING]
    assert len(encrypted) >= 4, payloads  # input, summary, update, initialize, record, ...
    for secret in secrets_of(invoice):
        assert not any(secret in p.SerializeToString() for p in payloads), secret
    # It is all there, for whoever has the keys: the check looked in the right place.
    decoded = await EncryptionCodec(stack.settings.codec_keys).decode(encrypted)
    for secret in secrets_of(invoice):
        assert any(secret in p.data for p in decoded), secret
    # And payrecon reads it as before.
    served = (await api.get(f"/invoices/{invoice['id']}")).json()
    assert served["customer_email"] == invoice["customer_email"]
    assert served["metadata"] == invoice["metadata"]


@pytest.fixture(scope="module")
def email_not_searchable(stack: Stack) -> Iterator[Stack]:
    """An API that starts invoices without the CustomerEmail search attribute."""
    with another_api(
        stack, "api-no-email-attribute", PAYRECON_CUSTOMER_EMAIL_SEARCH_ATTRIBUTE="false"
    ) as other:
        yield other


async def test_without_the_email_search_attribute_nothing_in_temporal_is_in_clear(
    stack: Stack, email_not_searchable: Stack, api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    async with httpx.AsyncClient(
        base_url=email_not_searchable.api_url, headers=api.headers, timeout=30
    ) as other:
        invoice = await new_invoice(other)
    handle = stack.temporal.get_workflow_handle_for(
        InvoiceWorkflow.run, workflow_id_for(invoice["id"])
    )
    started = await handle.describe()
    assert started.typed_search_attributes.get(INVOICE_STATUS) == "pending"
    assert started.typed_search_attributes.get(CUSTOMER_EMAIL) is None

    # Paid, completed, then woken by an operator's reverify: the new run upserts its search
    # attributes from the record, and leaves the email out as its start did.
    await pay(sandbox, invoice["id"])
    await wait_for_status(api, invoice["id"], "paid")
    paid: InvoiceSnapshot = await handle.result()
    off = stack.settings.model_copy(update={"payrecon_customer_email_search_attribute": False})
    await reach_invoice(stack.temporal, off, paid, InvoiceWorkflow.reverify)
    woken = await handle.describe()
    assert woken.run_id != started.run_id
    assert woken.typed_search_attributes.get(CUSTOMER_EMAIL) is None
    assert woken.typed_search_attributes.get(INVOICE_STATUS) == "paid"

    # Every byte Temporal holds of either run: no secret, search attributes included.
    runs = [run async for run in stack.temporal.list_workflows(f"WorkflowId = '{handle.id}'")]
    assert len(runs) == 2
    for run in runs:
        stored = b"".join(
            event.SerializeToString()
            for event in (await raw_history(stack, invoice["id"], run.run_id)).events
        )
        for secret in secrets_of(invoice):
            assert secret not in stored, (run.run_id, secret)


async def encrypted_payloads_of(
    stack: Stack, api: httpx.AsyncClient
) -> tuple[dict[str, Any], list[Payload]]:
    invoice = await new_invoice(api)
    history = await raw_history(stack, invoice["id"])
    payloads = [p for event in history.events for p in payloads_in(event)]
    return invoice, [p for p in payloads if p.metadata.get("encoding") == ENCODING]


async def test_the_codec_endpoint_decodes_for_this_machine_in_development_mode(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    invoice, encrypted = await encrypted_payloads_of(stack, api)
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as ui:
        decoded = await ui.post(
            "/codec/decode", json=as_json(encrypted), headers={"X-Namespace": "default"}
        )
        assert decoded.status_code == 200, decoded.text
        plain = from_json(decoded.json())
        assert all(p.metadata["encoding"] != ENCODING for p in plain)
        assert any(invoice["customer_email"].encode() in p.data for p in plain)

        # Encode, as the UI does for a signal it sends: ciphertext that decodes back.
        mine = [Payload(metadata={"encoding": b"json/plain"}, data=b'{"a": 1}'), Payload()]
        encoded = await ui.post("/codec/encode", json=as_json(mine))
        sealed = from_json(encoded.json())
        assert [p.metadata["encoding"] for p in sealed] == [ENCODING, ENCODING]
        back = await ui.post("/codec/decode", json=encoded.json())
        assert from_json(back.json()) == mine
        # Plaintext payloads (written by something else) are shown as Temporal holds them,
        # though no payrecon worker would read them; none, as none.
        assert from_json((await ui.post("/codec/decode", json=as_json(mine))).json()) == mine
        assert (await ui.post("/codec/decode", json={"payloads": []})).json() == {"payloads": []}


async def test_cors_answers_the_temporal_ui_alone(stack: Stack, processes: Processes) -> None:
    ui_origin = f"http://localhost:{processes.ports.ui}"
    body = as_json([Payload(metadata={"encoding": b"json/plain"}, data=b"1")])
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as client:

        async def preflight(origin: str) -> httpx.Response:
            return await client.options(
                "/codec/decode",
                headers={
                    "Origin": origin,
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "content-type,x-namespace",
                },
            )

        allowed = await preflight(ui_origin)
        assert allowed.status_code == 204
        assert allowed.headers["access-control-allow-origin"] == ui_origin
        assert allowed.headers["access-control-allow-credentials"] == "true"
        assert "POST" in allowed.headers["access-control-allow-methods"]
        allowed_headers = allowed.headers["access-control-allow-headers"].lower()
        for header in ("authorization", "content-type", "x-namespace"):
            assert header in allowed_headers
        posted = await client.post("/codec/decode", json=body, headers={"Origin": ui_origin})
        assert posted.status_code == 200
        assert posted.headers["access-control-allow-origin"] == ui_origin
        # A refusal reaches the UI readable too.
        refused = await client.post("/codec/decode", content=b"{", headers={"Origin": ui_origin})
        assert refused.status_code == 400
        assert refused.headers["access-control-allow-origin"] == ui_origin

        for elsewhere in ("https://evil.example", "http://localhost:1", "null"):
            answers = [
                await preflight(elsewhere),
                await client.post("/codec/decode", json=body, headers={"Origin": elsewhere}),
            ]
            for answer in answers:
                assert not any(h.startswith("access-control-") for h in answer.headers), elsewhere
                assert answer.headers["vary"] == "Origin"
        # No CORS on the API's other routes.
        health = await client.get("/healthz", headers={"Origin": ui_origin})
        assert "access-control-allow-origin" not in health.headers


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (b'{"payloads": [', 400, "not valid JSON"),
        (b"\xff\xfe", 400, "not valid JSON"),
        (b"[]", 422, '{"payloads": ['),
        (b'{"payloads": [{"data": "not base64!"}]}', 422, '{"payloads": ['),
        (b'{"payloads": [{"metadata": {"encoding": 5}}]}', 422, '{"payloads": ['),
        (b'{"payloads": {"data": "AA=="}}', 422, '{"payloads": ['),
        (b'{"things": []}', 422, '{"payloads": ['),
        (
            b'{"payloads": [{"metadata": {"encoding": "YmluYXJ5L2VuY3J5cHRlZA==", '
            b'"encryption-key-id": "cmV0aXJlZA=="}, "data": "AAAA"}]}',
            422,
            "key id 'retired'",
        ),
        (b'{"payloads": [' + b" " * (4 * 1024 * 1024) + b"]}", 413, "over 4 MiB"),
    ],
)
async def test_bad_input_is_a_json_4xx(stack: Stack, body: bytes, status: int, says: str) -> None:
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as client:
        response = await client.post(
            "/codec/decode", content=body, headers={"Content-Type": "application/json"}
        )
    assert response.status_code == status, response.text
    assert says in response.json()["detail"]


def production_api(
    stack: Stack, data_dir: Path, name: str, **env: str
) -> AbstractContextManager[Stack]:
    """An API outside development mode, with real-looking secrets and its own database (its
    relayer must never signal the stack's workflows under another key)."""
    return another_api(
        stack,
        name,
        PAYRECON_DEVELOPMENT_MODE="false",
        PAYRECON_API_KEYS="k" * 40,
        PAYRECON_CODEC_KEYS=PRODUCTION_KEY,
        DATABASE_URL=f"sqlite:///{data_dir / f'{name}.db'}",
        **env,
    )


async def test_outside_development_mode_the_codec_needs_a_token(
    stack: Stack, tmp_path: Path
) -> None:
    mine = as_json([Payload(metadata={"encoding": b"json/plain"}, data=b'{"a": 1}')])
    with production_api(
        stack, tmp_path, "api-codec-tokens", PAYRECON_CODEC_TOKENS=PRODUCTION_TOKEN
    ) as prod:
        async with httpx.AsyncClient(base_url=prod.api_url, timeout=30) as client:
            missing = await client.post("/codec/decode", json=mine)
            wrong = await client.post(
                "/codec/decode", json=mine, headers={"Authorization": "Bearer " + "x" * 44}
            )
            # Not the API's keys either: a codec token.
            api_key = await client.post(
                "/codec/encode", json=mine, headers={"Authorization": "Bearer " + "k" * 40}
            )
            token = {"Authorization": f"Bearer {PRODUCTION_TOKEN}"}
            encoded = await client.post("/codec/encode", json=mine, headers=token)
            decoded = await client.post("/codec/decode", json=encoded.json(), headers=token)
            # Outside development mode no origin is the UI's until one is set.
            cors = await client.post(
                "/codec/decode",
                json=mine,
                headers={**token, "Origin": "http://localhost:8233"},
            )
    for refused in (missing, wrong, api_key):
        assert refused.status_code == 401, refused.text
        assert "PAYRECON_CODEC_TOKENS" in refused.json()["detail"]
        assert refused.headers["www-authenticate"] == "Bearer"
    assert encoded.status_code == 200
    [sealed] = from_json(encoded.json())
    assert sealed.metadata["encryption-key-id"] == b"2026-07"
    assert decoded.json() == mine
    assert cors.status_code == 200 and "access-control-allow-origin" not in cors.headers

    with production_api(stack, tmp_path, "api-codec-off") as off:
        async with httpx.AsyncClient(base_url=off.api_url, timeout=30) as client:
            answers = [
                await client.post("/codec/decode", json=mine),
                await client.post("/codec/decode", json=mine, headers=token),
            ]
    for answer in answers:
        assert answer.status_code == 403
        assert "set PAYRECON_CODEC_TOKENS" in answer.json()["detail"]
