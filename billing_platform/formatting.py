"""How Tripod prints amounts, prices, numbers, dates, instants and periods for a person, in a
language: Babel's CLDR formats, the same in the back-office (its template filters,
``backoffice/templatetags/tripod_format.py``), in line descriptions (``invoicing.lines``) and in
the legal mentions (``tenancy.legal_mentions``).

French reads "12 345,67 €" (a narrow no-break space between thousands, a no-break space before the
symbol), "1 nov. 2026" and "1–30 nov. 2026"; English (British formats, as the invoices) reads
"€12,345.67", "1 Nov 2026" and "1–30 Nov 2026".

- An **amount** is rounded once, half-up, to its currency's minor unit (``round_minor``): EUR never
  shows three decimals.
- A **unit price** keeps the places it was set with (0,0125 €), at least the currency's (25,00 €),
  at most ``MAX_PRICE_PLACES``; pages label it as a unit price.
- A **period** is stored half-open, ``[start, end)``; it is printed with its last day, the one
  before ``end`` (``period_last_day``): [1 Nov, 1 Dec) reads "1–30 Nov 2026".
"""

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_interval, format_time
from babel.numbers import format_currency, format_decimal, format_percent, parse_pattern
from djmoney.money import Money

from billing_platform.money import minor_unit_exponent, round_minor
from billing_platform.periods import local_date

# The Babel locale of each language Tripod speaks; English prints British formats ("1 Nov 2026",
# day before month), as Tripod's sellers are European.
BABEL_LOCALES = {"fr": "fr_FR", "en": "en_GB"}
# Unit prices keep at most this many places; enough for 0.005 EUR per MB tiers.
MAX_PRICE_PLACES = 6


def babel_locale(language: str | None) -> str:
    """``"fr"`` -> ``"fr_FR"``; a language Tripod does not speak (or None) prints as English."""
    return BABEL_LOCALES.get((language or "en")[:2].lower(), BABEL_LOCALES["en"])


def _amount_and_currency(value: Money | Decimal, currency: str | None) -> tuple[Decimal, str]:
    if isinstance(value, Money):
        code = value.currency.code
        if currency is not None and currency != code:
            raise ValueError("a %s amount shown as %s" % (code, currency))
        return value.amount, code
    if currency is None:
        raise TypeError("a Decimal amount needs its currency")
    return value, currency


def plain(value: Decimal) -> Decimal:
    """``Decimal("3800.0000000000")`` -> ``3800``: no trailing zeros, never exponent form, never "-0"."""
    value = value.normalize()
    if value == value.to_integral_value():
        value = value.quantize(Decimal(1))
    return value.copy_abs() if value.is_zero() else value


def places(value: Decimal) -> int:
    """Decimal places a value needs: ``0.0100000000`` -> 2, ``25.00`` -> 0."""
    exponent = plain(value).as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def money_text(
    value: Money | Decimal, *, language: str | None, currency: str | None = None, whole: bool = False
) -> str:
    """An amount at its currency's minor unit, with its symbol: ``Money("12345.674", "EUR")`` ->
    "12 345,67 €" in French, "€12,345.67" in English. A ``Decimal`` (a line's amount) is given with
    its document's ``currency``; a ``Money`` shown as another currency is refused. ``whole``: a
    whole amount without its zero cents, as a sentence says it ("40 €"; 40.50 stays "40,50 €")."""
    amount, code = _amount_and_currency(value, currency)
    try:
        amount = round_minor(amount, code)
    except ValueError:  # not an ISO 4217 code: as stored, Babel's two places
        pass
    locale = babel_locale(language)
    if whole and amount == amount.to_integral_value():
        parsed = Locale.parse(locale)
        pattern = parse_pattern(parsed.currency_formats["standard"])
        pattern.frac_prec = (0, 0)
        return pattern.apply(amount, parsed, currency=code, currency_digits=False)
    return format_currency(amount, code, locale=locale)


def unit_price_text(value: Money | Decimal, *, language: str | None, currency: str | None = None) -> str:
    """A unit price with the places it was set with, at least its currency's, at most
    ``MAX_PRICE_PLACES``: 0.0125 EUR -> "0,0125 €", 25 EUR -> "25,00 €" in French."""
    amount, code = _amount_and_currency(value, currency)
    try:
        minor = minor_unit_exponent(code)
    except ValueError:
        minor = 2
    shown = amount.quantize(Decimal(1).scaleb(-min(max(minor, places(amount)), MAX_PRICE_PLACES)))
    return format_currency(shown, code, locale=babel_locale(language), decimal_quantization=False)


def number_text(value: Decimal | int, *, language: str | None) -> str:
    """A quantity as stored, without trailing zeros, with the language's separators: 3800 -> "3 800"."""
    return format_decimal(plain(Decimal(value)), locale=babel_locale(language), decimal_quantization=False)


def percent_text(rate: Decimal, *, language: str | None) -> str:
    """A rate given in percent: 20 -> "20 %" in French, "20%" in English; 5.5 -> "5,5 %"."""
    return format_percent(plain(rate) / 100, locale=babel_locale(language), decimal_quantization=False)


def day_text(day: date, *, language: str | None, format: str = "medium") -> str:
    """A calendar day: "1 nov. 2026" in French, "1 Nov 2026" in English (``format="long"``: "1
    novembre 2026", "1 November 2026")."""
    return format_date(day, format=format, locale=babel_locale(language))


def instant_text(at: datetime, *, tz: str, language: str | None, seconds: bool = False) -> str:
    """An instant in a time zone, with the zone's abbreviation: "1 Nov 2026, 14:05 CET"."""
    zone = ZoneInfo(tz)
    local = at.astimezone(zone)
    locale = babel_locale(language)
    time = format_time(local, "HH:mm:ss" if seconds else "HH:mm", tzinfo=zone, locale=locale)
    pattern = str(Locale.parse(locale).datetime_formats["medium"])
    return "%s %s" % (
        pattern.replace("{1}", day_text(local.date(), language=language)).replace("{0}", time),
        local.tzname(),
    )


def period_text(first: date, last: date, *, language: str | None) -> str:
    """The days of a period, both included: "1–30 nov. 2026"; "28 Nov – 3 Dec 2026"; one day alone
    is that day."""
    if first == last:
        return day_text(first, language=language)
    return str(format_interval(first, last, "yMMMd", locale=babel_locale(language)))


def last_day(end: date) -> date:
    """The last day of a period of days that ends, exclusively, on ``end``: 2026-12-01 -> 2026-11-30."""
    return end - timedelta(days=1)


def period_days(start: datetime, end: datetime, tz: str) -> tuple[date, date]:
    """A half-open period of instants as the first and last local days it covers: [1 Nov 00:00,
    1 Dec 00:00) in Europe/Paris -> 1 Nov, 30 Nov."""
    return local_date(start, tz), local_date(end - timedelta(microseconds=1), tz)


def country_name(code: str, *, language: str | None) -> str:
    """An ISO 3166 country's name: "FR" -> "France", "DE" -> "Allemagne" in French; an unknown code
    is itself."""
    return str(Locale.parse(babel_locale(language)).territories.get(code.upper(), code.upper()))
