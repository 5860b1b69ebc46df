"""The portal's template filters: amounts, quantities, days and periods in the reader's language,
with ``billing_platform.formatting`` (Babel), the formats of the invoice documents and of the
back-office ("12 345,67 €" in French, "€12,345.67" in English).

    {% load portal_format %}
    {{ invoice.total|money }}                 12 345,67 €     €12,345.67
    {{ line.amount|money:invoice.currency }}  (a Decimal with its document's currency)
    {{ quantity|number }}                     3 800,5         3,800.5
    {{ tax.rate|percent }}                    20 %            20%
    {{ invoice.due_date|day }}                1 nov. 2026     1 Nov 2026
    {{ device.activated_at|local_day:tz }}    (the day of an instant in a time zone)
    {{ first|period:last }}                   1–30 nov. 2026  1–30 Nov 2026

A missing value (None) prints as an empty string, so ``|default:"—"`` can follow.
"""

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django import template
from django.utils.translation import get_language
from djmoney.money import Money

from billing_platform.formatting import day_text, money_text, number_text, percent_text, period_text
from billing_platform.periods import local_date

register = template.Library()


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        parsed = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        return None
    return parsed if parsed.is_finite() else None


@register.filter
def money(value: Any, currency: str | None = None) -> str:
    """An amount at its currency's minor unit, with its symbol; a ``Decimal`` needs ``currency``."""
    if value is None or value == "":
        return ""
    amount = value if isinstance(value, Money) else _decimal(value)
    if amount is None:
        return str(value)
    return money_text(amount, currency=currency or None, language=get_language())


@register.filter
def number(value: Any) -> str:
    """A quantity as stored, without trailing zeros: 1752.0000000000 -> "1,752"."""
    parsed = _decimal(value) if value is not None and value != "" else None
    return "" if parsed is None else number_text(parsed, language=get_language())


@register.filter
def percent(value: Any) -> str:
    """A rate given in percent: 20 -> "20 %" in French, "20%" in English."""
    parsed = _decimal(value) if value is not None and value != "" else None
    return "" if parsed is None else percent_text(parsed, language=get_language())


@register.filter
def day(value: date | None) -> str:
    return "" if value is None else day_text(value, language=get_language())


@register.filter
def local_day(value: datetime | None, tz: str) -> str:
    """The day of an instant in a time zone (the customer's)."""
    return "" if value is None else day_text(local_date(value, tz), language=get_language())


@register.filter
def period(first: date | None, last: date | None) -> str:
    """The days of a period, both included (the last one is the day before its exclusive end)."""
    if first is None or last is None:
        return ""
    return period_text(first, last, language=get_language())
