"""The engine's rules with explicit numbers: the legs credit lines count in, refunds and voids taken
back in their month, and a statement per currency."""

from datetime import date
from decimal import Decimal

import pytest
import time_machine
from djmoney.money import Money

from catalog.services import product_create
from customers.tests.factories import dupont
from invoicing.lines import DraftLine, LineType
from invoicing.services import invoice_void
from invoicing.tests.factories import issue, line
from partners.models import CommissionStatement
from partners.tests.test_statements import ACTOR, APRIL, MAY, build, paris, partner_of, pay, rows, service_invoice
from payments.models import Payment
from payments.refunds import payment_refund
from payments.tests.factories import payer
from tenancy.models import Tenant

pytestmark = pytest.mark.django_db


def test_credit_lines_count_in_the_leg_of_what_they_credit(tenant: Tenant) -> None:
    customer = payer(tenant)
    product_create(tenant=tenant, actor=ACTOR, at=paris(3, 1), code="eld-200", name="ELD-200", kind="hardware")
    partner_of(tenant, "alpnet", {"hardware": "10", "service": "20", "usage": "10"}, customer)
    late = DraftLine(
        type=LineType.CREDIT,
        product_code="data-overage",
        product_name="Data overage",
        qualifiers={"late_usage": True},
        quantity=Decimal(1),
        unit_amount=Decimal("10.00"),
        amount=Decimal("10.00"),
        tax_category="standard",
    )
    invoice = issue(
        customer,
        [
            line("hardware", "eld-200", "100.00"),
            line("credit", "eld-200", "20.00"),  # a catalog hardware product: hardware
            line("service", "fleet-platform", "50.00"),
            line("credit", "unused-basic", "10.00"),  # not in the catalog: service
            line("usage", "data-overage", "50.00"),
            late,  # a late-usage credit: usage
        ],
        on=APRIL,
    )
    invoice.refresh_from_db()
    assert (invoice.net_total.amount, invoice.total.amount) == (Decimal("160.00"), Decimal("192.00"))
    pay(invoice, "192.00", paris(4, 10))
    april = build(tenant, APRIL)["alpnet"]
    # hardware (100.00 - 20.00) x 10 % = 8.00; service (50.00 - 10.00) x 20 % = 8.00;
    # usage (50.00 - 10.00) x 10 % = 4.00
    assert rows(april) == [("dupont", "80", "10", "8"), ("dupont", "40", "20", "8"), ("dupont", "40", "10", "4")]
    assert april.total == Decimal("20.00")


def test_a_refund_takes_its_share_back_in_its_month(tenant: Tenant) -> None:
    customer = payer(tenant)
    partner_of(tenant, "alpnet", {"service": "20"}, customer)
    invoice = service_invoice(customer, "100.00")  # total 120.00
    pay(invoice, "120.00", paris(4, 10))
    assert build(tenant, APRIL)["alpnet"].total == Decimal("20.00")
    payment = Payment.objects.get(customer=customer)
    with time_machine.travel(paris(5, 12), tick=False):
        payment_refund(
            payment=payment,
            amount=Money("60.00", "EUR"),
            reason="goodwill",
            actor=ACTOR,
            at=paris(5, 12),
            invoice=invoice,
        )
    may = build(tenant, MAY)["alpnet"]
    # 100.00 x 20 % x 60 / 120 = 10.00, less the 20.00 of April: -10.00 on -50.00 collected
    assert rows(may) == [("dupont", "-50", "20", "-10")]


def test_a_voided_invoice_gives_its_commission_back(tenant: Tenant) -> None:
    customer = payer(tenant)
    partner_of(tenant, "alpnet", {"service": "20"}, customer)
    invoice = service_invoice(customer, "100.00")  # total 120.00
    pay(invoice, "60.00", paris(4, 10))
    assert build(tenant, APRIL)["alpnet"].total == Decimal("10.00")  # 20.00 x 60 / 120
    with time_machine.travel(paris(5, 3), tick=False):
        invoice_void(invoice=invoice, actor=ACTOR, at=paris(5, 3), reason="issued by mistake")
    may = build(tenant, MAY)["alpnet"]
    assert rows(may) == [("dupont", "-50", "20", "-10")]


def test_customers_in_another_currency_get_a_statement_of_their_own(tenant: Tenant) -> None:
    euro = payer(tenant)
    swiss = dupont(tenant, external_id="bern", name="Bern AG", currency="CHF")
    partner_of(tenant, "alpnet", {"service": "20"}, euro, swiss)
    pay(service_invoice(euro, "100.00"), "120.00", paris(4, 10))
    chf = service_invoice(swiss, "50.00", on=date(2026, 4, 1))
    pay(chf, str(chf.total.amount), paris(4, 11))
    build(tenant, APRIL)
    # 100.00 x 20 % in EUR; 50.00 x 20 % in CHF
    statements = sorted((s.currency, s.total) for s in CommissionStatement.objects.filter(partner__code="alpnet"))
    assert statements == [("CHF", Decimal("10.00")), ("EUR", Decimal("20.00"))]
