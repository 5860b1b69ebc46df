"""``per_unit``: the same price for every unit of the quantity."""

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar

from billing_platform.validation import FieldErrors

from .base import Rated, Usage, decimal_str, exact_arithmetic
from .properties import charge_invalid, check_unknown_fields, read_amount


class PerUnitCharge:
    """q × ``unit_amount``, unrounded: 333 × 0.0125 = 4.1625 (the line later shows 4.16)."""

    key: ClassVar[str] = "per_unit"
    fields: ClassVar[frozenset[str]] = frozenset({"unit_amount"})

    def validate_properties(self, properties: Mapping[str, Any]) -> dict[str, Any]:
        errors = FieldErrors()
        check_unknown_fields(properties, allowed=self.fields, model=self.key, errors=errors)
        unit_amount = read_amount(properties, "unit_amount", errors=errors)
        errors.raise_if_any(charge_invalid)
        return {"unit_amount": unit_amount}

    def rate(self, *, usage: Usage, properties: Mapping[str, Any]) -> Rated:
        with exact_arithmetic():
            amount = usage.quantity * Decimal(properties["unit_amount"])
        return Rated(
            amount=amount,
            details={
                "units": decimal_str(usage.quantity),
                "unit_amount": properties["unit_amount"],
                "amount": decimal_str(amount),
            },
        )
