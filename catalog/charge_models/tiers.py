"""Tier lists shared by ``graduated`` and ``volume``, in Stripe's convention.

Tier *i* covers quantities in ``(up_to[i-1], up_to[i]]`` (the first starts above 0) and the last
tier is open (``up_to: null``), so every quantity falls in exactly one tier. With
T = [{up_to 1000}, {up_to 10000}, {up_to null}]: 1000 is in tier 1, 1000.5 and 10000 in tier 2,
10001 in tier 3.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from billing_platform.validation import FieldErrors

from .base import decimal_str
from .properties import check_decimal, check_unknown_fields, item, join, read_amount

TIER_FIELDS = frozenset({"up_to", "unit_amount", "flat_amount"})


@dataclass(frozen=True)
class Tier:
    number: int  # 1-based, as a customer counts them
    lower: Decimal  # exclusive: the previous tier's up_to, 0 for the first
    upper: Decimal | None  # inclusive; None for the open last tier
    unit_amount: Decimal
    flat_amount: Decimal

    def contains(self, quantity: Decimal) -> bool:
        return self.lower < quantity and (self.upper is None or quantity <= self.upper)

    def row(self, *, units: Decimal, flat_amount: Decimal, amount: Decimal) -> dict[str, Any]:
        """One line of the breakdown a customer sees; ``flat_amount`` is the flat fee charged."""
        return {
            "tier": self.number,
            "from": decimal_str(self.lower),
            "up_to": None if self.upper is None else decimal_str(self.upper),
            "units": decimal_str(units),
            "unit_amount": decimal_str(self.unit_amount),
            "flat_amount": decimal_str(flat_amount),
            "amount": decimal_str(amount),
        }


def validate_tiers(properties: Mapping[str, Any], *, model: str, errors: FieldErrors) -> list[dict[str, Any]]:
    """Normalise ``tiers``; add an error for every bad tier rather than stopping at the first."""
    if "tiers" not in properties:
        errors.add("tiers", "required", "This field is required.")
        return []
    raw = properties["tiers"]
    if isinstance(raw, str | bytes) or not isinstance(raw, Sequence):
        errors.add("tiers", "invalid", "Must be a list of tiers.")
        return []
    if not raw:
        errors.add("tiers", "empty", "At least one tier is required.")
        return []

    normalised: list[dict[str, Any]] = []
    highest: Decimal | None = None  # bounds must rise past every earlier one, not just the last
    last = len(raw) - 1
    for index, tier in enumerate(raw):
        path = item("tiers", index)
        if not isinstance(tier, Mapping):
            errors.add(path, "invalid", "Each tier must be an object.")
            continue
        check_unknown_fields(tier, allowed=TIER_FIELDS, model=model, errors=errors, prefix=path)
        unit_amount = read_amount(tier, "unit_amount", errors=errors, prefix=path)
        flat_amount = read_amount(tier, "flat_amount", errors=errors, prefix=path, default="0")
        up_to = _check_up_to(tier, path=path, is_last=index == last, highest=highest, errors=errors)
        if up_to is not None:
            highest = up_to if highest is None else max(highest, up_to)
        normalised.append(
            {
                "up_to": None if up_to is None else decimal_str(up_to),
                "unit_amount": unit_amount,
                "flat_amount": flat_amount,
            }
        )
    return normalised


def _check_up_to(
    tier: Mapping[str, Any], *, path: str, is_last: bool, highest: Decimal | None, errors: FieldErrors
) -> Decimal | None:
    field = join(path, "up_to")
    if "up_to" not in tier:
        # Explicit even for the last tier: a forgotten bound must not silently become "open".
        errors.add(field, "required", "This field is required (null for the last tier).")
        return None
    if tier["up_to"] is None:
        if not is_last:
            errors.add(field, "only_last_tier_open", "Only the last tier may be open-ended (up_to: null).")
        return None
    bound = check_decimal(tier["up_to"], field=field, errors=errors)
    if bound is None:
        return None
    if is_last:
        errors.add(field, "last_tier_must_be_open", "The last tier must have up_to: null so every quantity is priced.")
    elif bound.is_zero():
        errors.add(field, "not_positive", "Must be greater than 0.")
    elif highest is not None and bound <= highest:
        errors.add(
            field,
            "tiers_not_increasing",
            "Must be greater than the up_to of every earlier tier (%s)." % decimal_str(highest),
        )
    return bound


def parse_tiers(tiers: Sequence[Mapping[str, Any]]) -> list[Tier]:
    """Validated tier dicts -> ``Tier`` objects with their exclusive lower bounds filled in."""
    parsed: list[Tier] = []
    lower = Decimal(0)
    for number, tier in enumerate(tiers, start=1):
        upper = None if tier["up_to"] is None else Decimal(tier["up_to"])
        parsed.append(
            Tier(
                number=number,
                lower=lower,
                upper=upper,
                unit_amount=Decimal(tier["unit_amount"]),
                flat_amount=Decimal(tier.get("flat_amount") or "0"),
            )
        )
        if upper is not None:
            lower = upper
    return parsed
