"""Schemathesis hooks (SCHEMATHESIS_HOOKS=tests.e2e.schemathesis_hooks): sign generated webhook
bodies, so the fuzzer reaches the parser and the relay, not just the signature check; and
delete every webhook endpoint the fuzzer makes, so the rest of the session's invoices send
no events to its made-up URLs."""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import urlsplit

import httpx
import schemathesis

from paystack.signature import SIGNATURE_HEADER, sign


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    if case.path != "/webhooks/paystack" or not isinstance(case.body, dict | list):
        return
    # requests serialises JSON bodies with json.dumps' defaults; sign those exact bytes.
    body = json.dumps(case.body, allow_nan=False).encode()
    case.headers = {
        **(case.headers or {}),
        SIGNATURE_HEADER: sign(body, os.environ["PAYSTACK_SECRET_KEY"]),
    }


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    if case.path != "/webhook-endpoints" or case.method.upper() != "POST":
        return
    if response.status_code != 201:
        return
    api = urlsplit(response.request.url)
    created = f"{api.scheme}://{api.netloc}/webhook-endpoints/{response.json()['id']}"
    headers = {"Authorization": response.request.headers["Authorization"]}
    deleted = httpx.delete(created, headers=headers, timeout=30)
    assert deleted.status_code == 204, deleted.text
