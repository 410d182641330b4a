"""A customer's bank account for a refund retry, kept sealed in the database for the few
seconds the retry takes (db/models.py's RefundBankAccount): the invoice's workflow and its
activity pass only the row's id, so the account is never in Temporal's history."""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, delete
from sqlmodel import Session, col

from config import CodecKey
from db.engine import write_session
from db.models import RefundBankAccount
from outbound.secrets import seal, unseal


@dataclass(frozen=True)
class BankAccount:
    account_number: str
    bank_id: str


def keep(engine: Engine, keys: Sequence[CodecKey], refund_id: str, account: BankAccount) -> str:
    """Seals and stores the account; the id to hand on."""
    account_id = f"rba_{secrets.token_hex(12)}"
    row = RefundBankAccount(
        id=account_id,
        refund_id=refund_id,
        sealed=seal(keys, json.dumps({"n": account.account_number, "b": account.bank_id})),
        created_at=datetime.now(UTC),
    )
    with write_session(engine) as session:
        session.add(row)
    return account_id


def read(engine: Engine, keys: Sequence[CodecKey], account_id: str) -> BankAccount | None:
    with Session(engine) as session:
        row = session.get(RefundBankAccount, account_id)
        if row is None:
            return None
        opened = json.loads(unseal(keys, row.sealed))
        return BankAccount(account_number=opened["n"], bank_id=opened["b"])


def forget(engine: Engine, account_id: str) -> None:
    with write_session(engine) as session:
        session.execute(delete(RefundBankAccount).where(col(RefundBankAccount.id) == account_id))
