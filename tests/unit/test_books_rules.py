"""The rules of reconciliation, pure: the pricing table, and what one Paystack record or
settlement shows against our books."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.discrepancies import (
    DiscrepancyKind,
    InvoiceFacts,
    judge_settlement,
    judge_transaction,
)
from domain.invoice import InvoiceStatus
from domain.pricing import NIGERIA, Origin, Price, expected_fee, origin_of, parse_pricing
from paystack.settlements import SettlementRecord
from paystack.transactions import TransactionRecord

AT = datetime(2026, 11, 23, 10, tzinfo=UTC)
NAIRA = 100


def local_fee(amount: int) -> int | None:
    return expected_fee(
        NIGERIA, amount=amount, currency="NGN", channel="card", card_country="NG",
        account_country="NG",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("naira", "fee_naira"),
    [
        (1_000, 15),  # under ₦2,500: 1.5 %, the ₦100 waived
        (2_499, 37.49),
        (2_500, 137.50),  # from ₦2,500: 1.5 % + ₦100
        (10_000, 250),
        (126_666, 1_999.99),
        (200_000, 2_000),  # capped at ₦2,000
        (5_000_000, 2_000),
    ],
)
def test_local_nigerian_pricing(naira: int, fee_naira: float) -> None:
    assert local_fee(naira * NAIRA) == round(fee_naira * NAIRA)


def test_international_cards_pay_3_9_percent_and_100_naira_uncapped() -> None:
    fee = expected_fee(
        NIGERIA, amount=1_000_000 * NAIRA, currency="NGN", channel="card",
        card_country="US", account_country="NG",
    )  # fmt: skip
    assert fee == 39_000 * NAIRA + 100 * NAIRA


def test_a_card_is_local_in_the_accounts_country_and_other_channels_always() -> None:
    assert origin_of("card", "NG", "NG") is Origin.LOCAL
    assert origin_of("card", "gh", "NG") is Origin.INTERNATIONAL
    assert origin_of("bank_transfer", "US", "NG") is Origin.LOCAL
    assert origin_of("card", None, "NG") is Origin.LOCAL


def test_a_currency_without_a_price_has_no_expected_fee() -> None:
    fee = expected_fee(
        NIGERIA, amount=1000, currency="GHS", channel="card", card_country="GH",
        account_country="NG",
    )  # fmt: skip
    assert fee is None


def test_a_channels_own_price_comes_before_the_any_channel_one() -> None:
    table = (*NIGERIA, Price("NGN", Origin.LOCAL, 50, channel="bank_transfer", cap=5_000))
    fee = expected_fee(
        table, amount=1_000_000, currency="NGN", channel="bank_transfer", card_country=None,
        account_country="NG",
    )  # fmt: skip
    assert fee == 5_000


def test_pricing_reads_from_json_and_refuses_nonsense() -> None:
    table = parse_pricing('[{"currency": "GHS", "origin": "local", "rate_bp": 195}]')
    assert table == (Price("GHS", Origin.LOCAL, 195),)
    for bad in ('{"currency": "GHS"}', '[{"currency": "GHS"}]', '[{"origin": "local", "x": 1}]'):
        with pytest.raises(ValueError):
            parse_pricing(bad)
    with pytest.raises(ValueError, match="never negative"):
        parse_pricing('[{"currency": "GHS", "origin": "local", "rate_bp": -1}]')


@given(st.integers(min_value=0, max_value=10**12))
def test_a_local_fee_never_passes_its_cap_nor_goes_negative(amount: int) -> None:
    fee = local_fee(amount)
    assert fee is not None and 0 <= fee <= 2_000 * NAIRA


PAYMENT = TransactionRecord(
    id=4_100_000_001, reference="inv-a", status="success", amount=500_000, currency="NGN",
    created_at=AT, paid_at=AT, fees=local_fee(500_000), channel="card", card_country="NG",
    requested_amount=500_000,
)  # fmt: skip
PAID = InvoiceFacts(
    invoice_id="inv-a", status=InvoiceStatus.PAID, amount=500_000, currency="NGN",
    paystack_reference="inv-a", paystack_transaction_id=4_100_000_001, amount_paid=500_000,
)  # fmt: skip
PAYOUT = SettlementRecord(
    id=3_100_000, status="success", currency="NGN", total_processed=1_000_000,
    total_fees=15_000, deductions=0, total_amount=985_000, settlement_date=AT, updated_at=AT,
)  # fmt: skip


def record(**fields: Any) -> TransactionRecord:
    return replace(PAYMENT, **fields)


def invoice(**fields: Any) -> InvoiceFacts:
    return replace(PAID, **fields)


def kinds(tx: TransactionRecord, facts: InvoiceFacts | None) -> list[DiscrepancyKind]:
    found = judge_transaction(tx, facts, pricing=NIGERIA, account_country="NG")
    return [finding.kind for finding in found]


def test_a_payment_that_matches_its_paid_invoice_is_no_discrepancy() -> None:
    assert kinds(record(), invoice()) == []


def test_each_kind_a_transaction_can_show() -> None:
    assert kinds(record(reference="T123"), None) == [DiscrepancyKind.ORPHAN_PAYMENT]
    for status in (InvoiceStatus.PENDING, InvoiceStatus.EXPIRED, InvoiceStatus.CANCELLED):
        pending = invoice(status=status, paystack_transaction_id=None, amount_paid=None)
        assert kinds(record(), pending) == [DiscrepancyKind.MISSED_PAYMENT]
    second = record(id=4_100_000_002, reference="inv-a.2")
    assert kinds(second, invoice()) == [DiscrepancyKind.DUPLICATE_PAYMENT]
    short = record(amount=400_000, requested_amount=400_000, fees=local_fee(400_000))
    assert kinds(short, invoice()) == [DiscrepancyKind.AMOUNT_MISMATCH]
    assert kinds(record(currency="GHS", fees=None), invoice()) == [DiscrepancyKind.AMOUNT_MISMATCH]
    assert kinds(record(status="reversed"), invoice()) == [DiscrepancyKind.PAID_NOT_ON_PAYSTACK]
    assert kinds(record(fees=9_999), invoice()) == [DiscrepancyKind.FEE_MISMATCH]


def test_a_payment_whose_webhook_may_still_be_in_flight_is_not_yet_missed() -> None:
    pending = invoice(status=InvoiceStatus.PENDING, paystack_transaction_id=None, amount_paid=None)

    def judged(settled_before: datetime) -> list[DiscrepancyKind]:
        found = judge_transaction(
            record(), pending, pricing=NIGERIA, account_country="NG", settled_before=settled_before
        )
        return [finding.kind for finding in found]

    # Created long before the window's end, paid inside the grace: left for a later run.
    assert judged(AT) == judged(AT - timedelta(seconds=1)) == []
    assert judged(AT + timedelta(seconds=1)) == [DiscrepancyKind.MISSED_PAYMENT]


def test_an_unpaid_attempt_of_an_unpaid_invoice_is_nothing() -> None:
    pending = invoice(status=InvoiceStatus.PENDING, paystack_transaction_id=None)
    assert kinds(record(status="abandoned", fees=None), pending) == []
    assert kinds(record(status="failed", reference="T9", fees=None), None) == []


def test_a_discrepancy_is_keyed_by_its_subject_so_it_is_stored_once() -> None:
    [first] = judge_transaction(record(reference="T1"), None, pricing=NIGERIA, account_country="NG")
    [again] = judge_transaction(
        record(reference="T1", amount=500_000), None, pricing=NIGERIA, account_country="NG"
    )
    assert first.key == again.key == "orphan_payment:T1"


def settlement(**fields: Any) -> SettlementRecord:
    return replace(PAYOUT, **fields)


def test_a_settlement_adds_up_or_says_what_does_not() -> None:
    assert judge_settlement(settlement(), 1_000_000, 15_000) is None
    wrong = judge_settlement(settlement(total_amount=985_100), 1_000_000, 15_000)
    assert wrong is not None and wrong.key == "settlement_mismatch:3100000"
    assert wrong.details["problems"] == [
        "total_processed - total_fees - deductions != total_amount"
    ]
    short = judge_settlement(settlement(), 999_000, 15_100)
    assert short is not None and short.details["problems"] == [
        "its transactions' amounts do not add up to total_processed",
        "its transactions' fees do not add up to total_fees",
    ]
    # Deductions (refunds taken from the payout) are part of the arithmetic.
    assert (
        judge_settlement(settlement(deductions=5_000, total_amount=980_000), 1_000_000, 15_000)
        is None
    )
