"""What Paystack should charge for a transaction: a table keyed by currency, channel and
card origin, not a formula in code (each country's pricing differs). The sweep checks each
transaction's fees against it; the sandbox charges by it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum

ANY = "*"
BASIS_POINTS = 10_000


class Origin(StrEnum):
    """A card issued in the account's country is local; any other is international.
    Other channels (bank, transfer, USSD) are local."""

    LOCAL = "local"
    INTERNATIONAL = "international"


@dataclass(frozen=True)
class Price:
    currency: str
    origin: Origin
    # Rate in basis points: 150 is 1.5 %.
    rate_bp: int
    # A flat fee in the subunit, waived on amounts under `flat_waived_under`.
    flat: int = 0
    flat_waived_under: int | None = None
    # The most one transaction's fee can be, in the subunit.
    cap: int | None = None
    channel: str = ANY

    def fee(self, amount: int) -> int:
        fee = (amount * self.rate_bp + BASIS_POINTS // 2) // BASIS_POINTS
        if self.flat_waived_under is None or amount >= self.flat_waived_under:
            fee += self.flat
        return min(fee, self.cap) if self.cap is not None else fee


# Paystack's published Nigerian pricing: local 1.5 % + ₦100, the ₦100 waived under ₦2,500,
# capped at ₦2,000; international cards 3.9 % + ₦100.
NIGERIA = (
    Price("NGN", Origin.LOCAL, 150, flat=10_000, flat_waived_under=250_000, cap=200_000),
    Price("NGN", Origin.INTERNATIONAL, 390, flat=10_000),
)


def origin_of(channel: str | None, card_country: str | None, account_country: str) -> Origin:
    if channel != "card" or not card_country:
        return Origin.LOCAL
    return Origin.LOCAL if card_country.upper() == account_country.upper() else Origin.INTERNATIONAL


def price_for(
    pricing: Sequence[Price], currency: str, channel: str | None, origin: Origin
) -> Price | None:
    """The most specific entry: one naming the channel before one for any channel."""
    candidates = [
        price
        for price in pricing
        if price.currency == currency
        and price.origin == origin
        and price.channel in (ANY, channel or ANY)
    ]
    candidates.sort(key=lambda price: price.channel == ANY)
    return candidates[0] if candidates else None


def expected_fee(
    pricing: Sequence[Price],
    *,
    amount: int,
    currency: str,
    channel: str | None,
    card_country: str | None,
    account_country: str,
) -> int | None:
    """None when the table has no price for this currency, channel and origin."""
    price = price_for(pricing, currency, channel, origin_of(channel, card_country, account_country))
    return price.fee(amount) if price is not None else None


def parse_pricing(text: str) -> tuple[Price, ...]:
    """A JSON list of prices, as PAYRECON_PRICING holds it:
    `[{"currency": "NGN", "origin": "local", "rate_bp": 150, "flat": 10000,
    "flat_waived_under": 250000, "cap": 200000, "channel": "*"}, ...]`."""
    raw = json.loads(text)
    if not isinstance(raw, list):
        raise ValueError("pricing is a JSON list of prices")
    prices = []
    for entry in raw:
        if not isinstance(entry, dict):
            raise ValueError("each price is a JSON object")
        try:
            price = Price(**{**entry, "origin": Origin(entry.get("origin", ""))})
        except TypeError as error:
            raise ValueError(f"a price has unknown or missing fields: {error}") from None
        if price.rate_bp < 0 or price.flat < 0 or (price.cap is not None and price.cap < 0):
            raise ValueError("a price's rate, flat fee and cap are never negative")
        prices.append(price)
    return tuple(prices)


def pricing_as_json(pricing: Sequence[Price]) -> str:
    return json.dumps([asdict(price) for price in pricing])
