"""The back-office prints an amount as a number the page localizes (24,00 in French) beside its ISO
code: a ``Money`` with its currency's decimals, a line's ``Decimal`` with its document's currency."""

import pytest
from django.utils import formats, translation
from djmoney.money import Money

from backoffice.formatting import money_display


@pytest.mark.parametrize(
    ("money", "en", "fr"),
    [
        (Money("24.0000", "EUR"), "24.00", "24,00"),
        (Money("1500.0000", "JPY"), "1500", "1500"),
        (Money("1.5000", "KWD"), "1.500", "1,500"),
        (Money("0.0125000000", "EUR"), "0.0125", "0,0125"),  # a price keeps its places
    ],
)
def test_a_money_shows_its_currencys_decimals(money: Money, en: str, fr: str) -> None:
    shown = money_display(money)
    for language, expected in (("en", en), ("fr", fr)):
        with translation.override(language):
            assert formats.localize(shown) == expected
    assert money_display(money.amount, money.currency.code) == shown
    assert money_display(money, money.currency.code) == shown
    assert money_display(None) is None


def test_a_money_shown_as_another_currency_is_refused() -> None:
    with pytest.raises(ValueError, match="a EUR amount shown as USD"):
        money_display(Money(1, "EUR"), "USD")
