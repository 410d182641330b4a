"""Invoice ids from Idempotency-Keys: keyed, so not worked out by anyone without the codec
key; and an id made before a key rotation, or before ids were keyed, still found."""

from __future__ import annotations

import base64
import os
import uuid

from sqlalchemy import Engine

from api.routers.invoices import invoice_id_for, invoice_ids_for, known_invoice_id
from config import CodecKey
from db.projection import apply_snapshot
from tests.mailbox import paid_invoice


def _key(key_id: str) -> CodecKey:
    return CodecKey.parse(f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}")


def test_an_id_is_keyed_and_scoped_to_its_caller() -> None:
    first, second = _key("k1"), _key("k2")
    current, legacy = invoice_ids_for("shop", "order-1042", [first])
    assert current != legacy and current.startswith("inv-") and len(current) == len(legacy)
    # Another key, another caller: other ids; the same inputs: the same id.
    assert invoice_id_for("shop", "order-1042", [second]) != current
    assert invoice_id_for("school", "order-1042", [first]) != current
    assert invoice_id_for("shop", "order-1042", [first, second]) == current


def test_an_id_made_before_a_rotation_or_before_keyed_ids_is_found(engine: Engine) -> None:
    old, new = _key("old"), _key("new")
    order = f"order-{uuid.uuid4()}"
    made_before_rotation = invoice_id_for("shop", order, [old])
    # Nothing made yet: a new invoice's id, under the newest key.
    assert known_invoice_id(engine, "shop", order, [new, old]) == invoice_id_for(
        "shop", order, [new]
    )
    assert apply_snapshot(engine, paid_invoice(made_before_rotation, caller="shop"))
    assert known_invoice_id(engine, "shop", order, [new, old]) == made_before_rotation

    unkeyed_order = f"order-{uuid.uuid4()}"
    *_, unkeyed = invoice_ids_for("shop", unkeyed_order, [new])
    assert apply_snapshot(engine, paid_invoice(unkeyed, caller="shop"))
    assert known_invoice_id(engine, "shop", unkeyed_order, [new]) == unkeyed
