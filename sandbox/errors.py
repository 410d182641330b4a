"""Paystack-style error envelopes: `{"status": false, "message", "type"?, "code"?, "meta"?}`."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse


class PaystackError(Exception):
    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        error_type: str | None = None,
        code: str | None = None,
        next_step: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.error_type = error_type
        self.code = code
        self.next_step = next_step

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": False, "message": self.message}
        if self.next_step is not None:
            body["meta"] = {"nextStep": self.next_step}
        if self.error_type is not None:
            body["type"] = self.error_type
        if self.code is not None:
            body["code"] = self.code
        return body


def invalid_key() -> PaystackError:
    return PaystackError(401, "Invalid key")


def validation_error(
    message: str,
    code: str = "invalid_params",
    *,
    status_code: int = 400,
    next_step: str | None = None,
) -> PaystackError:
    return PaystackError(
        status_code, message, error_type="validation_error", code=code, next_step=next_step
    )


def reference_not_found() -> PaystackError:
    return validation_error(
        "Transaction reference not found", "transaction_not_found", status_code=404
    )


async def handle_paystack_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PaystackError)
    return JSONResponse(exc.body(), status_code=exc.status_code)
