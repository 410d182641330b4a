"""Signing an event the Standard Webhooks way (https://www.standardwebhooks.com): the
`webhook-id`, `webhook-timestamp` and `webhook-signature` headers, made by the
`standardwebhooks` library. During a secret's rotation both secrets sign, space-separated,
and a receiver with either one verifies."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from standardwebhooks import Webhook


def signed_headers(
    event_id: str, payload: str, secrets: Sequence[str], at: datetime
) -> dict[str, str]:
    signatures = " ".join(Webhook(secret).sign(event_id, at, payload) for secret in secrets)
    return {
        "content-type": "application/json",
        "user-agent": "payrecon",
        "webhook-id": event_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signatures,
    }
