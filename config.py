"""Settings for every payrecon process, read from environment variables.

The defaults run the whole stack on one laptop against the local Paystack
sandbox. Production sets every value through the environment.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from domain import events, pricing
from domain.invoice import DEFAULT_CALLER
from domain.refunds import REFUND_POLL_SCHEDULE

# The sandbox's dev key: printed by `make run`, useless against real Paystack.
DEV_PAYSTACK_SECRET_KEY = "sk_test_payrecon_sandbox_0000000000000000"  # noqa: S105
DEV_API_KEY = "dev-api-key-change-me"
PAYSTACK_LIVE_HOST = "api.paystack.co"
MIN_API_KEY_LENGTH = 32
# The payload codec's dev key (AES-256): published here, so it hides nothing. Development
# mode encrypts with it when PAYRECON_CODEC_KEYS is empty; outside it, it is refused.
DEV_CODEC_KEY_ID = "payrecon-dev"
DEV_CODEC_KEY_BYTES = b"payrecon-published-dev-codec-key"
DEV_CODEC_KEY = f"{DEV_CODEC_KEY_ID}:{base64.b64encode(DEV_CODEC_KEY_BYTES).decode()}"
CODEC_KEY_BYTES = 32
CODEC_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# make run's Temporal UI, the origin allowed to call /codec in development mode.
DEV_TEMPORAL_UI_ORIGIN = "http://localhost:8233"

# 1 m, 5 m, 15 m, 1 h, 3 h, 6 h, 12 h; the last interval repeats.
DEFAULT_POLL_SCHEDULE = (60.0, 300.0, 900.0, 3600.0, 10800.0, 21600.0, 43200.0)
# Paystack retries a webhook for 72 hours in live mode.
DEFAULT_LATE_PAYMENT_WINDOW = 72 * 3600.0


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


CALLER_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
OPERATOR = "operator"
# Names no API key may have: operator events are stored under this caller.
RESERVED_CALLERS = frozenset({events.OPERATORS})


@dataclass(frozen=True)
class ApiKey:
    """One of PAYRECON_API_KEYS: `key`, `name:key` or `name:key:operator`. Several keys may
    share a name (a key rotates without orphaning its invoices); an operator's key sees
    every caller's invoices."""

    caller: str
    key: SecretStr
    operator: bool = False

    @classmethod
    def parse(cls, entry: str) -> ApiKey:
        parts = entry.split(":")
        if len(parts) == 1:
            return cls(DEFAULT_CALLER, SecretStr(parts[0]))
        if len(parts) > 3 or (len(parts) == 3 and parts[2] != OPERATOR):
            raise ValueError("each key is 'key', 'name:key' or 'name:key:operator'")
        if not CALLER_NAME.fullmatch(parts[0]):
            raise ValueError("a caller's name is 1 to 64 of A-Z a-z 0-9 . _ -")
        if parts[0] in RESERVED_CALLERS:
            raise ValueError(f"{parts[0]!r} is reserved: operators' events are addressed to it")
        return cls(parts[0], SecretStr(parts[1]), operator=len(parts) == 3)

    def as_setting(self) -> str:
        flag = f":{OPERATOR}" if self.operator else ""
        return f"{self.caller}:{self.key.get_secret_value()}{flag}"


@dataclass(frozen=True)
class CodecKey:
    """One AES-256 key of the payload codec; its id goes into every payload it encrypts, so
    the right key is found after a rotation."""

    key_id: str
    key: bytes = field(repr=False)

    @classmethod
    def parse(cls, entry: str) -> CodecKey:
        """`key_id:base64-of-32-bytes`; the errors never quote the key itself."""
        key_id, separator, encoded = (part.strip() for part in entry.partition(":"))
        if not separator or not CODEC_KEY_ID.fullmatch(key_id):
            raise ValueError(
                "each key is key_id:base64-of-32-bytes, the id of letters, digits, '.', '_', '-'"
            )
        try:
            key = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise ValueError(f"key {key_id!r} is not base64") from None
        if len(key) != CODEC_KEY_BYTES:
            raise ValueError(f"key {key_id!r} is {len(key)} bytes, not {CODEC_KEY_BYTES}")
        return cls(key_id, key)


class Settings(BaseSettings):
    # A setting's value is never echoed in a validation error: many are secrets.
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", hide_input_in_errors=True)

    paystack_secret_key: SecretStr = SecretStr(DEV_PAYSTACK_SECRET_KEY)
    paystack_base_url: str = "http://127.0.0.1:8100"
    paystack_timeout_seconds: float = 10.0
    paystack_callback_url: str | None = None

    # How to reach Temporal (address, namespace, TLS, API key) is the SDK's own
    # configuration: see temporal_config.py.
    temporal_task_queue: str = "payrecon-invoices"
    # Paystack calls run on their own queue, so one rate cap covers every worker.
    temporal_paystack_task_queue: str = "payrecon-paystack"
    paystack_max_calls_per_second: float | None = Field(None, gt=0)
    # The worker's Temporal SDK metrics for Prometheus (host:port); empty turns them off.
    payrecon_worker_metrics_address: str = "127.0.0.1:9464"

    database_url: str = "sqlite:///.data/payrecon.db"

    # Local development only (make run, the tests): the published dev keys and short API
    # keys are accepted. Outside it, payrecon refuses to start with them.
    payrecon_development_mode: bool = False
    payrecon_api_keys: Annotated[list[ApiKey], NoDecode] = Field(
        default_factory=lambda: [ApiKey(DEFAULT_CALLER, SecretStr(DEV_API_KEY))]
    )
    payrecon_poll_schedule: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_POLL_SCHEDULE)
    )
    payrecon_late_payment_window: float = Field(DEFAULT_LATE_PAYMENT_WINDOW, ge=0)
    # Seconds between checks with Paystack of a refund in flight, the last repeating.
    payrecon_refund_poll_schedule: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: list(REFUND_POLL_SCHEDULE)
    )
    # How long POST /invoices/{id}/refunds waits for Paystack before answering 202.
    payrecon_refund_answer_seconds: float = Field(10.0, gt=0, le=25)
    payrecon_default_due_in: float = Field(86400.0, gt=0)
    # A run continues as new when Temporal suggests it (at 4 Ki events), or after this many
    # history events if set: a tighter bound on history size.
    payrecon_continue_as_new_after_events: int | None = Field(None, ge=20)
    # How long POST /invoices waits for the workflow to produce the payment link.
    payrecon_create_timeout_seconds: float = Field(30.0, gt=0)
    payrecon_log_level: str = "INFO"
    # GET /metrics: with a key, for holders of it alone (Authorization: Bearer <key>);
    # without one, for clients on this machine only.
    payrecon_metrics_key: SecretStr | None = None
    # A scrape reads the database at most this often; between, it answers what it read.
    payrecon_metrics_refresh_seconds: float = Field(15.0, ge=0)
    # /docs, /redoc and /openapi.json; false turns all three off.
    payrecon_docs: bool = True
    # When POST /webhooks/paystack answers 200: once the delivery is committed (it is then
    # relayed to its workflow), or only once Temporal has the signal (503 when it is down,
    # so Paystack retries too; the committed delivery is relayed all the same).
    payrecon_webhook_ack: Literal["committed", "signalled"] = "committed"
    # Accepted webhooks are relayed from the database: how long one process may hold a
    # delivery before another takes it up, and how often each process looks for such.
    payrecon_relay_lease_seconds: float = Field(30.0, gt=0)
    payrecon_relay_scan_seconds: float = Field(1.0, gt=0)
    # Webhooks only from these addresses or networks (empty: from anywhere). Paystack's:
    # 52.31.139.75,52.49.173.169,52.214.14.220
    payrecon_webhook_allowed_ips: Annotated[list[IPv4Network | IPv6Network], NoDecode] = Field(
        default_factory=list
    )
    # Relayed webhook deliveries (redacted) are deleted after this many days, daily.
    payrecon_webhook_retention_days: int = Field(90, ge=1)
    # Behind proxies: the header they write the client address into (e.g. X-Forwarded-For),
    # believed only from these proxies' addresses (CIDRs); the right-most address in it that
    # is not one of them is the client (api/forwarded.py).
    payrecon_trusted_proxy_header: str | None = None
    payrecon_trusted_proxies: Annotated[list[IPv4Network | IPv6Network], NoDecode] = Field(
        default_factory=list
    )
    # Requests a second each caller may make to the authenticated routes, per API process
    # (twice as many at once); 0 turns the limit off.
    payrecon_caller_rate_limit: float = Field(50.0, ge=0)
    # Webhook endpoints one caller may have.
    payrecon_max_endpoints_per_caller: int = Field(16, ge=1)
    # Where each caller's success_url and cancel_url may lead, outside development mode:
    # `shop:a.example,b.example;school:learn.example` (exact hosts). A caller with no entry
    # gives no redirect URL.
    payrecon_redirect_hosts: Annotated[dict[str, frozenset[str]], NoDecode] = Field(
        default_factory=dict
    )
    # Workflow payloads are encrypted in Temporal (temporal_codec.py) under these keys:
    # key_id:base64-of-32-bytes, comma-separated. The first encrypts, every one decrypts, so a
    # new key goes first and old ones stay while histories need them. Required outside
    # development mode; empty in it, the published dev key.
    payrecon_codec_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    # Bearer tokens for the codec endpoint (/codec), which decrypts for whoever calls it.
    # None set: open to this machine in development mode, turned off (403) outside it.
    payrecon_codec_tokens: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    # The Temporal UI's origin (scheme://host:port), the one site whose pages may call /codec.
    # Unset: make run's UI in development mode, no site outside it.
    payrecon_temporal_ui_origin: str | None = None
    # Search attributes are stored in clear (the codec does not reach them): CustomerEmail is
    # set only when this is on. Unset: on in development mode, off outside it.
    payrecon_customer_email_search_attribute: bool | None = None

    # Events to merchants' endpoints: seconds between attempts (the last repeats, each with
    # jitter), for how long they go on, and how long one attempt may take.
    payrecon_event_retry_schedule: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: list(events.RETRY_SCHEDULE)
    )
    payrecon_event_retry_for_seconds: float = Field(events.RETRY_FOR_SECONDS, gt=0)
    payrecon_event_timeout_seconds: float = Field(events.ATTEMPT_TIMEOUT_SECONDS, gt=0)
    # An endpoint whose every delivery has failed for this long is disabled.
    payrecon_endpoint_disable_after_seconds: float = Field(events.DISABLE_AFTER_SECONDS, gt=0)
    # Each worker's delivery loop: attempts under way at once, overall and to one endpoint
    # (a slow merchant holds only its own share), and how often it looks for due ones
    # (besides at once, when this worker records a change).
    payrecon_delivery_concurrency: int = Field(64, ge=1)
    payrecon_delivery_concurrency_per_endpoint: int = Field(8, ge=1)
    payrecon_delivery_scan_seconds: float = Field(1.0, gt=0)
    # The customer's emails (receipts, invoices): smtp://[user:password@]host[:port], or
    # smtps:// for TLS from the start, ?starttls=true to upgrade. Unset: no emails.
    smtp_url: SecretStr | None = None
    payrecon_email_from: str = "payrecon <receipts@payrecon.localhost>"
    # How long the checkout return keeps asking Paystack while it says ongoing or pending.
    payrecon_checkout_wait_seconds: float = Field(10.0, ge=0)

    # Reconciliation against Paystack's books: the sweep runs every `interval` over the
    # trailing `window`, ending `grace` before now (webhooks still in flight are not
    # discrepancies), and daily over the whole previous UTC day.
    payrecon_recon_interval_seconds: float = Field(900.0, gt=0)
    payrecon_recon_window_seconds: float = Field(86400.0, gt=0)
    payrecon_recon_grace_seconds: float = Field(600.0, ge=0)
    # Records per page of Paystack's lists: one activity each.
    payrecon_recon_page_size: int = Field(100, ge=1, le=1000)
    # A payment not in any settlement this long after it was paid is `unsettled`.
    payrecon_unsettled_after_days: float = Field(3.0, gt=0)
    # The agreed pricing each transaction's fees are checked against (domain/pricing.py):
    # a JSON list of prices; unset, Paystack's published Nigerian pricing.
    payrecon_pricing: Annotated[tuple[pricing.Price, ...], NoDecode] = pricing.NIGERIA
    # The country of the Paystack account: cards issued elsewhere are international.
    payrecon_account_country: str = Field("NG", pattern=r"^[A-Z]{2}$")

    @field_validator("payrecon_pricing", mode="before")
    @classmethod
    def _pricing_table(cls, value: object) -> object:
        return pricing.parse_pricing(value) if isinstance(value, str) else value

    @field_validator(
        "payrecon_poll_schedule",
        "payrecon_refund_poll_schedule",
        "payrecon_event_retry_schedule",
        "payrecon_webhook_allowed_ips",
        "payrecon_trusted_proxies",
        "payrecon_codec_keys",
        "payrecon_codec_tokens",
        mode="before",
    )
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator(
        "payrecon_poll_schedule", "payrecon_refund_poll_schedule", "payrecon_event_retry_schedule"
    )
    @classmethod
    def _positive_intervals(cls, value: list[float]) -> list[float]:
        if not value or any(interval <= 0 for interval in value):
            raise ValueError("needs one or more positive numbers of seconds")
        return value

    @field_validator("payrecon_redirect_hosts", mode="before")
    @classmethod
    def _hosts_by_caller(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        hosts: dict[str, frozenset[str]] = {}
        for entry in filter(None, (part.strip() for part in value.split(";"))):
            caller, separator, listed = entry.partition(":")
            caller = caller.strip()
            if not separator or not CALLER_NAME.fullmatch(caller) or caller in hosts:
                raise ValueError(
                    "each entry is caller:host,host (entries apart by ';', a caller once)"
                )
            names = {host.strip().lower().rstrip(".") for host in listed.split(",")}
            hosts[caller] = frozenset(filter(None, names))
        return hosts

    @field_validator("payrecon_api_keys", mode="before")
    @classmethod
    def _named_api_keys(cls, value: object) -> object:
        entries = _split_csv(value)
        if not isinstance(entries, list):
            return entries
        return [
            ApiKey.parse(entry.get_secret_value() if isinstance(entry, SecretStr) else entry)
            if isinstance(entry, str | SecretStr)
            else entry
            for entry in entries
        ]

    @field_validator("payrecon_api_keys")
    @classmethod
    def _some_api_key(cls, value: list[ApiKey]) -> list[ApiKey]:
        if not value:
            raise ValueError("needs at least one API key")
        mixed = {k.caller for k in value if k.operator} & {
            k.caller for k in value if not k.operator
        }
        if mixed:
            raise ValueError(
                f"{', '.join(sorted(mixed))}: a caller is an operator on every key or on none"
            )
        return value

    @property
    def operator_callers(self) -> frozenset[str]:
        """The callers whose keys are operators' now: their endpoints take operator events."""
        return frozenset(key.caller for key in self.payrecon_api_keys if key.operator)

    @field_validator("payrecon_codec_keys")
    @classmethod
    def _codec_keys_parse(cls, value: list[SecretStr]) -> list[SecretStr]:
        ids = [CodecKey.parse(key.get_secret_value()).key_id for key in value]
        if len(set(ids)) != len(ids):
            raise ValueError("each key id may appear once")
        return value

    @field_validator("payrecon_temporal_ui_origin")
    @classmethod
    def _an_origin(cls, value: str | None) -> str | None:
        if not value:
            return value
        origin = value.strip().rstrip("/")
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
            raise ValueError("an origin is scheme://host[:port], e.g. https://temporal.example")
        return origin

    @property
    def codec_keys(self) -> list[CodecKey]:
        """The payload codec's keys, the one that encrypts first."""
        keys = [CodecKey.parse(key.get_secret_value()) for key in self.payrecon_codec_keys]
        if not keys and self.payrecon_development_mode:
            return [CodecKey.parse(DEV_CODEC_KEY)]
        return keys

    @property
    def temporal_ui_origin(self) -> str | None:
        if self.payrecon_temporal_ui_origin is not None:
            return self.payrecon_temporal_ui_origin or None
        return DEV_TEMPORAL_UI_ORIGIN if self.payrecon_development_mode else None

    @property
    def customer_email_search_attribute(self) -> bool:
        if self.payrecon_customer_email_search_attribute is not None:
            return self.payrecon_customer_email_search_attribute
        return self.payrecon_development_mode

    @model_validator(mode="after")
    def _no_dev_secrets_against_paystack(self) -> Settings:
        # However the address is written: a trailing :443 or slash, upper case, spaces.
        host = urlsplit(self.paystack_base_url.strip()).hostname or ""
        if host.lower() == PAYSTACK_LIVE_HOST:
            if self.paystack_secret_key.get_secret_value() == DEV_PAYSTACK_SECRET_KEY:
                raise ValueError(
                    "PAYSTACK_SECRET_KEY must be set to a real key for api.paystack.co"
                )
            if any(key.key.get_secret_value() == DEV_API_KEY for key in self.payrecon_api_keys):
                raise ValueError("PAYRECON_API_KEYS must not contain the dev key in production")
            if any(key.key == DEV_CODEC_KEY_BYTES for key in self.codec_keys):
                raise ValueError("PAYRECON_CODEC_KEYS must be set to real keys for api.paystack.co")
        return self

    @model_validator(mode="after")
    def _no_weak_secrets_outside_development(self) -> Settings:
        if self.payrecon_development_mode:
            return self
        secret = self.paystack_secret_key.get_secret_value()
        problems = []
        if secret == DEV_PAYSTACK_SECRET_KEY:
            problems.append("PAYSTACK_SECRET_KEY is the sandbox's published dev key")
        scheme = urlsplit(self.paystack_base_url.strip()).scheme.lower()
        if secret.startswith("sk_live_") and scheme != "https":
            problems.append("a live PAYSTACK_SECRET_KEY is only sent over https")
        for key in self.payrecon_api_keys:
            value = key.key.get_secret_value()
            if value == DEV_API_KEY:
                problems.append("PAYRECON_API_KEYS holds the published dev key")
            elif len(value) < MIN_API_KEY_LENGTH:
                problems.append(
                    f"PAYRECON_API_KEYS: every key needs {MIN_API_KEY_LENGTH} characters or "
                    f"more (one has {len(value)})"
                )
        metrics_key = self.payrecon_metrics_key
        if metrics_key is not None and len(metrics_key.get_secret_value()) < MIN_API_KEY_LENGTH:
            problems.append(f"PAYRECON_METRICS_KEY needs {MIN_API_KEY_LENGTH} characters or more")
        if not self.payrecon_codec_keys:
            problems.append(
                "PAYRECON_CODEC_KEYS is required (key_id:base64 of 32 random bytes), to encrypt "
                "invoice data in Temporal"
            )
        elif any(key.key == DEV_CODEC_KEY_BYTES for key in self.codec_keys):
            problems.append("PAYRECON_CODEC_KEYS holds the published dev key")
        tokens = self.payrecon_codec_tokens
        if any(len(token.get_secret_value()) < MIN_API_KEY_LENGTH for token in tokens):
            problems.append(
                f"PAYRECON_CODEC_TOKENS: every token needs {MIN_API_KEY_LENGTH} characters or more"
            )
        if problems:
            raise ValueError(
                "refusing to start with unsafe secrets: "
                + "; ".join(problems)
                + ". Set real ones, or PAYRECON_DEVELOPMENT_MODE=true on a developer's machine"
            )
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
