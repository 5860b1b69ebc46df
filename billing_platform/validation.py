"""Validators shared by every app that stores a currency, a time zone, a language, a country, a
date or a text, and the collector of field errors that lets a service report every problem of a
request at once."""

import re
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from functools import cache
from typing import Any
from zoneinfo import available_timezones

import pycountry

from billing_platform.errors import DomainError, FieldError, InvalidInput, invalid
from billing_platform.money import is_known_currency

SUPPORTED_LANGUAGES = ("en", "fr")


@cache
def _timezones() -> frozenset[str]:
    return frozenset(available_timezones())


@cache
def _countries() -> frozenset[str]:
    # ISO 3166-1 alpha-2 as assigned (pycountry ships Debian's iso-codes): no user-assigned codes
    # (XA, XK, ZZ), no exceptional reservations (EU, UN): an invoice's country must be a real one.
    return frozenset(country.alpha_2 for country in pycountry.countries)


def is_country(code: str) -> bool:
    return code in _countries()


def validate_timezone(value: str, *, field: str) -> None:
    if value not in _timezones():
        raise invalid(field, "unknown_timezone", f"Unknown IANA time zone: {value}.")


def validate_currency(value: str, *, field: str) -> None:
    if not is_known_currency(value):
        raise invalid(field, "unknown_currency", f"Unknown ISO 4217 currency: {value}.")


def validate_country(value: str, *, field: str) -> None:
    if value not in _countries():
        raise invalid(field, "unknown_country", f"Unknown ISO 3166-1 alpha-2 country: {value}.")


# A postal code anywhere: letters, digits, spaces and hyphens ("75008", "SW1A 1AA", "00-950").
_POSTAL_CODE = re.compile(r"^[A-Z0-9](?:[A-Z0-9 -]*[A-Z0-9])?$")
# The countries whose format is short to state and without exceptions, by ISO 3166 code; any other
# country's postal code follows the rule above only.
POSTAL_CODE_FORMATS: dict[str, tuple[re.Pattern[str], str]] = {
    "FR": (re.compile(r"^\d{5}$"), "5 digits, e.g. 75008"),
    "DE": (re.compile(r"^\d{5}$"), "5 digits, e.g. 10115"),
    "ES": (re.compile(r"^\d{5}$"), "5 digits, e.g. 28001"),
    "IT": (re.compile(r"^\d{5}$"), "5 digits, e.g. 00184"),
    "BE": (re.compile(r"^\d{4}$"), "4 digits, e.g. 1000"),
    "NL": (re.compile(r"^\d{4} ?[A-Z]{2}$"), "4 digits and 2 letters, e.g. 1012 AB"),
    "SE": (re.compile(r"^\d{3} ?\d{2}$"), "5 digits, e.g. 114 55"),
    "US": (re.compile(r"^\d{5}(?:-\d{4})?$"), "a ZIP code of 5 digits, or 5+4, e.g. 94105-1804"),
}


def postal_code_error(value: str, country: str) -> str | None:
    """Why ``value`` (upper-cased, trimmed) is not a postal code of ``country``, or None."""
    known = POSTAL_CODE_FORMATS.get(country.upper())
    if known is not None:
        pattern, shape = known
        return None if pattern.match(value) else "A postal code in %s is %s." % (country.upper(), shape)
    if not _POSTAL_CODE.match(value):
        return "A postal code has letters, digits, spaces and hyphens only."
    return None


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


# The years a date or an instant given to Tripod may fall in, in UTC for an instant. Earlier or later
# is a typing mistake that breaks what reads it back: "0001-01-01T00:00:00+14:00" is year 0 in UTC,
# which PostgreSQL stores but Python cannot load, and year 10000 overflows. Tighter bounds of their
# own stay where a rule needs them (a subscription signed between 1971 and 2999, a billing date).
EARLIEST_YEAR = 1900
LATEST_YEAR = 9999


DATE_RANGE_MESSAGE = "Use a date between the years %(min)s and %(max)s."


def date_in_range(value: date) -> bool:
    """Whether a date, or an instant once in UTC, lies in ``EARLIEST_YEAR``..``LATEST_YEAR``."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        try:
            value = value.astimezone(UTC)
        except OverflowError:  # year 0 or year 10000 once the offset is applied
            return False
    return EARLIEST_YEAR <= value.year <= LATEST_YEAR


def validate_date_range(value: date, *, field: str) -> None:
    """The rule for every date and instant of the API and the back-office (``date_in_range``);
    raises ``InvalidInput`` with an ``out_of_range`` error on ``field``."""
    if not date_in_range(value):
        text = DATE_RANGE_MESSAGE % {"min": EARLIEST_YEAR, "max": LATEST_YEAR}
        raise InvalidInput(text, errors=[FieldError(field, "out_of_range", text)])


# Characters no text given to Tripod may hold. The C0 controls and DEL are invisible, and XML 1.0
# refuses the C0 ones: a single one in a customer's name breaks the Factur-X document and the
# invoice's mail. NUL cannot be stored by PostgreSQL; an unpaired surrogate is not a character and
# cannot be written as UTF-8; U+FFFE and U+FFFF are not characters either (XML refuses them too).
# A multi-line text (a description, a postal address) keeps tab and line breaks.
_REFUSED_CHARACTERS = re.compile("[\x00-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
_REFUSED_IN_MULTILINE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def find_refused_character(text: str, *, multiline: bool = False) -> re.Match[str] | None:
    """The first character of ``text`` that no text may hold, or None."""
    return (_REFUSED_IN_MULTILINE if multiline else _REFUSED_CHARACTERS).search(text)


def refused_character(text: str, *, multiline: bool = False) -> str | None:
    """Why ``text`` cannot be taken (its first character that no text may hold), or None."""
    found = find_refused_character(text, multiline=multiline)
    if found is None:
        return None
    code = ord(found.group())
    if 0xD800 <= code <= 0xDFFF:
        kind = "Unpaired surrogates are"
    elif code >= 0xFFFE:
        kind = "Non-characters are"
    elif multiline:
        kind = "Control characters other than tab and line breaks are"
    else:
        kind = "Control characters (line breaks and tabs included) are"
    return "%s not allowed: U+%04X at position %d." % (kind, code, found.start() + 1)


def without_refused_characters(text: str) -> str:
    """``text`` with each character no single-line text may hold made a space (NUL removed): for
    what is typed outside a form, such as a search or a one-line reason."""
    return _REFUSED_CHARACTERS.sub(" ", text.replace("\x00", ""))


def validate_text(value: str, *, field: str, multiline: bool = False) -> None:
    """Refuse a text holding a character no text may hold (``refused_character``): a 422 on ``field``."""
    message = refused_character(value, multiline=multiline)
    if message is not None:
        raise invalid(field, "control_character", message)


def json_strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string of a JSON value with its path (``components[0].charge.model``), keys included
    (with the path of their object); walked without recursion."""
    stack: list[tuple[str, Any]] = [(path, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            yield where, item
        elif isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str):
                    yield where, key
                stack.append((field_path(where, str(key)), child))
        elif isinstance(item, list):
            stack.extend((field_path(where, "[%d]" % i), child) for i, child in enumerate(item))


def json_refused_character(value: Any, path: str = "") -> tuple[str, str] | None:
    """The path and the reason of the first string of a JSON value that holds a character no
    single-line text may hold (``refused_character``), or None. JSON values are codes, amounts,
    dimensions and names: none of them spans lines."""
    for where, text in json_strings(value, path):
        message = refused_character(text)
        if message is not None:
            return where, message
    return None


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


# Metadata: the integrator's own keys and values on a customer, a subscription or an invoice (their
# ERP's ids, a sales rep), never read by Tripod. Stripe's limits, which integrators already know.
METADATA_MAX_KEYS = 50
METADATA_KEY_MAX_LENGTH = 40
METADATA_VALUE_MAX_LENGTH = 500
# Square brackets would make ``?metadata[key]=value`` ambiguous.
_METADATA_KEY_REFUSED = re.compile(r"[\[\]]")


def metadata_errors(value: Any, *, field: str = "metadata", removals: bool = False) -> list[FieldError]:
    """Why ``value`` cannot be stored as metadata, one error per key: an object of at most 50 keys of
    1 to 40 characters (no square brackets), each with a string of at most 500 characters. With
    ``removals`` (a PATCH), a key may be null: it is removed."""
    if not isinstance(value, dict):
        return [FieldError(field, "invalid", "metadata is an object of string keys and string values.")]
    errors: list[FieldError] = []
    if len(value) > METADATA_MAX_KEYS:
        errors.append(FieldError(field, "too_many_keys", "At most %d keys (got %d)." % (METADATA_MAX_KEYS, len(value))))
    for key, item in value.items():
        where = field_path(field, str(key))
        if not 1 <= len(key) <= METADATA_KEY_MAX_LENGTH:
            errors.append(FieldError(where, "invalid_key", "A key has 1 to %d characters." % METADATA_KEY_MAX_LENGTH))
        elif _METADATA_KEY_REFUSED.search(key) or refused_character(key):
            errors.append(FieldError(where, "invalid_key", "A key holds no square brackets and no control characters."))
        if item is None and removals:
            continue
        if not isinstance(item, str):
            errors.append(FieldError(where, "invalid_value", "A value is a string."))
        elif len(item) > METADATA_VALUE_MAX_LENGTH:
            errors.append(
                FieldError(where, "too_long", "A value has at most %d characters." % METADATA_VALUE_MAX_LENGTH)
            )
        else:
            message = refused_character(item, multiline=True)
            if message is not None:
                errors.append(FieldError(where, "control_character", message))
    return errors


def validate_metadata(value: Any, *, field: str = "metadata") -> dict[str, str]:
    """``value`` as stored metadata, or ``InvalidInput`` listing every refused key."""
    errors = metadata_errors(value, field=field)
    if errors:
        raise InvalidInput("; ".join("%s: %s" % (e.field, e.message) for e in errors[:DETAIL_ERRORS]), errors=errors)
    return dict(value)


def metadata_merge(current: dict[str, str], changes: Any, *, field: str = "metadata") -> dict[str, str]:
    """A PATCH of metadata, as Stripe's: the keys given are set, a key given null is removed, the
    others are kept. The result holds at most 50 keys."""
    errors = metadata_errors(changes, field=field, removals=True)
    if not errors:
        merged = {k: v for k, v in {**current, **changes}.items() if v is not None}
        if len(merged) > METADATA_MAX_KEYS:
            errors.append(
                FieldError(
                    field,
                    "too_many_keys",
                    "At most %d keys: this change would leave %d." % (METADATA_MAX_KEYS, len(merged)),
                )
            )
    if errors:
        raise InvalidInput("; ".join("%s: %s" % (e.field, e.message) for e in errors[:DETAIL_ERRORS]), errors=errors)
    return merged
