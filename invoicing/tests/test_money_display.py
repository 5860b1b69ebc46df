"""Invoice documents and e-mails print an amount with py-moneyed's Babel formatting (``format_money``)
in the invoice's language: the currency's minor unit, its symbol or code where the locale puts it."""

from decimal import Decimal

import pytest
from djmoney.money import Money

from invoicing.pdf import DocumentFormatter

NNBSP, NBSP = "\u202f", "\xa0"  # fr_FR: 1 234,50 € (narrow no-break space between thousands)


@pytest.mark.parametrize(
    ("language", "currency", "amount", "unit_price"),
    [
        ("en", "EUR", "€1,234.57", "€0.0125"),
        ("en", "JPY", "JP¥1,235", "JP¥0.0125"),
        ("en", "KWD", "KWD1,234.567", "KWD0.0125"),
        ("fr", "EUR", f"1{NNBSP}234,57{NBSP}€", f"0,0125{NBSP}€"),
        ("fr", "JPY", f"1{NNBSP}235{NBSP}JPY", f"0,0125{NBSP}JPY"),
        ("fr", "KWD", f"1{NNBSP}234,567{NBSP}KWD", f"0,0125{NBSP}KWD"),
    ],
)
def test_amounts_print_at_the_minor_unit_in_the_invoices_language(
    language: str, currency: str, amount: str, unit_price: str
) -> None:
    fmt = DocumentFormatter(language=language, currency=currency)
    # a Money (an invoice's total) and a line's Decimal print alike, rounded half-up once
    assert fmt.money(Money(Decimal("1234.5665"), currency)) == amount
    assert fmt.money(Decimal("1234.5665")) == amount
    # unit prices keep their own places
    assert fmt.unit_price(Decimal("0.0125")) == unit_price


def test_an_amount_in_another_currency_is_refused() -> None:
    fmt = DocumentFormatter(language="fr", currency="EUR")
    with pytest.raises(ValueError, match="a USD amount on a EUR document"):
        fmt.money(Money(1, "USD"))
