"""``package``: units are sold in whole packages; a started package is a full package."""

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar

from billing_platform.validation import FieldErrors

from .base import Rated, Usage, decimal_str, exact_arithmetic
from .properties import charge_invalid, check_unknown_fields, parse_decimal, read_amount


class PackageCharge:
    """ceil(q / package_size) × package_amount, 0 when q = 0.

    100 units @ 4.00: 250 -> 3 × 4.00 = 12.00; 100 -> 4.00; 101 -> 8.00; 0 -> 0.00.
    """

    key: ClassVar[str] = "package"
    fields: ClassVar[frozenset[str]] = frozenset({"package_size", "package_amount"})

    def validate_properties(self, properties: Mapping[str, Any]) -> dict[str, Any]:
        errors = FieldErrors()
        check_unknown_fields(properties, allowed=self.fields, model=self.key, errors=errors)
        package_size: int | None = None
        if "package_size" not in properties:
            errors.add("package_size", "required", "This field is required.")
        else:
            size = parse_decimal(properties["package_size"])
            # "100" and 100.0 are fine; 0, -5 or 2.5 units per package are not.
            if size is None or size <= 0 or size != size.to_integral_value():
                errors.add("package_size", "not_positive_integer", "Must be a whole number greater than 0.")
            else:
                package_size = int(size)
        package_amount = read_amount(properties, "package_amount", errors=errors)
        errors.raise_if_any(charge_invalid)
        return {"package_size": package_size, "package_amount": package_amount}

    def rate(self, *, usage: Usage, properties: Mapping[str, Any]) -> Rated:
        q = usage.quantity
        size = Decimal(int(properties["package_size"]))
        with exact_arithmetic():
            # Integer division and remainder instead of q / size: exact for any decimal q, where a
            # division could round 0.999… up to a whole package or down below one.
            whole, rest = divmod(q, size)
            packages = whole + (1 if rest else 0)
            amount = packages * Decimal(properties["package_amount"])
        return Rated(
            amount=amount,
            details={
                "quantity": decimal_str(q),
                "package_size": int(size),
                "packages": int(packages),
                "package_amount": properties["package_amount"],
                "amount": decimal_str(amount),
            },
        )
