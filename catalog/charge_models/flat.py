"""``flat``: a fixed amount per unit billed (per device, or once)."""

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar

from billing_platform.validation import FieldErrors

from .base import Rated, Usage, decimal_str, exact_arithmetic
from .properties import charge_invalid, check_unknown_fields, read_amount


class FlatCharge:
    """``amount`` × ``usage.quantity``, where the quantity is the number of devices or 1.

    Smart Fleet's platform fee for A and B in April: 25.00 × 2 = 50.00.
    """

    key: ClassVar[str] = "flat"
    fields: ClassVar[frozenset[str]] = frozenset({"amount"})

    def validate_properties(self, properties: Mapping[str, Any]) -> dict[str, Any]:
        errors = FieldErrors()
        check_unknown_fields(properties, allowed=self.fields, model=self.key, errors=errors)
        amount = read_amount(properties, "amount", errors=errors)
        errors.raise_if_any(charge_invalid)
        return {"amount": amount}

    def rate(self, *, usage: Usage, properties: Mapping[str, Any]) -> Rated:
        with exact_arithmetic():
            amount = Decimal(properties["amount"]) * usage.quantity
        return Rated(
            amount=amount,
            details={
                "units": decimal_str(usage.quantity),
                "unit_amount": properties["amount"],
                "amount": decimal_str(amount),
            },
        )
