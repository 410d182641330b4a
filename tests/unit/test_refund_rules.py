"""The refund rules, pure: statuses only move forward (or from needs_attention back to
processing), a final one never changes, and however refunds are asked for and settle, no
more than was paid is ever refunded or held for refunding."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from domain.refunds import (
    RefundAmount,
    RefundStatus,
    can_move,
    is_refund_id,
    merchant_note_for,
    refund_id_in,
    refundable,
    refunded,
)

S = RefundStatus


def test_paystack_statuses_map_to_ours() -> None:
    assert S.from_paystack("needs-attention") is S.NEEDS_ATTENTION
    assert [S.from_paystack(s) for s in ("pending", "processing", "processed", "failed")] == [
        S.PENDING,
        S.PROCESSING,
        S.PROCESSED,
        S.FAILED,
    ]


def test_the_moves_of_the_graph_and_no_others() -> None:
    allowed = {(a, b) for a in S for b in S if can_move(a, b)}
    assert allowed == {
        (S.REQUESTED, S.PENDING),
        (S.REQUESTED, S.PROCESSING),
        (S.REQUESTED, S.NEEDS_ATTENTION),
        (S.REQUESTED, S.PROCESSED),
        (S.REQUESTED, S.FAILED),
        (S.PENDING, S.PROCESSING),
        (S.PENDING, S.NEEDS_ATTENTION),
        (S.PENDING, S.PROCESSED),
        (S.PENDING, S.FAILED),
        (S.PROCESSING, S.NEEDS_ATTENTION),
        (S.PROCESSING, S.PROCESSED),
        (S.PROCESSING, S.FAILED),
        (S.NEEDS_ATTENTION, S.PROCESSING),
        (S.NEEDS_ATTENTION, S.PROCESSED),
        (S.NEEDS_ATTENTION, S.FAILED),
    }


def test_refundable_counts_what_is_in_flight_and_processed_but_not_what_failed() -> None:
    refunds = [
        RefundAmount(10_000, S.PROCESSED),
        RefundAmount(5_000, S.PENDING),
        RefundAmount(7_000, S.FAILED),
        RefundAmount(3_000, S.NEEDS_ATTENTION),
    ]
    assert refundable(50_000, refunds) == 32_000
    assert refunded(refunds) == 10_000
    assert refundable(10_000, refunds) == 0


@given(
    paid=st.integers(min_value=0, max_value=10**9),
    asks=st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=10**9),
            st.lists(st.sampled_from(list(S)), max_size=6),
        ),
        max_size=12,
    ),
)
def test_no_sequence_of_refunds_takes_more_than_was_paid(
    paid: int, asks: list[tuple[int, list[RefundStatus]]]
) -> None:
    """Each ask is granted only within what is refundable; then Paystack's word on it, in
    any order, is applied where the graph allows."""
    refunds: list[RefundAmount] = []
    for amount, words in asks:
        if amount > refundable(paid, refunds):
            continue
        status = S.REQUESTED
        for word in words:
            if can_move(status, word):
                status = word
        refunds.append(RefundAmount(amount, status))
        held = sum(r.amount for r in refunds if r.status.holds_money)
        assert held <= paid
        assert refunded(refunds) <= paid
        assert refundable(paid, refunds) == paid - held


def test_a_refund_id_travels_in_the_merchant_note() -> None:
    refund_id = "rf_0123456789abcdef01234567"
    assert is_refund_id(refund_id) and not is_refund_id("rf_short")
    assert refund_id_in(merchant_note_for(refund_id)) == refund_id
    assert refund_id_in("Refund for transaction T123 by someone@example.com") is None
    assert refund_id_in(None) is None
