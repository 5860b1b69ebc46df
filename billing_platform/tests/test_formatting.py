"""Amounts, prices, dates and periods as people read them, in French and in English (Babel)."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from djmoney.money import Money

from billing_platform.formatting import (
    country_name,
    day_text,
    instant_text,
    last_day,
    money_text,
    number_text,
    percent_text,
    period_days,
    period_text,
    unit_price_text,
)

NNBSP = "\u202f"  # French thousands separator (narrow no-break space)
NBSP = "\xa0"  # before the French currency symbol and percent sign


@pytest.mark.parametrize(
    ("amount", "currency", "fr", "en"),
    [
        (Decimal("542.35"), "EUR", f"542,35{NBSP}€", "€542.35"),
        (Decimal("12345.67"), "EUR", f"12{NNBSP}345,67{NBSP}€", "€12,345.67"),
        # rounded half-up to the cent, never three decimals: 0.125 -> 0.13
        (Decimal("0.1250"), "EUR", f"0,13{NBSP}€", "€0.13"),
        (Decimal("-37.5"), "EUR", f"-37,50{NBSP}€", "-€37.50"),
        (Decimal("1500.0000"), "JPY", f"1{NNBSP}500{NBSP}JPY", "JP¥1,500"),
        (Decimal("1.5"), "KWD", f"1,500{NBSP}KWD", "KWD1.500"),
    ],
)
def test_an_amount_is_rounded_to_its_currency_and_shown_with_its_symbol(
    amount: Decimal, currency: str, fr: str, en: str
) -> None:
    assert money_text(amount, currency=currency, language="fr") == fr
    assert money_text(amount, currency=currency, language="en") == en
    assert money_text(Money(amount, currency), language="fr") == fr


def test_a_whole_amount_in_a_sentence_drops_its_zero_cents() -> None:
    assert money_text(Decimal("40.00"), currency="EUR", language="fr", whole=True) == f"40{NBSP}€"
    assert money_text(Decimal("40.00"), currency="EUR", language="en", whole=True) == "€40"
    assert money_text(Decimal("40.5"), currency="EUR", language="fr", whole=True) == f"40,50{NBSP}€"
    assert money_text(Decimal("1500"), currency="EUR", language="fr", whole=True) == f"1{NNBSP}500{NBSP}€"


def test_a_money_shown_as_another_currency_is_refused() -> None:
    with pytest.raises(ValueError, match="a EUR amount shown as USD"):
        money_text(Money(1, "EUR"), currency="USD", language="en")
    with pytest.raises(TypeError, match="needs its currency"):
        money_text(Decimal(1), language="en")


@pytest.mark.parametrize(
    ("price", "fr", "en"),
    [
        (Decimal("0.0125000000"), f"0,0125{NBSP}€", "€0.0125"),  # its own places
        (Decimal("25.0000000000"), f"25,00{NBSP}€", "€25.00"),  # at least the currency's
        (Decimal("0.00123456789"), f"0,001235{NBSP}€", "€0.001235"),  # at most 6
        (Decimal("1200.5"), f"1{NNBSP}200,50{NBSP}€", "€1,200.50"),
    ],
)
def test_a_unit_price_keeps_its_places(price: Decimal, fr: str, en: str) -> None:
    assert unit_price_text(price, currency="EUR", language="fr") == fr
    assert unit_price_text(price, currency="EUR", language="en") == en


def test_numbers_and_percentages() -> None:
    assert number_text(Decimal("3800.0000000000"), language="fr") == f"3{NNBSP}800"
    assert number_text(Decimal("3800.0000000000"), language="en") == "3,800"
    assert number_text(Decimal("25.5000"), language="fr") == "25,5"
    assert percent_text(Decimal("20.00"), language="fr") == f"20{NBSP}%"
    assert percent_text(Decimal("5.5"), language="en") == "5.5%"


def test_days_and_instants() -> None:
    assert day_text(date(2026, 11, 1), language="fr") == "1 nov. 2026"
    assert day_text(date(2026, 11, 1), language="en") == "1 Nov 2026"
    assert day_text(date(2026, 11, 1), language="fr", format="long") == "1 novembre 2026"
    # 13:05 UTC is 14:05 in Paris in November (CET, UTC+1)
    at = datetime(2026, 11, 1, 13, 5, 7, tzinfo=UTC)
    assert instant_text(at, tz="Europe/Paris", language="fr") == "1 nov. 2026, 14:05 CET"
    assert instant_text(at, tz="Europe/Paris", language="en", seconds=True) == "1 Nov 2026, 14:05:07 CET"
    assert instant_text(at, tz="UTC", language="en") == "1 Nov 2026, 13:05 UTC"


def test_a_period_shows_its_last_day_not_its_exclusive_end() -> None:
    # [2026-11-01, 2026-12-01) in Paris: 1 to 30 November
    start = datetime(2026, 10, 31, 23, 0, tzinfo=UTC)
    end = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    first, last = period_days(start, end, "Europe/Paris")
    assert (first, last) == (date(2026, 11, 1), date(2026, 11, 30))
    assert last_day(date(2026, 12, 1)) == date(2026, 11, 30)
    assert period_text(first, last, language="en") == "1–30 Nov 2026"
    assert period_text(first, last, language="fr") == "1–30 nov. 2026"
    assert (
        period_text(date(2026, 11, 28), date(2026, 12, 3), language="en") == "28 Nov\u2009–\u20093 Dec 2026"
    )  # thin spaces around the dash
    assert period_text(date(2026, 11, 28), date(2026, 11, 28), language="fr") == "28 nov. 2026"


def test_country_names() -> None:
    assert country_name("de", language="fr") == "Allemagne"
    assert country_name("DE", language="en") == "Germany"
    assert country_name("XX", language="en") == "XX"
