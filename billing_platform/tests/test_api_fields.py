"""The API writes a ``Money`` as it wrote the bare decimals before: the amount as a string next to the
object's ``currency``, and the same OpenAPI schema."""

from decimal import Decimal
from typing import Literal

import pytest
from djmoney.money import Money

from billing_platform.api.fields import DecimalStringSchema, MoneyAmountField, MoneyAmountFieldSchema


@pytest.mark.parametrize(
    ("money", "places", "expected"),
    [
        # stored amounts (4 places) at the currency's minor unit, as invoices always showed them
        (Money("24.0000", "EUR"), "minor", "24.00"),
        (Money("4.0000", "JPY"), "minor", "4"),
        (Money("1.5000", "KWD"), "minor", "1.500"),
        (Money("-6.0000", "EUR"), "minor", "-6.00"),
        # totals summed from rounded lines, as computed (an empty sum stays "0")
        (Money(Decimal("239.64"), "EUR"), "exact", "239.64"),
        (Money(Decimal("4"), "JPY"), "exact", "4"),
        (Money(Decimal("0"), "EUR"), "exact", "0"),
        # prices: no trailing zeros past the second place
        (Money("240.0000000000", "EUR"), "price", "240.00"),
        (Money("0.0125000000", "EUR"), "price", "0.0125"),
        (Money("1500.0000", "JPY"), "price", "1500.00"),
    ],
)
def test_a_money_is_written_as_its_amounts_string(
    money: Money, places: Literal["minor", "exact", "price"], expected: str
) -> None:
    field = MoneyAmountField(places=places)
    assert field.to_representation(money) == expected
    assert field.to_representation(None) is None
    assert field.read_only


def test_the_schema_is_the_decimal_strings_one() -> None:
    assert MoneyAmountFieldSchema(MoneyAmountField()).map_serializer_field(None, "response") == (
        DecimalStringSchema(MoneyAmountField()).map_serializer_field(None, "response")
    )
    assert MoneyAmountFieldSchema(MoneyAmountField()).map_serializer_field(None, "response") == {
        "type": "string",
        "format": "decimal",
        "example": "12.50",
    }
