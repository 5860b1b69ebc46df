"""FieldErrors: every field error of a request collected, re-pathed and raised as one exception;
and the rules every date and text given to Tripod follows."""

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from billing_platform.errors import FieldError, InvalidInput, invalid
from billing_platform.validation import (
    FieldErrors,
    date_in_range,
    field_path,
    json_refused_character,
    refused_character,
    validate_date_range,
    validate_text,
    without_refused_characters,
)


@pytest.mark.parametrize(
    ("prefix", "name", "path"),
    [
        ("cells[0].charge", "amount", "cells[0].charge.amount"),
        ("tiers", "[1]", "tiers[1]"),
        ("", "country", "country"),
        ("regions", "", "regions"),
    ],
)
def test_field_path(prefix: str, name: str, path: str) -> None:
    assert field_path(prefix, name) == path


def test_absorbed_errors_are_repathed_and_raised_together() -> None:
    # given: one error of its own and a nested validation's two
    errors = FieldErrors()
    errors.add("code", "invalid_format", "Bad code.")
    nested = InvalidInput(
        "Invalid charge", errors=[FieldError("amount", "required", "Required."), FieldError("[1]", "x", "Bad.")]
    )
    errors.absorb(nested, "components[0].charge")
    # and an error without field errors, taken on the prefix itself
    errors.absorb(InvalidInput("Not an object."), "prices")
    # when / then
    with pytest.raises(InvalidInput, match=r"^code: Bad code\.; components\[0\]\.charge\.amount: Required\.") as exc:
        errors.raise_if_any()
    assert [e.field for e in exc.value.errors] == [
        "code",
        "components[0].charge.amount",
        "components[0].charge[1]",
        "prices",
    ]


def test_raise_if_any_builds_the_exception_with_a_factory() -> None:
    errors = FieldErrors()
    errors.raise_if_any()  # nothing collected: nothing raised
    errors.add("unit_amount", "negative", "Must not be negative.")
    with pytest.raises(InvalidInput, match="^unit_amount: built by the factory$"):
        errors.raise_if_any(lambda items: invalid(items[0].field, items[0].code, "unit_amount: built by the factory"))


@pytest.mark.parametrize(
    ("value", "in_range"),
    [
        (date(1900, 1, 1), True),
        (date(1899, 12, 31), False),
        (date(9999, 12, 31), True),
        (datetime(1900, 1, 1, tzinfo=UTC), True),
        # the year is read in UTC, after the offset: 00:30 at +01:00 on 1 January 1900 is still 1899
        (datetime(1900, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))), False),
        # year 0 and year 10000 once in UTC: Python cannot even convert them
        (datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))), False),
        (datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-14))), False),
        (datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=14))), True),
    ],
)
def test_dates_are_taken_between_1900_and_9999_in_utc(value: date, in_range: bool) -> None:
    assert date_in_range(value) is in_range
    if in_range:
        validate_date_range(value, field="effective_from")
        return
    with pytest.raises(InvalidInput, match=r"^Use a date between the years 1900 and 9999\.$") as exc:
        validate_date_range(value, field="effective_from")
    assert [(e.field, e.code) for e in exc.value.errors] == [("effective_from", "out_of_range")]


@pytest.mark.parametrize(
    ("text", "multiline", "message"),
    [
        ("Transports Dupont", False, None),
        ("Zoë & Søn — 株式会社", False, None),
        (
            "Ctl\u0001Name",
            False,
            "Control characters (line breaks and tabs included) are not allowed: U+0001 at position 4.",
        ),
        (
            "two\nlines",
            False,
            "Control characters (line breaks and tabs included) are not allowed: U+000A at position 4.",
        ),
        ("two\r\nlines\tindented", True, None),
        (
            "bell\u0007",
            True,
            "Control characters other than tab and line breaks are not allowed: U+0007 at position 5.",
        ),
        ("del\u007f", True, "Control characters other than tab and line breaks are not allowed: U+007F at position 4."),
        (
            "nul\u0000",
            False,
            "Control characters (line breaks and tabs included) are not allowed: U+0000 at position 4.",
        ),
        ("half \ud800", True, "Unpaired surrogates are not allowed: U+D800 at position 6."),
        ("\uffff", False, "Non-characters are not allowed: U+FFFF at position 1."),
    ],
)
def test_texts_refuse_control_characters(text: str, multiline: bool, message: str | None) -> None:
    assert refused_character(text, multiline=multiline) == message
    if message is None:
        validate_text(text, field="name", multiline=multiline)
        return
    with pytest.raises(InvalidInput) as exc:
        validate_text(text, field="name", multiline=multiline)
    assert [(e.field, e.code, e.message) for e in exc.value.errors] == [("name", "control_character", message)]


def test_the_texts_of_a_json_value_are_checked_with_their_path() -> None:
    assert json_refused_character({"components": [{"product": "data", "charge": {"model": "flat"}}]}) is None
    assert json_refused_character({"components": [{"product": "da\u0002ta"}]}) == (
        "components[0].product",
        "Control characters (line breaks and tabs included) are not allowed: U+0002 at position 3.",
    )
    # a key is reported with the path of its object
    assert json_refused_character({"time_bands": {"pe\u001bak": ["08:00", "20:00"]}}, "meter") == (
        "meter.time_bands",
        "Control characters (line breaks and tabs included) are not allowed: U+001B at position 3.",
    )


def test_typed_text_outside_a_form_loses_its_control_characters() -> None:
    assert without_refused_characters("Wrong\u0001amount\x00 billed\n") == "Wrong amount billed "


@pytest.mark.parametrize("code", ["ZZ", "EU", "XA", "XK", "UK", "UN", "QO"])
def test_codes_that_name_no_country_are_refused(code: str) -> None:
    # user-assigned (XA, XK, ZZ, QO) and exceptionally reserved (EU, UK, UN) codes name no country
    from billing_platform.validation import is_country, validate_country

    assert not is_country(code)
    with pytest.raises(InvalidInput, match="Unknown ISO 3166-1 alpha-2 country: %s." % code):
        validate_country(code, field="country")


def test_the_249_assigned_countries_are_taken() -> None:
    import pycountry

    from billing_platform.validation import is_country

    codes = [country.alpha_2 for country in pycountry.countries]
    assert len(codes) == 249
    assert all(is_country(code) for code in codes)
    assert {"FR", "DE", "GB", "GR", "US", "AQ"} <= set(codes)
