"""Validators shared by every app that stores a currency, a time zone, a language, a country or a date."""

from datetime import date
from functools import cache
from zoneinfo import available_timezones

from babel import Locale

from billing_platform.errors import FieldError, InvalidInput, invalid
from billing_platform.money import is_known_currency

SUPPORTED_LANGUAGES = ("en", "fr")


@cache
def _timezones() -> frozenset[str]:
    return frozenset(available_timezones())


@cache
def _countries() -> frozenset[str]:
    return frozenset(
        code for code in Locale("en").territories if isinstance(code, str) and len(code) == 2 and code.isalpha()
    )


def validate_timezone(value: str, *, field: str) -> None:
    if value not in _timezones():
        raise invalid(field, "unknown_timezone", f"Unknown IANA time zone: {value}.")


def validate_currency(value: str, *, field: str) -> None:
    if not is_known_currency(value):
        raise invalid(field, "unknown_currency", f"Unknown ISO 4217 currency: {value}.")


def validate_country(value: str, *, field: str) -> None:
    if value not in _countries():
        raise invalid(field, "unknown_country", f"Unknown ISO 3166-1 alpha-2 country: {value}.")


def validate_language(value: str, *, field: str) -> None:
    if value not in SUPPORTED_LANGUAGES:
        raise invalid(
            field, "unsupported_language", "Language must be one of: {}.".format(", ".join(SUPPORTED_LANGUAGES))
        )


def validate_year(
    value: date,
    *,
    field: str,
    lowest: int = 1971,
    highest: int = 2999,
    message: str = "Use a year between %(min)s and %(max)s.",
    detail: str | None = None,
) -> None:
    """Refuse a date (or an instant) whose year is outside ``lowest``..``highest``: such a year is a
    typing mistake, and month arithmetic on it overflows. ``message`` (with ``%(min)s`` and
    ``%(max)s``) is the field error, and the detail unless ``detail`` is given."""
    if lowest <= value.year <= highest:
        return
    text = message % {"min": lowest, "max": highest}
    raise InvalidInput(detail or text, errors=[FieldError(field, "out_of_range", text)])
