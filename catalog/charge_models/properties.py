"""Reading a charge's properties: decimals parsed exactly, every error collected with its path.

Helpers shared by the model classes. Paths are written the way a client reads its own JSON:
``unit_amount``, ``tiers[1].up_to``, ``cells[0].charge.unit_amount``.
"""

import re
from collections.abc import Collection, Iterable, Mapping
from decimal import Decimal
from typing import Any

from billing_platform.errors import FieldError, InvalidInput
from billing_platform.money import UNIT_PRICE_PLACES
from billing_platform.validation import FieldErrors

from .base import decimal_str

# Unit prices keep 10 places until the line is rounded (specs/00-overview.md); 0.067 x 55 = 3.685
# only rounds to 3.69 if nothing upstream has already cut it.
MAX_PLACES = UNIT_PRICE_PLACES
# Amounts and bounds fit a DecimalField(max_digits=28, decimal_places=10) and can never turn a
# "1e999999" from a client into a million-digit string.
MAX_INTEGER_DIGITS = 18

# What a client may write: "12", "0.0125", ".5", "1e-3". Rejects "NaN", "Infinity", "1_000", " 1".
_DECIMAL_PATTERN = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_TEN_PLACES = Decimal(1).scaleb(-MAX_PLACES)


def join(prefix: str, name: str) -> str:
    """``join("tiers[1]", "up_to")`` -> ``"tiers[1].up_to"``; ``join("", "amount")`` -> ``"amount"``."""
    return "%s.%s" % (prefix, name) if prefix else name


def item(prefix: str, index: int) -> str:
    """``item("tiers", 1)`` -> ``"tiers[1]"``."""
    return "%s[%d]" % (prefix, index)


def charge_invalid(errors: Iterable[FieldError]) -> InvalidInput:
    """One 422 for every problem of a charge; the detail lists them like the API handler does. The
    exception the models' ``FieldErrors`` raise: ``errors.raise_if_any(charge_invalid)``."""
    errors = list(errors)
    detail = "Invalid charge: %s" % "; ".join("%s: %s" % (e.field or "charge", e.message) for e in errors)
    return InvalidInput(detail, errors=errors)


def check_unknown_fields(
    properties: Mapping[str, Any], *, allowed: Collection[str], model: str, errors: FieldErrors, prefix: str = ""
) -> None:
    """A misspelt key (``unit_ammount``) must not silently fall back to a default."""
    for name in properties:
        if name not in allowed:
            errors.add(
                join(prefix, str(name)),
                "unknown_field",
                "Unknown field for the %s charge model; allowed: %s." % (model, ", ".join(sorted(allowed))),
            )


def parse_decimal(value: object) -> Decimal | None:
    """The exact Decimal a client meant, or None when the value is not a finite decimal number.

    Strings and ints are exact. A float (a JSON number decoded by a lenient client) goes through
    ``str()``, which gives its shortest repr: ``0.1`` -> ``Decimal("0.1")``, not
    ``0.1000000000000000055511151231257827``. ``True`` is an int to Python but never an amount.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        value = str(value)  # "inf" and "nan" then fail the pattern below
    if isinstance(value, str) and _DECIMAL_PATTERN.fullmatch(value):
        return Decimal(value)
    return None


def _places(value: Decimal) -> int:
    """Decimal places the value needs, ignoring trailing zeros: ``0.0100`` -> 2, ``1E+3`` -> 0."""
    if value.is_zero():
        return 0
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite: parse_decimal refused NaN and Infinity
    trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -(exponent + trailing_zeros))


def check_decimal(value: object, *, field: str, errors: FieldErrors) -> Decimal | None:
    """A non-negative decimal with at most 10 places and 18 integer digits, or None (error added)."""
    number = parse_decimal(value)
    if number is None:
        errors.add(field, "invalid_decimal", 'Must be a decimal number, preferably as a string such as "0.0125".')
        return None
    if number < 0:
        errors.add(field, "negative", "Must not be negative.")
        return None
    if not number.is_zero() and number.adjusted() >= MAX_INTEGER_DIGITS:
        errors.add(field, "too_large", "Must have at most %d digits before the decimal point." % MAX_INTEGER_DIGITS)
        return None
    if _places(number) > MAX_PLACES:
        errors.add(field, "too_many_decimals", "At most %d decimal places are allowed." % MAX_PLACES)
        return None
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)
    if exponent < -MAX_PLACES:
        # Only trailing zeros lie past the 10th place (checked above), so this is exact.
        number = number.quantize(_TEN_PLACES)
    return number


def read_amount(
    properties: Mapping[str, Any],
    name: str,
    *,
    errors: FieldErrors,
    prefix: str = "",
    default: str | None = None,
) -> str | None:
    """The normalised string of a non-negative amount, or None when missing/invalid (error added).

    A missing field takes ``default`` when one is given and is ``required`` otherwise.
    """
    field = join(prefix, name)
    if name not in properties:
        if default is None:
            errors.add(field, "required", "This field is required.")
        return default
    number = check_decimal(properties[name], field=field, errors=errors)
    return None if number is None else decimal_str(number)
