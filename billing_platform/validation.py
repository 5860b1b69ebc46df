"""Validators shared by every app that stores a currency, a time zone, a language, a country or a
date, and the collector of field errors that lets a service report every problem of a request at once."""

from collections.abc import Callable
from datetime import date
from functools import cache
from zoneinfo import available_timezones

from babel import Locale

from billing_platform.errors import DomainError, FieldError, InvalidInput, invalid
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


# How many errors the detail of the default exception names; ``errors`` carries all of them.
DETAIL_ERRORS = 5


class FieldErrors:
    """Collects field errors so that one response lists them all, then raises them as one exception.

    Paths are written the way a client reads its own JSON: ``code``, ``tiers[1].up_to``,
    ``components[0].charge.amount``.
    """

    def __init__(self) -> None:
        self.items: list[FieldError] = []

    def add(self, field: str, code: str, message: str) -> None:
        self.items.append(FieldError(field, code, message))

    def absorb(self, exc: InvalidInput, prefix: str = "") -> None:
        """Take the errors of a nested validation, re-pathed under ``prefix``: ``amount`` absorbed
        under ``cells[0].charge`` is ``cells[0].charge.amount``, ``[1]`` under ``tiers`` is
        ``tiers[1]``. An error without field errors becomes one error on ``prefix`` itself."""
        for error in exc.errors or [FieldError("", exc.code, exc.detail)]:
            self.add(field_path(prefix, error.field), error.code, error.message)

    def raise_if_any(
        self, exc_type: type[DomainError] | Callable[[list[FieldError]], DomainError] = InvalidInput
    ) -> None:
        """Raise the errors collected, if any. ``exc_type`` is an exception class (its detail names
        the first few errors) or a function that builds the exception from the errors, such as the
        charge models' ``charge_invalid``."""
        if not self.items:
            return
        if isinstance(exc_type, type):
            detail = "; ".join("%s: %s" % (e.field, e.message) for e in self.items[:DETAIL_ERRORS])
            raise exc_type(detail, errors=self.items)
        raise exc_type(self.items)


def field_path(prefix: str, name: str) -> str:
    """``field_path("tiers[1]", "up_to")`` -> ``"tiers[1].up_to"``; an empty side adds no dot, and an
    index needs none: ``field_path("tiers", "[1]")`` -> ``"tiers[1]"``."""
    if not prefix or not name:
        return prefix or name
    if name.startswith("["):
        return prefix + name
    return "%s.%s" % (prefix, name)
