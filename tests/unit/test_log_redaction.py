"""What the processes write: no Paystack secret key, bearer token, authorization code or
card number, whether it comes in an event's values at any depth or in the text of an
exception, logged by payrecon or by a library through the standard library (uvicorn's
own loggers included)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import structlog
import uvicorn

from log import configure_logging

SECRETS = ("sk_live_abc123", "Bearer xyz", "AUTH_abc123")
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
CARDS = ("4084084084084081", "5060666666666666666", "4084 0840 8408 4081", "4084-0840-8408-4081")


@contextmanager
def logging_to(*, json_output: bool, under_uvicorn: bool = False) -> Iterator[None]:
    """configure_logging, on the stderr that capsys captures; all it set put back after.
    `under_uvicorn`: uvicorn has set up its logging first, as in `python -m api`."""
    loggers = [logging.getLogger(name) for name in ("", "httpx", *UVICORN_LOGGERS)]
    saved = [(logger, logger.handlers[:], logger.level, logger.propagate) for logger in loggers]
    configured, config = structlog.is_configured(), structlog.get_config()
    try:
        if under_uvicorn:
            uvicorn.Config(
                "api.main:create_app", factory=True, log_level="warning", access_log=False
            )
        configure_logging("INFO", json_output=json_output)
        yield
    finally:
        if configured:
            structlog.configure(**config)
        else:
            structlog.reset_defaults()
        for logger, handlers, level, propagate in saved:
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.propagate = propagate


def _fail() -> None:
    raise RuntimeError(f"Paystack said no to {' and '.join(SECRETS)} for card {CARDS[0]}")


@pytest.mark.parametrize("json_output", [True, False], ids=["json", "console"])
def test_an_exception_logged_by_payrecon_is_redacted(
    capsys: pytest.CaptureFixture[str], json_output: bool
) -> None:
    with logging_to(json_output=json_output):
        try:
            _fail()
        except RuntimeError:
            structlog.get_logger("test").exception("paystack.failed")
    written = capsys.readouterr().err
    for secret in (*SECRETS, CARDS[0]):
        assert secret not in written
    assert "paystack.failed" in written and "RuntimeError: Paystack said no" in written


@pytest.mark.parametrize("json_output", [True, False], ids=["json", "console"])
def test_an_exception_logged_through_the_standard_library_is_redacted(
    capsys: pytest.CaptureFixture[str], json_output: bool
) -> None:
    with logging_to(json_output=json_output):
        try:
            _fail()
        except RuntimeError:
            logging.getLogger("x").exception("verify failed with %s", "Bearer xyz")
    written = capsys.readouterr().err
    for secret in (*SECRETS, CARDS[0]):
        assert secret not in written
    assert "verify failed with Bearer [redacted]" in written
    assert "RuntimeError: Paystack said no" in written


def test_an_exception_uvicorn_logs_goes_through_the_redactor_too(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Starlette re-raises what the API's handler has logged; uvicorn logs it again."""
    with logging_to(json_output=True, under_uvicorn=True):
        try:
            _fail()
        except RuntimeError as error:
            logging.getLogger("uvicorn.error").error(
                "Exception in ASGI application\n", exc_info=error
            )
    written = capsys.readouterr().err
    for secret in (*SECRETS, CARDS[0]):
        assert secret not in written
    assert '"event": "Exception in ASGI application' in written


def test_nested_values_are_redacted_at_any_depth(capsys: pytest.CaptureFixture[str]) -> None:
    payload = {
        "event": "charge.success",
        "data": {
            "reference": "inv-4cead534dc021a3a2371d98b",
            "authorization": {"authorization_code": "AUTH_x", "bin": "408408"},
            "cards": ["4084 0840 8408 4081"],
            "attempts": ({"note": "retried with sk_live_abc123"},),
            "headers": {"X-Paystack-Signature": "f00dfeed", "api-key": "k3y"},
        },
    }
    with logging_to(json_output=True):
        structlog.get_logger("test").info("webhook.payload", payload=payload, tags={"AUTH_y"})
    written = capsys.readouterr().err
    for secret in ("AUTH_x", "AUTH_y", "4084 0840 8408 4081", "sk_live_abc123", "f00dfeed", "k3y"):
        assert secret not in written
    assert "inv-4cead534dc021a3a2371d98b" in written and "charge.success" in written


@pytest.mark.parametrize("card", CARDS)
def test_card_numbers_in_text_are_redacted_and_other_numbers_are_not(
    capsys: pytest.CaptureFixture[str], card: str
) -> None:
    kept = ("1234567812345678", "inv-4cead534dc021a3a2371d98b", "4099260516")
    message = f"order 12 paid with {card}; not a card: {', '.join(kept)}"
    with logging_to(json_output=True):
        structlog.get_logger("test").info(message, pan=int(CARDS[0]), transaction=4099260516)
    written = capsys.readouterr().err
    assert card not in written and CARDS[0] not in written
    assert "order 12 paid with [card]" in written
    for number in kept:
        assert number in written
