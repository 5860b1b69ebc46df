"""Money primitives: ISO 4217 exponents, one rounding rule, allocation that always adds up.

An amount that travels with its currency (a document's total, a stored price) is django-money's
``Money``; the arithmetic inside a line stays in ``Decimal``, in the currency of its document. An
amount that lands on an invoice line is rounded once, half-up, to the currency's minor unit (EUR 2,
JPY 0, KWD 3). Never ``float``.
"""

from collections.abc import Sequence
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from functools import cache

import moneyed
from babel.numbers import get_currency_name, get_currency_precision, list_currencies

# Unit prices keep this many places until the line is rounded (0.067 x 55 = 3.685 must survive).
UNIT_PRICE_PLACES = 10


@cache
def _known_currencies() -> frozenset[str]:
    return frozenset(code for code in list_currencies() if len(code) == 3 and code.isalpha() and code.isupper())


def is_known_currency(code: str) -> bool:
    """True for an ISO 4217 alphabetic code that Babel's CLDR data knows (``EUR``, ``JPY``...)."""
    return code in _known_currencies()


def iso_currency_codes() -> list[str]:
    """Every currency Tripod accepts, sorted: django-money's ``CURRENCIES`` (its form choices)."""
    return sorted(_known_currencies())


def _register_with_moneyed() -> None:
    """py-moneyed's table lags ISO 4217 behind Babel's CLDR (XCG of 2025, ZWG of 2024): the codes it
    lacks are added, so that every currency a customer may have makes a ``Money``."""
    for code in sorted(_known_currencies() - set(moneyed.CURRENCIES)):
        moneyed.add_currency(
            code,
            numeric=None,
            sub_unit=10 ** int(get_currency_precision(code)),
            name=get_currency_name(code, locale="en"),
        )


_register_with_moneyed()


def minor_unit_exponent(currency: str) -> int:
    """Number of decimal places of the currency's minor unit: EUR 2, JPY 0, KWD 3."""
    if not is_known_currency(currency):
        raise ValueError(f"unknown currency {currency!r}")
    # CLDR's "digits" for ISO 4217 (Babel). CLDR gives some currencies cash digits that differ;
    # invoices use the accounting exponent, which is what this returns.
    return int(get_currency_precision(currency))


def quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-minor_unit_exponent(currency))


def round_minor(amount: Decimal, currency: str) -> Decimal:
    """Round half-up to the currency's minor unit: 3.685 EUR -> 3.69, 1234.5 JPY -> 1235."""
    return amount.quantize(quantum(currency), rounding=ROUND_HALF_UP)


def allocate(total: Decimal, weights: Sequence[Decimal], currency: str) -> list[Decimal]:
    """Split ``total`` in proportion to ``weights`` so that the parts add up to ``total`` exactly.

    Largest remainders: each part is first rounded down to the minor unit, then the units left
    over go one by one to the parts whose rounded-off remainder was largest (ties: first part).
    100.00 over (1, 1, 1) -> 33.34, 33.33, 33.33.
    """
    if not weights:
        raise ValueError("allocate needs at least one weight")
    if any(w < 0 for w in weights):
        raise ValueError("weights must not be negative")
    q = quantum(currency)
    total = round_minor(total, currency)
    weight_sum = sum(weights, Decimal(0))
    if weight_sum == 0:
        weights = [Decimal(1)] * len(weights)
        weight_sum = Decimal(len(weights))
    exact = [total * w / weight_sum for w in weights]
    parts = [e.quantize(q, rounding=ROUND_DOWN) for e in exact]
    left = int((total - sum(parts, Decimal(0))) / q)
    step = q if left >= 0 else -q
    order = sorted(range(len(parts)), key=lambda i: (-abs(exact[i] - parts[i]), i))
    for i in order[: abs(left)]:
        parts[i] += step
    return parts
