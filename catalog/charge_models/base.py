"""What every charge model takes and returns, and the protocol a model class follows.

A charge model is a small, pure class (Lago's ``charge_models/``): it validates its own properties
and turns an aggregated quantity into an UNROUNDED amount plus JSON-ready details. It never touches
the database and never rounds; ``catalog.charge_models.pricing.price`` rounds once, at the end.
"""

from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from decimal import Context, Decimal, DivisionByZero, Inexact, InvalidOperation, Overflow, localcontext
from typing import Any, ClassVar, Protocol

# Products of an 18-digit quantity and a unit price with 10 places need more than Decimal's default
# 28 significant digits. Rating runs with room to spare and traps Inexact, so an amount is either
# exact or the rating fails loudly: never a silently rounded intermediate.
RATING_PRECISION = 80


def exact_arithmetic() -> AbstractContextManager[Context]:
    """Decimal context for rating: high precision, and ``Inexact`` raises instead of rounding."""
    context = Context(prec=RATING_PRECISION, traps=[Inexact, InvalidOperation, DivisionByZero, Overflow])
    return localcontext(context)


def decimal_str(value: Decimal) -> str:
    """Plain notation for JSON (``Decimal("1E+3")`` -> ``"1000"``), never exponent form."""
    if value.is_zero():
        value = value.copy_abs()  # "-0" would puzzle a customer reading the details
    return format(value, "f")


@dataclass(frozen=True)
class Usage:
    """The aggregated usage one charge is rated on.

    ``quantity`` is the meter's aggregate (after the pooled allowance), or for ``flat`` the number
    of units billed (devices, or 1). ``event_count`` feeds ``percentage``'s fixed fee per event.
    ``groups`` is only read by ``matrix``: the same usage split by the values of the matrix's
    ``dimensions``, keys in the order of that list, e.g. ``{("tracker", "EU"): Usage(...)}``.
    """

    quantity: Decimal
    event_count: int = 0
    groups: Mapping[tuple[str, ...], "Usage"] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # A float quantity would smuggle binary rounding into money; a negative one has no meaning
        # for tiers or packages. Both are bugs in the caller, so they fail loudly here.
        if not isinstance(self.quantity, Decimal):
            raise TypeError("Usage.quantity must be a Decimal, got %s" % type(self.quantity).__name__)
        if not self.quantity.is_finite() or self.quantity < 0:
            raise ValueError("Usage.quantity must be a finite, non-negative Decimal, got %s" % self.quantity)
        if self.event_count < 0:
            raise ValueError("Usage.event_count must not be negative, got %d" % self.event_count)


@dataclass(frozen=True)
class Rated:
    """An unrounded amount and the breakdown that explains it (Decimals as strings)."""

    amount: Decimal
    details: dict[str, Any]


class ChargeModel(Protocol):
    """One pricing rule. Implementations are stateless apart from configuration set at import."""

    key: ClassVar[str]

    def validate_properties(self, properties: Mapping[str, Any]) -> dict[str, Any]:
        """Return normalised properties (amounts as Decimal strings) or raise ``InvalidInput``.

        Every error of the charge is collected and raised together, each with its path inside the
        charge (``"tiers[1].up_to"``), so a client can fix everything in one round trip.
        """
        ...

    def rate(self, *, usage: Usage, properties: Mapping[str, Any]) -> Rated:
        """Price ``usage`` with properties that ``validate_properties`` has already normalised."""
        ...
