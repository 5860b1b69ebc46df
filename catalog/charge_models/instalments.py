"""Hardware paid in instalments: the price split into N, each part rounded once, and the last part
absorbing the rounding remainder so that the instalments add up to the price.

The one statement of that rule: the price calculator quotes instalment 1, invoicing bills
instalment k on the k-th billing date after the device's trigger.
"""

from decimal import Decimal

from billing_platform.money import round_minor


def instalment_amounts(price: Decimal, n: int, currency: str) -> list[Decimal]:
    """The ``n`` instalments of ``price``: ``price / n`` rounded half-up to the minor unit, and the
    last one the price less the others. 100.00 EUR in 3: 33.33, 33.33, 100.00 - 66.66 = 33.34. With
    one instalment it is the price itself."""
    if n < 1:
        raise ValueError("a price is paid in at least one instalment")
    unit = round_minor(price / n, currency)
    return [unit] * (n - 1) + [price - unit * (n - 1)]
