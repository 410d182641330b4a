"""Reading and validating POST /transaction/initialize the way Paystack does."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from fastapi import Request

from sandbox.errors import validation_error
from sandbox.store import NewTransaction

# Smallest amount Paystack accepts per currency, in subunits.
CURRENCY_MINIMUMS: dict[str, int] = {"NGN": 5000, "USD": 200, "GHS": 10, "ZAR": 100, "KES": 300}
DEFAULT_CURRENCY = "NGN"

_REFERENCE = re.compile(r"[A-Za-z0-9.=-]+")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

INVALID_AMOUNT = "Invalid Amount Sent"
INVALID_EMAIL = "Invalid Email Address Passed"
INVALID_REFERENCE = "Invalid character in transaction reference"
UNSUPPORTED_CURRENCY = "Currency not supported by merchant"


async def read_params(request: Request) -> dict[str, Any] | None:
    """The body as a dict, from JSON or a form; None when it cannot be read."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in _FORM_TYPES:
        form = await request.form()
        params: dict[str, Any] = {}
        for key in set(form.keys()):
            values = [v for v in form.getlist(key) if isinstance(v, str)]
            # PHP-style `channels[]=card` and repeated keys both mean a list.
            if key.endswith("[]") or len(values) > 1:
                params[key.removesuffix("[]")] = values
            elif values:
                params[key] = values[0]
        return params
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def raw_reference(params: Mapping[str, Any] | None) -> str | None:
    """The reference as sent, valid or not: call counters are kept per reference."""
    if not params:
        return None
    reference = params.get("reference")
    if isinstance(reference, str | int) and not isinstance(reference, bool):
        return str(reference) or None
    return None


def parse_initialize(params: Mapping[str, Any]) -> NewTransaction:
    email = params.get("email")
    amount_param = params.get("amount")
    if email is None or (isinstance(email, str) and not email.strip()):
        raise validation_error(INVALID_EMAIL, "missing_params")
    if amount_param is None or amount_param == "":
        raise validation_error(INVALID_AMOUNT, "missing_params")

    amount = _parse_amount(amount_param)
    if amount is None or amount <= 0:
        raise validation_error(INVALID_AMOUNT, next_step="Ensure that you provide a valid amount")
    if not isinstance(email, str) or not _EMAIL.fullmatch(email.strip()):
        raise validation_error(INVALID_EMAIL)

    currency_param = params.get("currency") or DEFAULT_CURRENCY
    currency = currency_param.strip().upper() if isinstance(currency_param, str) else ""
    if currency not in CURRENCY_MINIMUMS:
        raise validation_error(UNSUPPORTED_CURRENCY)
    if amount < CURRENCY_MINIMUMS[currency]:
        raise validation_error(INVALID_AMOUNT, next_step="Ensure that you provide a valid amount")

    reference = raw_reference(params)
    if params.get("reference") not in (None, "") and reference is None:
        raise validation_error(INVALID_REFERENCE)
    if reference is not None and not _REFERENCE.fullmatch(reference):
        raise validation_error(INVALID_REFERENCE)

    callback_url = params.get("callback_url")
    return NewTransaction(
        email=email.strip(),
        amount=amount,
        currency=currency,
        reference=reference,
        callback_url=callback_url if isinstance(callback_url, str) and callback_url else None,
        metadata=_parse_metadata(params.get("metadata")),
        channels=_parse_channels(params.get("channels")),
    )


def _parse_amount(value: Any) -> int | None:
    # bool is an int subclass; `true` is no amount.
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    # Paystack runs on JavaScript, where 5000.0 and 5000 are the same number.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    return None


def _parse_metadata(value: Any) -> Any:
    """Objects are kept; a JSON string (the only form a form body can carry) is decoded."""
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _parse_channels(value: Any) -> list[str] | None:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = value.split(",")
    if isinstance(value, list):
        channels = [str(c).strip() for c in value if str(c).strip()]
        return channels or None
    return None
