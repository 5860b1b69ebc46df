"""FieldErrors: every field error of a request collected, re-pathed and raised as one exception."""

import pytest

from billing_platform.errors import FieldError, InvalidInput, invalid
from billing_platform.validation import FieldErrors, field_path


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
