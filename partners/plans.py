"""A partner's commission plan (specs/partners.md, "Commissions"): per leg, a percentage of the net
amounts collected, or tiers graduated by the partner's net collected on that leg in the month
("service 20 % up to 10,000.00, 25 % above": the first 10,000.00 at 20 %, the rest at 25 %).

Stored on ``customers.Partner.commission_plan`` as the API takes it: ``{"hardware": "5",
"service": {"tiers": [{"up_to": "10000.00", "rate": "20"}, {"up_to": null, "rate": "25"}]}}``.
A leg left out earns nothing."""

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from billing_platform.errors import FieldError, InvalidInput

LEGS = ("hardware", "service", "usage", "fee")
HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class Tier:
    # Inclusive upper bound of the month's collected net on the leg; None: no bound (the last tier).
    up_to: Decimal | None
    rate: Decimal  # a percentage: 20 is 20 %


@dataclass(frozen=True, slots=True)
class LegRate:
    tiers: tuple[Tier, ...]

    @property
    def is_flat(self) -> bool:
        return len(self.tiers) == 1

    def commission(self, *, before: Decimal, amount: Decimal) -> Decimal:
        """The unrounded commission on ``amount`` of net collected when ``before`` was collected on
        the leg earlier in the month: each part of it at its tier's rate."""
        if self.is_flat:
            return amount * self.tiers[0].rate / HUNDRED
        total = Decimal(0)
        low = before
        high = before + amount
        floor = Decimal(0)
        for tier in self.tiers:
            top = tier.up_to
            start = max(low, floor)
            end = high if top is None else min(high, top)
            if end > start:
                total += (end - start) * tier.rate / HUNDRED
            if top is None:
                break
            floor = top
        return total

    def rate_at(self, collected: Decimal) -> Decimal:
        """The percentage of the tier that the month's ``collected`` net reaches."""
        for tier in self.tiers:
            if tier.up_to is None or collected <= tier.up_to:
                return tier.rate
        return self.tiers[-1].rate


@dataclass(frozen=True, slots=True)
class CommissionPlan:
    legs: dict[str, LegRate]

    def leg(self, name: str) -> LegRate | None:
        return self.legs.get(name)


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


RATE_DECIMALS = 4  # as a statement line stores a rate
UP_TO_DECIMALS = 2  # an amount, in cents


def _places(number: Decimal) -> int:
    exponent = number.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _rate_ok(rate: Decimal) -> bool:
    return Decimal(0) <= rate <= HUNDRED and _places(rate) <= RATE_DECIMALS


def commission_plan_parse(raw: Any, *, field: str = "commission_plan") -> CommissionPlan:
    """The plan ``raw`` describes, or an ``InvalidInput`` naming every wrong field: rates are
    percentages from 0 to 100 given as strings with at most 4 decimals, tiers' ``up_to`` amounts
    with at most 2, going up strictly, the last ``null``."""
    errors: list[FieldError] = []
    if raw in (None, ""):
        raw = {}
    if not isinstance(raw, dict):
        raise InvalidInput(
            "commission_plan must be an object of rates per leg.",
            errors=[FieldError(field, "invalid_type", "commission_plan must be an object of rates per leg.")],
        )
    legs: dict[str, LegRate] = {}
    for name, value in raw.items():
        path = "%s.%s" % (field, name)
        if name not in LEGS:
            errors.append(FieldError(path, "unknown_leg", "Legs are %s." % ", ".join(LEGS)))
            continue
        if isinstance(value, dict):
            tiers_raw = value.get("tiers")
            if set(value) != {"tiers"} or not isinstance(tiers_raw, list) or not tiers_raw:
                errors.append(
                    FieldError(path, "invalid_tiers", 'A graduated leg is {"tiers": [...]}, at least one tier.')
                )
                continue
            tiers: list[Tier] = []
            previous: Decimal | None = None
            for index, tier in enumerate(tiers_raw):
                tier_path = "%s.tiers[%d]" % (path, index)
                if not isinstance(tier, dict) or set(tier) != {"up_to", "rate"}:
                    errors.append(FieldError(tier_path, "invalid_tier", 'A tier is {"up_to": ..., "rate": ...}.'))
                    break
                rate = _decimal(tier["rate"])
                if rate is None or not _rate_ok(rate):
                    errors.append(
                        FieldError(
                            tier_path + ".rate",
                            "invalid_rate",
                            "A rate is a percentage from 0 to 100 with at most 4 decimals, as a string.",
                        )
                    )
                    break
                last = index == len(tiers_raw) - 1
                if tier["up_to"] is None:
                    if not last:
                        errors.append(
                            FieldError(tier_path + ".up_to", "invalid_up_to", "Only the last tier has up_to null.")
                        )
                        break
                    tiers.append(Tier(None, rate))
                    continue
                up_to = _decimal(tier["up_to"])
                if (
                    up_to is None
                    or up_to <= 0
                    or _places(up_to) > UP_TO_DECIMALS
                    or (previous is not None and up_to <= previous)
                ):
                    errors.append(
                        FieldError(
                            tier_path + ".up_to",
                            "invalid_up_to",
                            "Tiers' up_to are positive amounts with at most 2 decimals, each above the one before.",
                        )
                    )
                    break
                if last:
                    errors.append(FieldError(tier_path + ".up_to", "invalid_up_to", "The last tier has up_to null."))
                    break
                previous = up_to
                tiers.append(Tier(up_to, rate))
            else:
                legs[name] = LegRate(tuple(tiers))
            continue
        rate = _decimal(value)
        if rate is None or not _rate_ok(rate):
            errors.append(
                FieldError(
                    path, "invalid_rate", "A rate is a percentage from 0 to 100 with at most 4 decimals, as a string."
                )
            )
            continue
        legs[name] = LegRate((Tier(None, rate),))
    if errors:
        raise InvalidInput("The commission plan is not valid.", errors=errors)
    return CommissionPlan(legs)


def commission_plan_normalize(raw: Any) -> dict[str, Any]:
    """``raw`` checked and written back the way it is stored and returned: rates and bounds as
    strings, every leg present (``"0"`` for a leg left out)."""
    plan = commission_plan_parse(raw)
    out: dict[str, Any] = {}
    for name in LEGS:
        leg = plan.leg(name)
        if leg is None:
            out[name] = "0"
        elif leg.is_flat:
            out[name] = str(leg.tiers[0].rate)
        else:
            out[name] = {
                "tiers": [{"up_to": None if t.up_to is None else str(t.up_to), "rate": str(t.rate)} for t in leg.tiers]
            }
    return out
