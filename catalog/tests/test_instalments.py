"""Hardware instalments: each rounded once, the last absorbing the remainder. No database."""

from decimal import Decimal

import pytest

from catalog.charge_models import instalment_amounts


@pytest.mark.parametrize(
    ("price", "n", "currency", "expected"),
    [
        # 100.00 / 3 = 33.333... -> 33.33; the last is 100.00 - 2 x 33.33 = 33.34
        ("100.00", 3, "EUR", ["33.33", "33.33", "33.34"]),
        # 299.00 / 12 = 24.9166... -> 24.92; the last is 299.00 - 11 x 24.92 = 24.88
        ("299.00", 12, "EUR", ["24.92"] * 11 + ["24.88"]),
        # 1000 JPY / 3 = 333.33... -> 333; the last is 1000 - 666 = 334
        ("1000", 3, "JPY", ["333", "333", "334"]),
        # one instalment: the price itself
        ("149.00", 1, "EUR", ["149.00"]),
    ],
)
def test_instalments_add_up_to_the_price(price: str, n: int, currency: str, expected: list[str]) -> None:
    amounts = instalment_amounts(Decimal(price), n, currency)
    assert [str(a) for a in amounts] == expected
    assert sum(amounts, Decimal(0)) == Decimal(price)
