"""How the back-office pages print what they show, in the reader's language: amounts, unit prices,
quantities, rates, days, instants and periods (the functions below, which the templates use as
filters: ``{% load tripod_format %}``, ``backoffice/templatetags/tripod_format.py``), with
``billing_platform.formatting``, the Babel formats of the invoice documents ("12 345,67 €" in
French, "€12,345.67" in English; "1–30 nov. 2026"); and the labels of choices.

Presenters hand the templates typed values, an amount as a ``Money`` (a line's ``Decimal`` made one
with its document's currency), never a formatted string; a template prints it with ``|money``
(rounded to the currency's minor unit) or ``|unit_price`` (its own places). A period is shown with
its last day, the day before its exclusive end (``period_days``)."""

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils.http import urlencode
from django.utils.translation import get_language
from djmoney.money import Money

from billing_platform.formatting import (
    country_name,
    day_text,
    instant_text,
    money_text,
    number_text,
    percent_text,
    period_text,
    unit_price_text,
)
from billing_platform.formatting import period_days as period_days
from billing_platform.money import minor_unit_exponent
from billing_platform.periods import local_date

# Keys of charges and stored details whose values are names (dimension values, codes), never numbers.
NAME_KEYS = frozenset(
    {"values", "match", "meter", "source", "model", "dimensions", "assumption", "clamped_to", "cell", "event_count"}
)


def decimal_plain(value: Decimal, places: int = 2) -> Decimal:
    """Trailing zeros off, but at least ``places`` decimals: 240.0000000000 -> 240.00, 0.0125 stays."""
    exponent = value.normalize().as_tuple().exponent
    shown = max(places, -exponent if isinstance(exponent, int) else 0)
    return value.quantize(Decimal(1).scaleb(-shown))


def currency_places(currency: str) -> int:
    try:
        return minor_unit_exponent(currency)
    except ValueError:  # not an ISO 4217 code: show it as it is stored, two places at least
        return 2


def money_of(value: Money | Decimal | None, currency: str) -> Money | None:
    """A line's ``Decimal`` (or a stored detail's amount) as a ``Money`` in its document's currency."""
    if value is None or isinstance(value, Money):
        return value
    return Money(value, currency)


def decimal_or_none(value: Any) -> Decimal | None:
    """A stored number (a Decimal, or a string in a JSON detail) as a finite Decimal, else None."""
    try:
        parsed = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        return None
    return parsed if parsed.is_finite() else None


def quantity_display(value: Any) -> Decimal | None:
    """A stored quantity without its trailing zeros: 1752.0000000000 -> 1752, 25.5000000000 -> 25.5."""
    parsed = decimal_or_none(value)
    return None if parsed is None else decimal_plain(parsed, 0)


def decimals_in(value: Any, key: str = "") -> Any:
    """Stored JSON (charges, quote and line details) with its decimal strings turned into Decimals,
    so the templates print them in the reader's format (0,010 in French)."""
    if key in NAME_KEYS:
        return value
    if isinstance(value, dict):
        return {k: decimals_in(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [decimals_in(v) for v in value]
    if isinstance(value, str):
        try:
            number = Decimal(value)
        except InvalidOperation:
            return value
        return number if number.is_finite() else value
    return value


def choice_label(choices: Any, value: str) -> str:
    """The label of a stored choice (``TextChoices``), the value itself when it is not one."""
    return str(dict(choices.choices).get(value, value)) if value else ""


def query_string(**params: str) -> str:
    """A query string of the non-empty parameters, for links that keep the filters."""
    return urlencode({k: v for k, v in params.items() if v})


# --- in the reader's language (the template filters) ----------------------------------------------


def _amount(value: Any) -> Money | Decimal | None:
    """A value to print as an amount: a ``Money``, or a number (a stored detail's string included)."""
    if isinstance(value, Money):
        return value
    return decimal_or_none(value) if not isinstance(value, bool) else None


def money(value: Any, currency: str | None = None) -> str:
    """An amount at its currency's minor unit, with its symbol; a ``Decimal`` needs ``currency``.
    What is not a number is printed as it is."""
    if value is None or value == "":
        return ""
    amount = _amount(value)
    if amount is None:
        return str(value)
    return money_text(amount, currency=currency or None, language=get_language())


def unit_price(value: Any, currency: str | None = None) -> str:
    """A unit price (or a catalog price) with the places it was set with, at least its currency's."""
    if value is None or value == "":
        return ""
    amount = _amount(value)
    if amount is None:
        return str(value)
    return unit_price_text(amount, currency=currency or None, language=get_language())


def number(value: Any) -> str:
    """A quantity without trailing zeros, with the language's separators; what is not a number is
    printed as it is."""
    if value is None or value == "":
        return ""
    parsed = None if isinstance(value, bool) else decimal_or_none(value)
    return str(value) if parsed is None else number_text(parsed, language=get_language())


def percent(value: Any) -> str:
    """A rate given in percent (20 -> "20 %" in French, "20%" in English)."""
    if value is None or value == "":
        return ""
    parsed = None if isinstance(value, bool) else decimal_or_none(value)
    return str(value) if parsed is None else percent_text(parsed, language=get_language())


def ratio_percent(value: Any) -> str:
    """A ratio as a percentage (0.95 -> "95 %" in French, "95%" in English)."""
    parsed = None if isinstance(value, bool) else decimal_or_none(value)
    if parsed is None:
        return "" if value is None or value == "" else str(value)
    return percent((parsed * 100).quantize(Decimal("0.1")).normalize())


def day(value: date | None) -> str:
    """A calendar day; an instant is refused, as its day depends on a time zone (use ``moment``)."""
    if value is None or value == "":
        return ""
    if isinstance(value, datetime):
        raise TypeError("day takes a date; an instant needs its time zone: use moment")
    return day_text(value, language=get_language())


def local_day(value: datetime | None, tz: str) -> str:
    """The calendar day of an instant in a time zone: 2026-03-31T22:30Z is "1 Apr 2026" in Paris."""
    if value is None or value == "":
        return ""
    return day_text(local_date(value, tz), language=get_language())


def moment(value: datetime | None, tz: str) -> str:
    """An instant in a time zone, to the minute, with the zone: "1 Nov 2026, 14:05 CET"."""
    if value is None or value == "":
        return ""
    return instant_text(value, tz=tz, language=get_language())


def moment_seconds(value: datetime | None, tz: str) -> str:
    """An instant in a time zone, to the second, with the zone: "1 Nov 2026, 14:05:07 CET"."""
    if value is None or value == "":
        return ""
    return instant_text(value, tz=tz, language=get_language(), seconds=True)


def period(first: date | None, last: date | None) -> str:
    """The days of a period, both included (``last`` is its last day, not its exclusive end)."""
    if first is None or last is None:
        return ""
    return period_text(first, last, language=get_language())


def country(code: str | None) -> str:
    """A country's name from its ISO code."""
    if not code:
        return ""
    return country_name(code, language=get_language())
