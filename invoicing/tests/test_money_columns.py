"""The amounts stored with a currency column of their row (an invoice's totals, a product's SSPs, a
customer's negotiated prices) read and write as django-money's ``Money`` in that currency, and
stay plain decimal columns for queries, bulk writes and the schema."""

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.db.models import Sum
from django.forms import modelform_factory
from djmoney.money import Money

from billing_platform.money_fields import CurrencyMismatch
from catalog.models import PriceOverride, Product, ProductSsp
from customers.models import Customer
from customers.tests.factories import dupont
from invoicing.models import Invoice
from tenancy.models import Tenant


@pytest.fixture
def customer(tenant: Tenant) -> Customer:
    return dupont(tenant)


def invoice(customer: Customer, currency: str = "EUR", **fields: Any) -> Invoice:
    """An invoice written with bare decimals, as bill runs write them: 20.00 + 4.00 = 24.00."""
    values: dict[str, Any] = {
        "issue_date": date(2026, 4, 1),
        "currency": currency,
        "net_total": Decimal("20.00"),
        "tax_total": Decimal("4.00"),
        "total": Decimal("24.00"),
        "amount_due": Decimal("24.00"),
        **fields,
    }
    return Invoice.objects.create(tenant=customer.tenant, customer=customer, **values)


@pytest.mark.django_db
def test_reading_gives_money_in_the_rows_currency(customer: Customer) -> None:
    # given: an invoice written with bare decimals, as bill runs write them, one in yen
    euros, yens = invoice(customer), invoice(customer, "JPY", issue_date=date(2026, 5, 1), total=Decimal(2400))
    # when
    euros, yens = Invoice.objects.get(pk=euros.pk), Invoice.objects.get(pk=yens.pk)
    # then
    assert (euros.net_total, euros.tax_total, euros.total, euros.amount_due) == (
        Money("20.00", "EUR"),
        Money("4.00", "EUR"),
        Money("24.00", "EUR"),
        Money("24.00", "EUR"),
    )
    assert isinstance(euros.total, Money)
    assert str(euros.total.amount) == "24.0000"  # the stored figure, 4 places
    assert yens.total == Money(2400, "JPY")
    # a row read with only some columns loads the rest (amount and currency) when they are read
    assert Invoice.objects.only("id").get(pk=euros.pk).total == Money(24, "EUR")


@pytest.mark.django_db
def test_a_money_in_the_rows_currency_is_stored_and_another_currency_is_refused(customer: Customer) -> None:
    row = invoice(customer)
    # when: the amount due written as Money in the invoice's currency
    row.amount_due = Money("18.00", "EUR")
    row.save(update_fields=["amount_due"])
    # then
    row.refresh_from_db()
    assert row.amount_due == Money("18.00", "EUR")
    # when: a Money of another currency: refused, the row unchanged (no silent change of its currency)
    with pytest.raises(CurrencyMismatch, match="Invoice.total is in EUR: a USD amount cannot be written to it."):
        row.total = Money("24.00", "USD")
    assert (row.currency, row.total) == ("EUR", Money(24, "EUR"))
    with pytest.raises(CurrencyMismatch):
        Invoice(currency="EUR", total=Money(1, "USD"))


def test_a_row_without_a_currency_takes_the_moneys() -> None:
    new = Invoice(total=Money("1.500", "KWD"))
    assert (new.currency, new.total, new.net_total) == ("KWD", Money("1.500", "KWD"), Money(0, "KWD"))
    ssp = ProductSsp(amount=Money(240, "EUR"))
    assert ssp.currency == "EUR"


@pytest.mark.django_db
def test_a_null_amount_reads_none(tenant: Tenant, customer: Customer) -> None:
    product = Product.objects.create(tenant=tenant, code="eld-200", name="ELD-200", kind="hardware")
    ProductSsp.objects.create(tenant=tenant, product=product, amount=Money("240.00", "EUR"))
    assert [s.amount for s in product.ssps.all()] == [Money(240, "EUR")]
    override = PriceOverride(tenant=tenant, customer=customer, currency="EUR", price=None, min_amount=Decimal(5))
    assert (override.price, override.min_amount, override.max_amount) == (None, Money(5, "EUR"), None)


@pytest.mark.django_db
def test_queries_see_decimals_and_a_money_filter_checks_the_currency(customer: Customer) -> None:
    invoice(customer)
    invoice(customer, "JPY", issue_date=date(2026, 5, 1), total=Decimal(2400))
    rows = Invoice.objects.filter(customer=customer)
    assert rows.filter(total__gt=Decimal(100)).get().currency == "JPY"
    assert rows.filter(total=Money(24, "EUR")).get().currency == "EUR"
    assert not rows.filter(total=Money(24, "USD")).exists()
    assert not rows.filter(total__gte=Money(0, "USD")).exists()
    assert rows.filter(currency="EUR").aggregate(sum=Sum("total"))["sum"] == Decimal("24.0000")
    assert list(rows.order_by("issue_date").values_list("total", flat=True)) == [Decimal(24), Decimal(2400)]
    assert rows.filter(currency="EUR").update(amount_due=Decimal(0)) == 1
    assert rows.get(currency="EUR").amount_due == Money(0, "EUR")
    # bulk writes (the bill run's) take Money and decimals alike
    made = Invoice.objects.bulk_create(
        [
            Invoice(tenant=customer.tenant, customer=customer, issue_date=day, currency="EUR", total=total)
            for day, total in ((date(2026, 6, 1), Money("1.00", "EUR")), (date(2026, 7, 1), Decimal("2.00")))
        ]
    )
    assert sorted(Invoice.objects.get(pk=m.pk).total for m in made) == [Money(1, "EUR"), Money(2, "EUR")]
    made[0].amount_due, made[1].amount_due = Money("0.50", "EUR"), Decimal("1.50")
    Invoice.objects.bulk_update(made, ["amount_due"])
    assert [Invoice.objects.get(pk=m.pk).amount_due for m in made] == [Money("0.50", "EUR"), Money("1.50", "EUR")]


@pytest.mark.django_db
def test_the_tables_keep_one_currency_column_and_their_amounts_sizes() -> None:
    money = (settings.MONEY_MAX_DIGITS, settings.MONEY_DECIMAL_PLACES)
    unit_price = (settings.UNIT_PRICE_MAX_DIGITS, settings.UNIT_PRICE_DECIMAL_PLACES)
    tables: dict[type[Any], dict[str, tuple[int, int]]] = {
        Invoice: {"net_total": money, "tax_total": money, "total": money, "amount_due": money},
        ProductSsp: {"amount": money},
        PriceOverride: {"price": unit_price, "min_amount": money, "max_amount": money},
    }
    with connection.cursor() as cursor:
        for model, amounts in tables.items():
            columns = {c.name: c for c in connection.introspection.get_table_description(cursor, model._meta.db_table)}
            assert [name for name in columns if "currency" in name] == ["currency"], model
            for name, size in amounts.items():
                assert (columns[name].precision, columns[name].scale) == size, (model, name)


def test_a_form_edits_the_amount_and_the_currency_is_the_rows_own_field() -> None:
    form_class = modelform_factory(Invoice, fields=["currency", "total"])
    row = Invoice(currency="JPY", total=Decimal("1500.0000"))
    assert form_class(instance=row)["total"].value() == Decimal("1500.0000")  # the amount, not "¥1,500"
    form = form_class(instance=row, data={"currency": "JPY", "total": "1600"})
    assert form.is_valid(), form.errors
    assert form.save(commit=False).total == Money(1600, "JPY")
