"""structlog set-up shared by every process: JSON lines when not on a terminal,
coloured key=value lines on one. Secrets are never passed to a logger; the redactor
below is a second line of defence for values that look like keys or card data."""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog

_SECRET_PATTERNS = (
    re.compile(r"sk_(test|live)_[A-Za-z0-9]+"),
    re.compile(r"AUTH_[A-Za-z0-9]+"),
    re.compile(r"Bearer\s+\S+"),
)
_SECRET_KEYS = {"authorization", "secret_key", "api_key", "paystack_secret_key", "password"}


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        for pattern in _SECRET_PATTERNS:
            value = pattern.sub("[redacted]", value)
    return value


def redact_secrets(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    for key, value in list(event_dict.items()):
        event_dict[key] = "[redacted]" if key.lower() in _SECRET_KEYS else _redact_value(value)
    return event_dict


def configure_logging(level: str = "INFO", *, json_output: bool | None = None) -> None:
    if json_output is None:
        json_output = not sys.stderr.isatty()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_output
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    # Route the standard library's records (uvicorn, temporalio) through the same renderer.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            # ExtraAdder keeps Temporal's `temporal_workflow` / `temporal_activity` context.
            foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("httpx").setLevel(logging.WARNING)
