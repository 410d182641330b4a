"""structlog set-up shared by every process: JSON lines when not on a terminal,
coloured key=value lines on one. Secrets are never passed to a logger; the redactor
below is a second line of defence for values that look like keys or card data.

The redactor runs last before the renderer, in both chains (our own events, and the
standard library's records from uvicorn, temporalio, SQLAlchemy): after exceptions
have become text, so a key or card in an exception's message is caught too. It walks
into dicts, lists, tuples and sets, and it checks the repr of any other value, which
is what the renderers print."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED = "[redacted]"
_SECRET_PATTERNS = (
    # Paystack secret keys (a public key, pk_…, is public), authorization codes.
    (re.compile(r"sk_(?:test|live)_[A-Za-z0-9]+"), REDACTED),
    (re.compile(r"\bAUTH_[A-Za-z0-9]+"), REDACTED),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9\-._~+/]+=*"), rf"\1 {REDACTED}"),
)
_SECRET_KEYS = frozenset(
    {
        *("authorization", "proxy_authorization", "authorization_code", "signature"),
        *("secret_key", "paystack_secret_key", "api_key", "x_api_key", "password"),
        *("token", "access_token", "refresh_token", "cookie", "set_cookie"),
        "x_paystack_signature",
    }
)
# Digit groups joined by single spaces or dashes, not part of a longer word or id
# (an invoice id like inv-4cead534…, a UUID). Cards are looked for inside each run.
_DIGIT_RUN = re.compile(r"(?<![\w-])[0-9]+(?:[ -][0-9]+)*(?![\w-])")
_DIGIT_GROUP = re.compile(r"[0-9]+")
_MAX_DEPTH = 16


def _luhn_valid(digits: str) -> bool:
    total = 0
    for position, digit in enumerate(reversed(digits)):
        value = int(digit) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _mask_cards(run: str) -> str:
    """`run` with the first span of whole digit groups that is a card number (13 to 19
    digits passing the Luhn check) masked, and so on for the rest of it."""
    groups = list(_DIGIT_GROUP.finditer(run))
    for index, first in enumerate(groups):
        digits = ""
        for last in groups[index:]:
            digits += last.group()
            if len(digits) > 19:
                break
            if len(digits) >= 13 and _luhn_valid(digits):
                return run[: first.start()] + "[card]" + _mask_cards(run[last.end() :])
    return run


def _redact_text(text: str) -> str:
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return _DIGIT_RUN.sub(lambda run: _mask_cards(run.group()), text)


def _is_secret_key(key: object) -> bool:
    return isinstance(key, str) and key.lower().replace("-", "_") in _SECRET_KEYS


def _redact(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return _redact_text(value)
    if depth < _MAX_DEPTH:
        if isinstance(value, Mapping):
            return {
                key: REDACTED if _is_secret_key(key) else _redact(item, depth + 1)
                for key, item in value.items()
            }
        if isinstance(value, list | tuple):
            items = [_redact(item, depth + 1) for item in value]
            return items if isinstance(value, list) else tuple(items)
        if isinstance(value, set | frozenset):
            members = {_redact(item, depth + 1) for item in value}
            return frozenset(members) if isinstance(value, frozenset) else members
    # Anything else (numbers, exceptions, models, anything nested deeper) is printed as
    # its repr: replaced by the redacted repr when that differs.
    text = repr(value)
    redacted = _redact_text(text)
    return value if redacted == text else redacted


def redact_secrets(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Values under secret-looking keys, at any depth, and secret-looking text anywhere."""
    redacted: EventDict = _redact(event_dict)
    return redacted


def configure_logging(level: str = "INFO", *, json_output: bool | None = None) -> None:
    if json_output is None:
        json_output = not sys.stderr.isatty()
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if json_output
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    # Exceptions become text first, and the redactor sees that text.
    last: list[Processor] = [structlog.processors.format_exc_info, redact_secrets, renderer]
    structlog.configure(
        processors=[*shared, *last],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    # Route the standard library's records (uvicorn, temporalio) through the same chain.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            # ExtraAdder keeps Temporal's `temporal_workflow` / `temporal_activity` context.
            foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *last],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn gives its loggers handlers of their own (before the app's lifespan calls
    # this), which would print "Exception in ASGI application" tracebacks past the
    # redactor: they go through the root's instead. A silenced access log stays silent.
    for name in ("uvicorn", "uvicorn.access"):
        library = logging.getLogger(name)
        if library.handlers:
            library.handlers.clear()
            library.propagate = True
    logging.getLogger("httpx").setLevel(logging.WARNING)
