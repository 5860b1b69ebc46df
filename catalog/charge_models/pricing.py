"""Rate a charge, apply the component's min/max, and round once to the currency's minor unit."""

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from billing_platform.errors import invalid
from billing_platform.money import round_minor

from .base import Usage, decimal_str
from .registry import rate_charge


@dataclass(frozen=True)
class Priced:
    """The line amount (rounded once, half-up) and the unrounded figure auditors may ask for."""

    amount: Decimal
    precise_amount: Decimal
    details: dict[str, Any]


def price(
    *,
    charge: Mapping[str, Any],
    usage: Usage,
    currency: str,
    min_amount: Decimal | None = None,
    max_amount: Decimal | None = None,
) -> Priced:
    """Rate ``usage`` with ``charge``, clamp to [min_amount, max_amount], then round ONCE.

    Clamping happens on the precise amount so that rounding stays the last step: per_unit 0.067 ×
    55 = 3.685 -> 3.69 EUR (half-up; banker's rounding would say 3.68). A minimum of 5.00 turns
    3.685 into 5.00; a maximum of 3.00 turns it into 3.00.
    """
    if min_amount is not None and max_amount is not None and min_amount > max_amount:
        raise invalid("max_amount", "less_than_min", "max_amount must not be less than min_amount.")
    rated = rate_charge(charge, usage)
    precise = rated.amount
    details = dict(rated.details)
    details["rated_amount"] = decimal_str(rated.amount)
    if min_amount is not None and precise < min_amount:
        precise = min_amount
        details["clamped_to"] = "min_amount"
    elif max_amount is not None and precise > max_amount:
        precise = max_amount
        details["clamped_to"] = "max_amount"
    return Priced(amount=round_minor(precise, currency), precise_amount=precise, details=details)
