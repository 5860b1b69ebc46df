"""``graduated``: each tier prices only the units that fall inside it."""

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar

from billing_platform.validation import FieldErrors

from .base import Rated, Usage, decimal_str, exact_arithmetic
from .properties import charge_invalid, check_unknown_fields
from .tiers import parse_tiers, validate_tiers


class GraduatedCharge:
    """Σ over tiers of (units of q inside the tier × unit_amount) + flat_amount of each tier q enters.

    With T = [{up_to 1000, 0}, {up_to 10000, 0.002}, {up_to null, 0.001}] and q = 25000:
    1000 × 0 + 9000 × 0.002 + 15000 × 0.001 = 0 + 18 + 15 = 33. A tier is entered when q is above
    its lower bound, so q = 1000 never enters tier 2 (nor pays its flat fee) and q = 0 enters none.
    """

    key: ClassVar[str] = "graduated"
    fields: ClassVar[frozenset[str]] = frozenset({"tiers"})

    def validate_properties(self, properties: Mapping[str, Any]) -> dict[str, Any]:
        errors = FieldErrors()
        check_unknown_fields(properties, allowed=self.fields, model=self.key, errors=errors)
        tiers = validate_tiers(properties, model=self.key, errors=errors)
        errors.raise_if_any(charge_invalid)
        return {"tiers": tiers}

    def rate(self, *, usage: Usage, properties: Mapping[str, Any]) -> Rated:
        q = usage.quantity
        total = Decimal(0)
        rows: list[dict[str, Any]] = []
        with exact_arithmetic():
            for tier in parse_tiers(properties["tiers"]):
                entered = q > tier.lower
                top = q if tier.upper is None else min(q, tier.upper)
                units = top - tier.lower if entered else Decimal(0)
                flat_amount = tier.flat_amount if entered else Decimal(0)
                amount = units * tier.unit_amount + flat_amount
                total += amount
                rows.append(tier.row(units=units, flat_amount=flat_amount, amount=amount))
        return Rated(amount=total, details={"quantity": decimal_str(q), "tiers": rows, "amount": decimal_str(total)})
