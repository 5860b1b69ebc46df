"""Who earns, and what is taken back (specs/partners.md, "Commissions"): an invoice earns for the
partner its customer had when it was finalized, whoever the customer's partner is later; a credit
note, refund or void takes back from that partner what the invoice's leg was actually paid, at the
rate it was paid, whatever the plan says now. Every invoice here: one service line, + 20 % VAT."""

from datetime import date, datetime
from decimal import Decimal

import pytest
import time_machine
from djmoney.money import Money

from customers.tests.factories import dupont
from invoicing.services.credit_notes import credit_note_create
from partners.models import CommissionStatement
from partners.statements import statement_approve
from partners.tests.test_statements import (
    ACTOR,
    APRIL,
    JUNE,
    MAY,
    build,
    paris,
    partner_of,
    pay,
    rows,
    service_invoice,
)
from payments.models import Payment
from payments.refunds import payment_refund
from payments.tests.factories import payer
from tenancy.models import Tenant

pytestmark = pytest.mark.django_db


def credit_in_full(invoice: object, at: datetime) -> None:
    with time_machine.travel(at, tick=False):
        credit_note_create(invoice=invoice, actor=ACTOR, at=at, reason="returned")  # type: ignore[arg-type]


def month_totals(month: date) -> dict[str, Decimal]:
    return {s.partner.code: s.total for s in CommissionStatement.objects.filter(month=month)}


def test_a_customer_moved_to_another_partner_leaves_its_invoices_with_the_first(tenant: Tenant) -> None:
    customer = payer(tenant)
    alpnet = partner_of(tenant, "alpnet", {"service": "20"}, customer)
    betanet = partner_of(tenant, "betanet", {"service": "20"})
    invoice = service_invoice(customer, "100.00")  # total 120.00, issued while Dupont is AlpNet's
    assert invoice.partner_id == alpnet.pk
    pay(invoice, "60.00", paris(4, 10))
    april = build(tenant, APRIL, at=paris(5, 1, 2))["alpnet"]
    # 100.00 × 20 % × 60.00 ÷ 120.00 = 10.00
    assert april.total == Decimal("10.00")
    statement_approve(statement=april, actor=ACTOR, at=paris(5, 1, 9))
    customer.partner = betanet
    customer.save(update_fields=["partner"])
    # April built again the same day: BetaNet gets nothing of it, AlpNet's stays.
    again = build(tenant, APRIL, at=paris(5, 1, 11))
    assert "betanet" not in again
    assert month_totals(APRIL) == {"alpnet": Decimal("10.00")}
    # The rest paid in May, once Dupont is BetaNet's: still AlpNet's invoice. 20.00 − 10.00 = 10.00.
    pay(invoice, "60.00", paris(5, 10))
    # A new invoice of May is BetaNet's: 50.00 × 20 % = 10.00.
    second = service_invoice(customer, "50.00", on=MAY)
    assert second.partner_id == betanet.pk
    pay(second, "60.00", paris(5, 12))
    may = build(tenant, MAY)
    assert {code: rows(s) for code, s in may.items()} == {
        "alpnet": [("dupont", "50", "20", "10")],
        "betanet": [("dupont", "50", "20", "10")],
    }
    # The first invoice credited in full in June: taken back from AlpNet (−20.00), not BetaNet.
    credit_in_full(invoice, paris(6, 5))
    june = build(tenant, JUNE)
    assert {code: s.total for code, s in june.items()} == {"alpnet": Decimal("-20.00")}


def test_a_customer_moved_to_direct_still_gives_back_what_its_partner_earned(tenant: Tenant) -> None:
    customer = payer(tenant)
    partner_of(tenant, "alpnet", {"service": "20"}, customer)
    invoice = service_invoice(customer, "100.00")
    pay(invoice, "120.00", paris(4, 10))
    assert build(tenant, APRIL)["alpnet"].total == Decimal("20.00")  # 100.00 × 20 %
    customer.partner = None
    customer.save(update_fields=["partner"])
    credit_in_full(invoice, paris(5, 5))
    may = build(tenant, MAY)
    assert rows(may["alpnet"]) == [("dupont", "-100", "20", "-20")]


def test_a_graduated_leg_gives_back_what_it_paid_at_the_rates_it_paid(tenant: Tenant) -> None:
    customer = payer(tenant)
    tiers = {"tiers": [{"up_to": "1000.00", "rate": "10"}, {"up_to": None, "rate": "20"}]}
    partner_of(tenant, "alpnet", {"service": tiers}, customer)
    invoice = service_invoice(customer, "2000.00")  # total 2,400.00
    pay(invoice, "2400.00", paris(4, 10))
    april = build(tenant, APRIL)["alpnet"]
    # 1,000.00 × 10 % + 1,000.00 × 20 % = 300.00, an effective 15 %.
    assert rows(april) == [("dupont", "2000", "15", "300")]
    credit_in_full(invoice, paris(5, 5))
    may = build(tenant, MAY)["alpnet"]
    # All of it back: −2,000.00 × 300.00 ÷ 2,000.00 = −300.00 (not −2,000.00 × 10 % = −200.00).
    assert rows(may) == [("dupont", "-2000", "15", "-300")]
    assert april.total + may.total == 0


def test_a_lowered_rate_takes_back_at_the_rate_paid_and_pays_new_money_at_the_new_one(tenant: Tenant) -> None:
    customer = payer(tenant)
    partner = partner_of(tenant, "alpnet", {"service": "20"}, customer)
    invoice = service_invoice(customer, "100.00")
    pay(invoice, "120.00", paris(4, 10))
    assert build(tenant, APRIL)["alpnet"].total == Decimal("20.00")  # 100.00 × 20 %
    second = service_invoice(customer, "50.00", on=MAY)
    partner.commission_plan = {"service": "10"}
    partner.save(update_fields=["commission_plan"])
    credit_in_full(invoice, paris(5, 5))
    pay(second, "60.00", paris(5, 10))
    may = build(tenant, MAY)["alpnet"]
    # The first back at 20 %: −100.00 × 20.00 ÷ 100.00 = −20.00 (not −10.00); the second at the new
    # 10 %: 50.00 × 10 % = 5.00. −20.00 + 5.00 = −15.00.
    assert sorted(rows(may)) == [("dupont", "-100", "20", "-20"), ("dupont", "50", "10", "5")]
    assert may.total == Decimal("-15.00")


@pytest.mark.parametrize("plan", [{"service": "0"}, {"hardware": "5"}, {"service": "twenty"}])
def test_a_leg_earning_nothing_now_still_gives_back_what_it_was_paid(tenant: Tenant, plan: dict[str, str]) -> None:
    # The leg set to 0, left out, or a plan stored before the checks that no longer reads.
    customer = payer(tenant)
    partner = partner_of(tenant, "alpnet", {"service": "20"}, customer)
    invoice = service_invoice(customer, "100.00")
    pay(invoice, "120.00", paris(4, 10))
    assert build(tenant, APRIL)["alpnet"].total == Decimal("20.00")  # 100.00 × 20 %
    partner.commission_plan = plan
    partner.save(update_fields=["commission_plan"])
    # Half refunded in May: 60.00 of 120.00 → net collected 50.00; −50.00 × 20.00 ÷ 100.00 = −10.00.
    with time_machine.travel(paris(5, 5), tick=False):
        payment = Payment.objects.get(customer=customer)
        payment_refund(
            payment=payment,
            amount=Money("60.00", "EUR"),
            reason="returned",
            actor=ACTOR,
            at=paris(5, 5),
            invoice=invoice,
        )
    may = build(tenant, MAY)
    assert rows(may["alpnet"]) == [("dupont", "-50", "20", "-10")]
    # The rest credited in June: −10.00 more; nothing is left of the 20.00.
    credit_in_full(invoice, paris(6, 5))
    june = build(tenant, JUNE)
    assert rows(june["alpnet"]) == [("dupont", "-50", "20", "-10")]


def test_the_share_collected_is_multiplied_before_it_is_divided(tenant: Tenant) -> None:
    customer = payer(tenant)
    partner_of(tenant, "alpnet", {"service": "5"}, customer)
    invoice = service_invoice(customer, "30.30")  # total 36.36
    pay(invoice, "12.12", paris(4, 10))
    # 30.30 × 5 % × 12.12 ÷ 36.36 = 0.505 → 0.51 (the ratio 0.3333… first gave 0.50499… → 0.50);
    # net collected 30.30 × 12.12 ÷ 36.36 = 10.10.
    assert rows(build(tenant, APRIL)["alpnet"]) == [("dupont", "10.1", "5", "0.51")]


def test_two_partners_customers_in_one_month(tenant: Tenant) -> None:
    # Each invoice earns for its own partner: Dupont's for AlpNet, Martin's for BetaNet.
    first = payer(tenant)
    second = dupont(tenant, external_id="martin", name="Martin SA")
    partner_of(tenant, "alpnet", {"service": "20"}, first)
    partner_of(tenant, "betanet", {"service": "10"}, second)
    pay(service_invoice(first, "100.00"), "120.00", paris(4, 10))
    pay(service_invoice(second, "100.00"), "120.00", paris(4, 11))
    april = build(tenant, APRIL)
    # 100.00 × 20 % = 20.00; 100.00 × 10 % = 10.00
    assert {code: s.total for code, s in april.items()} == {"alpnet": Decimal("20.00"), "betanet": Decimal("10.00")}
