from decimal import Decimal

import pytest
from djmoney.models.fields import CURRENCY_CHOICES
from djmoney.money import Money
from hypothesis import given
from hypothesis import strategies as st

from billing_platform.money import allocate, is_known_currency, iso_currency_codes, minor_unit_exponent, round_minor


@pytest.mark.parametrize(("currency", "exponent"), [("EUR", 2), ("USD", 2), ("JPY", 0), ("CLP", 0), ("KWD", 3)])
def test_minor_unit_exponent_follows_iso_4217(currency: str, exponent: int) -> None:
    assert minor_unit_exponent(currency) == exponent


def test_unknown_currency_is_refused() -> None:
    assert not is_known_currency("EUX")
    assert not is_known_currency("eur")
    with pytest.raises(ValueError, match="unknown currency 'EUX'"):
        minor_unit_exponent("EUX")


def test_every_accepted_currency_makes_a_money_and_no_other_is_offered() -> None:
    codes = iso_currency_codes()
    assert {"EUR", "JPY", "KWD", "XCG", "ZWG"} <= set(codes)  # XCG and ZWG: newer than py-moneyed's table
    assert [Money(1, code).currency.code for code in codes] == codes
    # django-money's choices (its form field) are the same ISO 4217 codes, none of py-moneyed's others
    assert CURRENCY_CHOICES is not None
    assert sorted(code for code, _ in CURRENCY_CHOICES) == codes
    assert not is_known_currency("IMP")  # Isle of Man pound: py-moneyed knows it, ISO 4217 does not


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        # pitfalls #10: 0.067 x 55 = 3.685 rounds half-up to 3.69 (banker's rounding would give 3.68)
        (Decimal("0.067") * 55, "EUR", "3.69"),
        (Decimal("2.5"), "JPY", "3"),
        (Decimal("1234.5"), "JPY", "1235"),
        (Decimal("0.0005"), "KWD", "0.001"),
        (Decimal("-3.685"), "EUR", "-3.69"),
        (Decimal("25") * Decimal(17) / Decimal(31), "EUR", "13.71"),
    ],
)
def test_round_minor_is_half_up_to_the_currency_exponent(amount: Decimal, currency: str, expected: str) -> None:
    result = round_minor(amount, currency)
    assert str(result) == expected


def test_allocate_gives_leftover_cents_to_largest_remainders() -> None:
    assert allocate(Decimal("100.00"), [Decimal(1)] * 3, "EUR") == [
        Decimal("33.34"),
        Decimal("33.33"),
        Decimal("33.33"),
    ]
    assert allocate(Decimal("10"), [Decimal(1), Decimal(2)], "JPY") == [Decimal("3"), Decimal("7")]


amounts = st.decimals(min_value=Decimal("-1000000"), max_value=Decimal("1000000"), places=4, allow_nan=False)


@given(amount=amounts, currency=st.sampled_from(["EUR", "JPY", "KWD"]))
def test_round_minor_is_idempotent_and_has_the_exponent(amount: Decimal, currency: str) -> None:
    once = round_minor(amount, currency)
    assert round_minor(once, currency) == once
    assert once.as_tuple().exponent == -minor_unit_exponent(currency)
    assert abs(once - amount) <= Decimal(1).scaleb(-minor_unit_exponent(currency)) / 2


@given(
    total=st.decimals(min_value=Decimal("0"), max_value=Decimal("1000000"), places=2, allow_nan=False),
    weights=st.lists(st.decimals(min_value=Decimal("0"), max_value=Decimal("1000"), places=3), min_size=1, max_size=12),
)
def test_allocate_parts_add_up_and_are_never_negative(total: Decimal, weights: list[Decimal]) -> None:
    parts = allocate(total, weights, "EUR")
    assert sum(parts, Decimal(0)) == total
    assert all(p >= 0 for p in parts)
    assert len(parts) == len(weights)
