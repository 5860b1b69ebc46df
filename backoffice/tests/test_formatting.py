"""The back-office prints amounts, prices, quantities, days, instants and periods with its template
filters (``{% load tripod_format %}``), in the reader's language, with Babel: French "12 345,67 €",
English "€12,345.67", as the invoice documents do."""

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.template import Context, Template
from django.utils import translation
from djmoney.money import Money

NNBSP = "\u202f"  # French thousands separator
NBSP = "\xa0"  # before the French currency symbol


def render(source: str, language: str, **context: Any) -> str:
    with translation.override(language):
        return Template("{% load tripod_format %}" + source).render(Context(context))


@pytest.mark.parametrize(
    ("value", "currency", "fr", "en"),
    [
        (Money("542.35", "EUR"), "", f"542,35{NBSP}€", "€542.35"),
        (Money("12345.67", "EUR"), "", f"12{NNBSP}345,67{NBSP}€", "€12,345.67"),
        # a line's Decimal with its document's currency; 3 decimals are never shown for EUR: 0.125 -> 0.13
        (Decimal("0.1250"), "EUR", f"0,13{NBSP}€", "€0.13"),
        (Decimal("-12.5000"), "EUR", f"-12,50{NBSP}€", "-€12.50"),
        (Money("1500.0000", "JPY"), "", f"1{NNBSP}500{NBSP}JPY", "JP¥1,500"),
    ],
)
def test_money_is_rounded_to_the_currency_and_shown_with_its_symbol(
    value: Any, currency: str, fr: str, en: str
) -> None:
    source = "{{ value|money:currency }}" if currency else "{{ value|money }}"
    assert render(source, "fr", value=value, currency=currency) == fr
    assert render(source, "en", value=value, currency=currency) == en


def test_unit_prices_keep_their_places() -> None:
    # 0.0125 EUR per MB keeps its 4 places; 25 EUR gets the currency's 2
    assert render("{{ p|unit_price:'EUR' }}", "fr", p=Decimal("0.0125000000")) == f"0,0125{NBSP}€"
    assert render("{{ p|unit_price:'EUR' }}", "en", p=Decimal("0.0125000000")) == "€0.0125"
    assert render("{{ p|unit_price }}", "en", p=Money("25", "EUR")) == "€25.00"


def test_quantities_rates_and_missing_values() -> None:
    assert render("{{ q|number }}", "fr", q=Decimal("12345.5000000000")) == f"12{NNBSP}345,5"
    assert render("{{ q|number }}", "en", q=Decimal("12345.5000000000")) == "12,345.5"
    assert render("{{ r|percent }}", "fr", r=Decimal("20.00")) == f"20{NBSP}%"
    assert render("{{ r|percent }}", "en", r=Decimal("5.5")) == "5.5%"
    assert render("{{ v|money|default:'—' }}|{{ v|number|default:'—' }}", "en", v=None) == "—|—"
    assert render("{{ v|number }}", "en", v="n/a") == "n/a"


def test_days_instants_and_periods() -> None:
    context = {
        "d": date(2026, 11, 1),
        "at": datetime(2026, 11, 1, 13, 5, 7, tzinfo=UTC),  # 14:05:07 in Paris (CET)
        "first": date(2026, 11, 1),
        "last": date(2026, 11, 30),
    }
    source = "{{ d|day }} | {{ at|moment:'Europe/Paris' }} | {{ at|moment_seconds:'UTC' }} | {{ first|period:last }}"
    assert render(source, "fr", **context) == (
        "1 nov. 2026 | 1 nov. 2026, 14:05 CET | 1 nov. 2026, 13:05:07 UTC | 1–30 nov. 2026"
    )
    assert render(source, "en", **context) == (
        "1 Nov 2026 | 1 Nov 2026, 14:05 CET | 1 Nov 2026, 13:05:07 UTC | 1–30 Nov 2026"
    )
    # 22:30 UTC on 31 March is 1 April in Paris
    late = datetime(2026, 3, 31, 22, 30, tzinfo=UTC)
    assert render("{{ at|local_day:'Europe/Paris' }}", "en", at=late) == "1 Apr 2026"


def test_country_names() -> None:
    assert render("{{ c|country }}", "fr", c="DE") == "Allemagne"
    assert render("{{ c|country }}", "en", c="DE") == "Germany"
