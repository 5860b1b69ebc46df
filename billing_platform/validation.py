"""Validators shared by every app that stores a currency, a time zone, a language or a country."""

from functools import cache
from zoneinfo import available_timezones

from babel import Locale

from billing_platform.errors import invalid
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
