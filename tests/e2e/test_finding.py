"""Finding invoices by what a backend knows: GET /invoices filtered by customer email,
Idempotency-Key, metadata and creation time, over HTTP against the test stack."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.helpers import create_invoice


async def found(client: httpx.AsyncClient, **params: Any) -> list[str]:
    response = await client.get("/invoices", params={"limit": 200, **params})
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    assert set(page) == {"items", "total", "limit", "offset"}
    assert page["total"] == len(page["items"]), page["total"]
    return [item["id"] for item in page["items"]]


async def refused(client: httpx.AsyncClient, params: Any) -> list[dict[str, Any]]:
    response = await client.get("/invoices", params=params)
    assert response.status_code == 422, response.text
    problems: list[dict[str, Any]] = response.json()["detail"]
    return problems


async def test_each_filter_finds_what_it_names_and_they_combine(
    api: httpx.AsyncClient,
) -> None:
    run = uuid.uuid4().hex[:12]
    email = f"learner-{run}@example.com"
    first = await create_invoice(
        api,
        idempotency_key=f"enrol-{run}-1",
        customer_email=email,
        metadata={"run": run, "learner_id": 77, "course.code": "py-101"},
    )
    second = await create_invoice(
        api,
        idempotency_key=f"enrol-{run}-2",
        customer_email=email,
        metadata={"run": run, "learner_id": "77"},
    )
    third = await create_invoice(
        api,
        customer_email=f"other-{run}@example.com",
        metadata={"run": run, "learner_id": 78},
    )
    ids = [third["id"], second["id"], first["id"]]  # newest first

    assert await found(api, customer_email=email) == ids[1:]
    # The domain is stored in lower case, so any case of it finds the invoice.
    assert await found(api, customer_email=f"learner-{run}@EXAMPLE.com") == ids[1:]
    assert await found(api, idempotency_key=f"enrol-{run}-2") == [second["id"]]
    assert await found(api, **{"metadata[run]": run}) == ids
    # Compared as text: 77 and "77" alike, 78 not.
    assert await found(api, **{"metadata[run]": run, "metadata[learner_id]": "77"}) == ids[1:]
    assert await found(api, **{"metadata[run]": run, "metadata[learner_id]": "78"}) == ids[:1]
    assert await found(api, **{"metadata[course.code]": "py-101", "metadata[run]": run}) == [
        first["id"]
    ]
    assert await found(api, customer_email=email, **{"metadata[learner_id]": "78"}) == []
    assert await found(api, idempotency_key=f"enrol-{run}-1", customer_email=email) == [first["id"]]
    assert await found(api, status="paid", **{"metadata[run]": run}) == []

    # Creation range: after is inclusive, before exclusive.
    by_run = {"metadata[run]": run}
    middle = second["created_at"]
    assert await found(api, created_after=middle, **by_run) == ids[:2]
    assert await found(api, created_before=middle, **by_run) == ids[2:]
    assert await found(api, created_after=middle, created_before=third["created_at"], **by_run) == [
        second["id"]
    ]
    assert await found(api, created_after=middle, created_before=middle, **by_run) == []

    # The page keeps its shape: the total of every match, one page of them.
    page = (await api.get("/invoices", params={**by_run, "limit": 1, "offset": 1})).json()
    assert (page["total"], page["limit"], page["offset"]) == (3, 1, 1)
    assert [item["id"] for item in page["items"]] == [second["id"]]
    assert page["items"][0]["metadata"] == {"run": run, "learner_id": "77"}


async def test_an_idempotency_key_finds_only_its_callers_invoice_but_an_operator_finds_any(
    api: httpx.AsyncClient, shop: httpx.AsyncClient, operator: httpx.AsyncClient
) -> None:
    key = f"order-{uuid.uuid4()}"
    mine = await create_invoice(api, idempotency_key=key, due_in_seconds=600)

    assert await found(api, idempotency_key=key) == [mine["id"]]
    assert await found(shop, idempotency_key=key) == []
    assert (
        await found(shop, customer_email=mine["customer_email"], created_after=mine["created_at"])
        == []
    )
    assert await found(operator, idempotency_key=key) == [mine["id"]]

    # The same key is the shop's own too: each caller finds its own; the operator, both.
    theirs = await create_invoice(shop, idempotency_key=key, due_in_seconds=600)
    assert await found(shop, idempotency_key=key) == [theirs["id"]]
    assert await found(api, idempotency_key=key) == [mine["id"]]
    assert set(await found(operator, idempotency_key=key)) == {mine["id"], theirs["id"]}


async def test_malformed_filters_are_422s_naming_the_parameter(api: httpx.AsyncClient) -> None:
    for name in ["metadata[bad key]", "metadata[]", "metadata[a/b]", "metadata", "metadata[x"]:
        [problem] = await refused(api, {name: "1"})
        assert problem["loc"] == ["query", name], problem
        assert "metadata[<key>]" in problem["msg"], problem
    [too_long] = await refused(api, {f"metadata[{'k' * 65}]": "1"})
    assert too_long["loc"] == ["query", f"metadata[{'k' * 65}]"]

    [twice] = await refused(api, [("metadata[a]", "1"), ("metadata[a]", "2")])
    assert twice["loc"] == ["query", "metadata[a]"] and "once" in twice["msg"]
    [nul] = await refused(api, {"metadata[a]": "x\x00y"})
    assert nul["loc"] == ["query", "metadata[a]"] and "NUL" in nul["msg"]
    [many] = await refused(api, {f"metadata[k{n}]": "1" for n in range(6)})
    assert many["loc"] == ["query", "metadata"] and "at most 5" in many["msg"]
    assert await found(api, **{f"metadata[k{n}]": "1" for n in range(5)}) == []

    [backwards] = await refused(
        api,
        {"created_after": "2026-11-24T00:00:00Z", "created_before": "2026-11-23T00:00:00Z"},
    )
    assert backwards["loc"] == ["query", "created_after"]
    assert "created_before" in backwards["msg"]
    [overflow] = await refused(api, {"created_after": "9999-12-31T23:59:59-23:59"})
    assert overflow["loc"] == ["query", "created_after"] and "UTC" in overflow["msg"]
    [naive] = await refused(api, {"created_before": "2026-11-23T00:00:00"})
    assert naive["loc"] == ["query", "created_before"] and "timezone" in naive["msg"]
    [email] = await refused(api, {"customer_email": "not-an-email"})
    assert email["loc"] == ["query", "customer_email"]
    [key] = await refused(api, {"idempotency_key": "has space"})
    assert key["loc"] == ["query", "idempotency_key"]
