"""How the back-office pages print what they show: stored decimals as plain numbers the templates
localize (0,010 in French), amounts (a ``Money``, or a line's ``Decimal`` with its document's
currency) with their currency's decimals, a half-open period as its first and last local days, and
the labels of choices.

The pages print an amount as a number in the reader's format followed (or preceded) by the ISO
code, "24,00 EUR", in table columns that line up; the invoice documents print it with its symbol
("24,00 €", ``invoicing.pdf``)."""

from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, overload

from django.utils.http import urlencode
from djmoney.money import Money

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


@overload
def money_display(value: Money | None) -> Decimal | None: ...
@overload
def money_display(value: Money | Decimal | None, currency: str) -> Decimal | None: ...
def money_display(value: Money | Decimal | None, currency: str | None = None) -> Decimal | None:
    """An amount with its currency's decimals at least: Money(26, "EUR") -> 26.00, Money(1500, "JPY")
    -> 1500. A ``Decimal`` (a line's amount, a price) is given with its document's ``currency``."""
    if isinstance(value, Money):
        code = value.currency.code
        if currency is not None and currency != code:
            raise ValueError("a %s amount shown as %s" % (code, currency))
        value, currency = value.amount, code
    if value is None:
        return None
    if currency is None:
        raise TypeError("a Decimal amount needs its currency")
    return decimal_plain(value, currency_places(currency))


def decimal_or_none(value: Any) -> Decimal | None:
    """A stored number (a Decimal, or a string in a JSON detail) as a finite Decimal, else None."""
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        return None
    return number if number.is_finite() else None


def quantity_display(value: Any) -> Decimal | None:
    """A stored quantity as printed: 1752.0000000000 -> 1752, 25.5000000000 -> 25.5."""
    number = decimal_or_none(value)
    return None if number is None else decimal_plain(number, 0)


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


def period_days(start: datetime, end: datetime, tz: str) -> tuple[date, date]:
    """A half-open period as the first and last local days it covers: [1 Apr, 1 May) -> 1 Apr, 30 Apr."""
    return local_date(start, tz), local_date(end - timedelta(microseconds=1), tz)


def choice_label(choices: Any, value: str) -> str:
    """The label of a stored choice (``TextChoices``), the value itself when it is not one."""
    return str(dict(choices.choices).get(value, value)) if value else ""


def query_string(**params: str) -> str:
    """A query string of the non-empty parameters, for links that keep the filters."""
    return urlencode({k: v for k, v in params.items() if v})
