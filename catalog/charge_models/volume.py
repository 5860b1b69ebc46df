"""``volume``: the tier that contains the whole quantity prices every unit."""

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar

from billing_platform.validation import FieldErrors

from .base import Rated, Usage, decimal_str, exact_arithmetic
from .properties import charge_invalid, check_unknown_fields
from .tiers import parse_tiers, validate_tiers


class VolumeCharge:
    """q × unit_amount of the tier containing q, plus that tier's flat_amount; 0 when q = 0.

    With T = [{up_to 1000, 0}, {up_to 10000, 0.002}, {up_to null, 0.001}]: 10000 × 0.002 = 20 but
    10001 × 0.001 = 10.001. The amount drops at a tier boundary; that cliff is the model, not a bug.
    """

    key: ClassVar[str] = "volume"
    fields: ClassVar[frozenset[str]] = frozenset({"tiers"})

    def validate_properties(self, properties: Mapping[str, Any]) -> dict[str, Any]:
        errors = FieldErrors()
        check_unknown_fields(properties, allowed=self.fields, model=self.key, errors=errors)
        tiers = validate_tiers(properties, model=self.key, errors=errors)
        errors.raise_if_any(charge_invalid)
        return {"tiers": tiers}

    def rate(self, *, usage: Usage, properties: Mapping[str, Any]) -> Rated:
        q = usage.quantity
        details: dict[str, Any] = {"quantity": decimal_str(q), "tiers": [], "amount": "0"}
        if q.is_zero():
            # Nothing used, nothing billed: not even the first tier's flat fee.
            return Rated(amount=Decimal(0), details=details)
        # Validation guarantees an open last tier, so some tier always contains q > 0.
        tier = next(t for t in parse_tiers(properties["tiers"]) if t.contains(q))
        with exact_arithmetic():
            amount = q * tier.unit_amount + tier.flat_amount
        details["tiers"] = [tier.row(units=q, flat_amount=tier.flat_amount, amount=amount)]
        details["amount"] = decimal_str(amount)
        return Rated(amount=amount, details=details)
