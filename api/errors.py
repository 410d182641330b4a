"""Failures as HTTP answers, in one place: the workflow's and Paystack's error types mapped
to status codes, and Temporal's many ways of being out of reach mapped to a 503."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import HTTPException, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from temporalio.client import RPCTimeoutOrCancelledError, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from domain.errors import ErrorType

log = structlog.get_logger(__name__)

# What each error type answers; `{message}` is the error's own words.
ANSWERS: dict[str, tuple[int, str]] = {
    ErrorType.IDEMPOTENCY_CONFLICT: (status.HTTP_409_CONFLICT, "{message}"),
    ErrorType.INVOICE_FINAL: (status.HTTP_409_CONFLICT, "{message}"),
    ErrorType.INVOICE_NOT_READY: (status.HTTP_409_CONFLICT, "{message}"),
    ErrorType.INVOICE_NOT_FOUND: (status.HTTP_404_NOT_FOUND, "{message}"),
    ErrorType.NOTHING_TO_REFUND: (status.HTTP_409_CONFLICT, "{message}"),
    ErrorType.REFUND_TOO_LARGE: (status.HTTP_409_CONFLICT, "{message}"),
    ErrorType.PAYSTACK_REFUSED: (status.HTTP_409_CONFLICT, "Paystack refused: {message}"),
    ErrorType.REFUND_NOT_FOUND: (status.HTTP_404_NOT_FOUND, "{message}"),
    ErrorType.REFUND_NOT_RETRYABLE: (status.HTTP_409_CONFLICT, "{message}"),
    ErrorType.DISPUTE_NOT_FOUND: (status.HTTP_404_NOT_FOUND, "{message}"),
    ErrorType.DISPUTE_NOT_OPEN: (status.HTTP_409_CONFLICT, "{message}"),
    ErrorType.PAYSTACK_REJECTED: (
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        "Paystack refused the transaction: {message}",
    ),
    ErrorType.PAYSTACK_UNAUTHORIZED: (
        status.HTTP_502_BAD_GATEWAY,
        "Paystack refused payrecon's secret key; the operator must fix PAYSTACK_SECRET_KEY",
    ),
    ErrorType.PAYSTACK_UNAVAILABLE: (
        status.HTTP_503_SERVICE_UNAVAILABLE,
        "Paystack is unavailable ({message}); retry with the same Idempotency-Key",
    ),
}
TEMPORAL_UNAVAILABLE = "the workflow service is unavailable; retry (with the same Idempotency-Key)"


def refused(error: WorkflowUpdateFailedError) -> HTTPException:
    """The answer to an update the workflow refused."""
    cause = error.cause
    if not isinstance(cause, ApplicationError) or cause.type not in ANSWERS:
        log.warning("temporal.update_failed", error=str(cause))
        return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=str(cause))
    code, detail = ANSWERS[cause.type]
    if cause.type == ErrorType.PAYSTACK_UNAUTHORIZED:
        log.error("paystack.secret_key_refused")
    log.info("temporal.update_refused", error_type=cause.type, reason=cause.message)
    return HTTPException(code, detail=detail.format(message=cause.message))


async def invalid_request(request: Request, error: Exception) -> Response:
    """Unreadable JSON is a 400 (nothing to validate); values that fail validation, a 422
    naming each field."""
    assert isinstance(error, RequestValidationError)
    for problem in error.errors():
        if problem.get("type") == "json_invalid":
            reason = problem.get("ctx", {}).get("error", "it does not parse")
            return JSONResponse(
                {"detail": f"the body is not valid JSON: {reason}"},
                status_code=status.HTTP_400_BAD_REQUEST,
            )
    # The errors echo what was sent, which may hold NaN or Infinity: not JSON, so as text.
    return JSONResponse(
        {"detail": _as_json(jsonable_encoder(error.errors()))},
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


def _as_json(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _as_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_json(item) for item in value]
    return value


def unavailable(error: BaseException) -> HTTPException:
    log.warning("temporal.unavailable", error=str(error))
    return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=TEMPORAL_UNAVAILABLE)


@asynccontextmanager
async def temporal_call(deadline: float) -> AsyncIterator[None]:
    """Calls to Temporal inside this block end by `deadline` (the loop's clock). A refused
    update becomes its answer; Temporal out of reach, a 503. NOT_FOUND (no open workflow)
    is left to the caller, who knows what it means."""
    try:
        async with asyncio.timeout_at(deadline):
            yield
    except WorkflowUpdateFailedError as error:
        raise refused(error) from error
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise
        raise unavailable(error) from error
    # RuntimeError: the lazy client's first connect failed.
    except (TimeoutError, RPCTimeoutOrCancelledError, RuntimeError) as error:
        raise unavailable(error) from error
