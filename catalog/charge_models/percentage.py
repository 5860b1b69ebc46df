"""``percentage``: a share of a summed value (e.g. a transaction amount) plus a fee per event."""

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar

from billing_platform.validation import FieldErrors

from .base import Rated, Usage, decimal_str, exact_arithmetic
from .properties import charge_invalid, check_unknown_fields, read_amount

HUNDRED = Decimal(100)


class PercentageCharge:
    """rate / 100 × Σ field + fixed_per_event × number of events.

    1.5 % and 0.10 per event over 100, 250.50 and 19.99:
    0.015 × 370.49 + 3 × 0.10 = 5.55735 + 0.30 = 5.85735 (the line later shows 5.86).
    """

    key: ClassVar[str] = "percentage"
    fields: ClassVar[frozenset[str]] = frozenset({"rate", "fixed_per_event"})

    def validate_properties(self, properties: Mapping[str, Any]) -> dict[str, Any]:
        errors = FieldErrors()
        check_unknown_fields(properties, allowed=self.fields, model=self.key, errors=errors)
        rate = read_amount(properties, "rate", errors=errors)
        if rate is not None and Decimal(rate) > HUNDRED:
            errors.add("rate", "out_of_range", "Must be a percentage between 0 and 100.")
        fixed_per_event = read_amount(properties, "fixed_per_event", errors=errors, default="0")
        errors.raise_if_any(charge_invalid)
        return {"rate": rate, "fixed_per_event": fixed_per_event}

    def rate(self, *, usage: Usage, properties: Mapping[str, Any]) -> Rated:
        rate = Decimal(properties["rate"])
        fixed_per_event = Decimal(properties["fixed_per_event"])
        with exact_arithmetic():
            # Dividing by 100 is exact in decimal: 1.5 / 100 = 0.015.
            percentage_amount = rate / HUNDRED * usage.quantity
            event_amount = fixed_per_event * usage.event_count
            amount = percentage_amount + event_amount
        return Rated(
            amount=amount,
            details={
                "quantity": decimal_str(usage.quantity),
                "rate": properties["rate"],
                "percentage_amount": decimal_str(percentage_amount),
                "event_count": usage.event_count,
                "fixed_per_event": properties["fixed_per_event"],
                "fixed_amount": decimal_str(event_amount),
                "amount": decimal_str(amount),
            },
        )
