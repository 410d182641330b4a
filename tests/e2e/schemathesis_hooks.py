"""Schemathesis hooks (SCHEMATHESIS_HOOKS=tests.e2e.schemathesis_hooks): sign generated webhook
bodies, so the fuzzer reaches the parser and the relay, not just the signature check."""

from __future__ import annotations

import json
import os
from typing import Any

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
