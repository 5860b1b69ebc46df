"""Commission statements: graduated legs, approval and what comes after it, drafts built again,
the monthly task in the tenant's time zone, and the live selectors."""

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from djmoney.money import Money

from billing_platform.errors import Conflict, InvalidInput
from customers.models import Customer, Partner
from customers.tests.factories import dupont
from invoicing.models import Invoice
from invoicing.tests.billing_api import eager_celery
from invoicing.tests.factories import issue, line
from partners.models import CommissionStatement, StatementStatus
from partners.statements import (
    commission_report,
    commissions_by_month,
    statement_approve,
    statement_lines,
    statement_mark_paid,
    statements_build,
)
from partners.tasks import commission_statements_scheduled_task
from payments.ledger import payment_record
from payments.tests.factories import payer
from tenancy.actors import Actor
from tenancy.models import AuditLogEntry, Tenant

pytestmark = pytest.mark.django_db
__all__ = ["eager_celery"]

PARIS = ZoneInfo("Europe/Paris")
ACTOR = Actor.system("tests")
APRIL, MAY, JUNE = date(2026, 4, 1), date(2026, 5, 1), date(2026, 6, 1)


def paris(month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=PARIS)


def partner_of(tenant: Tenant, code: str, plan: dict[str, Any], *customers: Customer) -> Partner:
    partner = Partner.objects.create(tenant=tenant, code=code, name=code.title(), currency="EUR", commission_plan=plan)
    for customer in customers:
        customer.partner = partner
        customer.save(update_fields=["partner"])
    return partner


def service_invoice(customer: Customer, net: str, *, on: date = APRIL) -> Invoice:
    """One service line of ``net``, + 20 % VAT."""
    invoice = issue(customer, [line("service", "fleet-platform", net)], on=on)
    invoice.refresh_from_db()
    return invoice


def pay(invoice: Invoice, amount: str, at: datetime, *, received_at: datetime | None = None) -> None:
    with time_machine.travel(at, tick=False):
        payment_record(
            customer=invoice.customer,
            amount=Money(amount, invoice.currency),
            method="bank_transfer",
            received_at=received_at or at,
            actor=ACTOR,
            at=at,
            invoice=invoice,
        )


def build(tenant: Tenant, month: date, at: datetime | None = None) -> dict[str, CommissionStatement]:
    after = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    at = at or datetime(after.year, after.month, 1, 2, tzinfo=PARIS)
    return {s.partner.code: s for s in statements_build(tenant=tenant, month=month, actor=ACTOR, at=at)}


def rows(statement: CommissionStatement) -> list[tuple[str, str, str, str]]:
    return [
        (x.customer, f"{x.net_collected.normalize():f}", f"{x.rate.normalize():f}", f"{x.amount.normalize():f}")
        for x in statement_lines(statement)
    ]


def test_a_graduated_leg_rates_the_months_collections_in_the_order_they_came_in(tenant: Tenant) -> None:
    first = payer(tenant)
    second = dupont(tenant, external_id="martin", name="Martin SA")
    tiers = {"tiers": [{"up_to": "1000.00", "rate": "10"}, {"up_to": None, "rate": "20"}]}
    partner_of(tenant, "alpnet", {"service": tiers}, first, second)
    a = service_invoice(first, "800.00")  # total 960.00
    b = service_invoice(second, "500.00")  # total 600.00
    pay(a, "960.00", paris(5, 5))
    pay(b, "600.00", paris(5, 20))
    may = build(tenant, MAY)["alpnet"]
    # dupont first (5 May): 800.00 at 10 % = 80.00. martin (20 May) takes the month from 800.00 to
    # 1,300.00: 200.00 at 10 % + 300.00 at 20 % = 20.00 + 60.00 = 80.00, an effective 16 %.
    assert rows(may) == [("dupont", "800", "10", "80"), ("martin", "500", "16", "80")]
    assert may.total == Decimal("160.00")

    # June starts again from the first tier: 400.00 at 10 % = 40.00.
    c = service_invoice(first, "400.00", on=MAY)
    pay(c, "480.00", paris(6, 3))
    june = build(tenant, JUNE)["alpnet"]
    assert rows(june) == [("dupont", "400", "10", "40")]


def test_an_approved_statement_never_changes_and_what_comes_later_lands_on_the_next(tenant: Tenant) -> None:
    customer = payer(tenant)
    partner_of(tenant, "alpnet", {"service": "20"}, customer)
    invoice = service_invoice(customer, "100.00")  # total 120.00
    pay(invoice, "60.00", paris(4, 10))
    april = build(tenant, APRIL)["alpnet"]
    # 100.00 x 20 % x 60 / 120 = 10.00
    assert rows(april) == [("dupont", "50", "20", "10")]
    statement_approve(statement=april, actor=ACTOR, at=paris(5, 2))

    # 60.00 received on 28 April, recorded on 3 May: April is approved, so May takes it.
    pay(invoice, "60.00", paris(5, 3), received_at=paris(4, 28))
    again = build(tenant, APRIL)["alpnet"]
    assert (again.pk, again.status, again.total, rows(again)) == (
        april.pk,
        "approved",
        Decimal("10.0000"),
        [("dupont", "50", "20", "10")],
    )
    may = build(tenant, MAY)["alpnet"]
    # accrued 100.00 x 20 % = 20.00, less the 10.00 April took
    assert rows(may) == [("dupont", "50", "20", "10")]
    assert may.total == Decimal("10.00")

    with pytest.raises(Conflict) as refused:
        statement_approve(statement=april, actor=ACTOR, at=paris(5, 3))
    assert refused.value.code == "statement_not_draft"


def test_a_draft_is_built_again_and_the_drafts_after_it_too(tenant: Tenant) -> None:
    customer = payer(tenant)
    partner_of(tenant, "alpnet", {"service": "20"}, customer)
    invoice = service_invoice(customer, "100.00")  # total 120.00
    pay(invoice, "30.00", paris(4, 10))
    april = build(tenant, APRIL)["alpnet"]
    assert april.total == Decimal("5.00")  # 20.00 x 30 / 120
    pay(invoice, "30.00", paris(5, 10))
    may = build(tenant, MAY)["alpnet"]
    assert may.total == Decimal("5.00")  # 20.00 x 60 / 120 = 10.00, less 5.00
    # 30.00 more received on 20 April, recorded in May: both drafts are built again.
    pay(invoice, "30.00", paris(5, 12), received_at=paris(4, 20))
    april = build(tenant, APRIL)["alpnet"]
    may.refresh_from_db()
    assert (april.total, may.total) == (Decimal("10.00"), Decimal("5.00"))  # 20.00 x 60/120; 15.00 - 10.00
    # May's draft was computed again, and came out the same (25.00 collected, 5.00): left as it was.
    assert sorted(
        AuditLogEntry.objects.filter(action__startswith="commission_statement.").values_list("action", flat=True)
    ) == ["commission_statement.built", "commission_statement.built", "commission_statement.rebuilt"]

    # May cannot be approved before April.
    with pytest.raises(Conflict) as refused:
        statement_approve(statement=may, actor=ACTOR, at=paris(6, 2))
    assert refused.value.code == "earlier_statement_draft"
    statement_approve(statement=april, actor=ACTOR, at=paris(6, 2))
    statement_approve(statement=may, actor=ACTOR, at=paris(6, 2))
    with pytest.raises(InvalidInput):
        statement_mark_paid(statement=may, reference="  ", actor=ACTOR, at=paris(6, 5))
    paid = statement_mark_paid(statement=may, reference="SEPA-2026-06-05", actor=ACTOR, at=paris(6, 5))
    assert (paid.status, paid.paid_reference) == (StatementStatus.PAID, "SEPA-2026-06-05")
    with pytest.raises(Conflict) as refused:
        statement_mark_paid(statement=may, reference="again", actor=ACTOR, at=paris(6, 6))
    assert refused.value.code == "statement_not_approved"


def test_a_month_not_ended_is_not_built(tenant: Tenant) -> None:
    with pytest.raises(InvalidInput) as refused:
        statements_build(tenant=tenant, month=APRIL, actor=ACTOR, at=paris(4, 30, 23))
    assert refused.value.errors[0].code == "month_not_ended"


def test_the_monthly_task_builds_every_partners_previous_month_in_the_tenants_time_zone(
    tenant: Tenant, eager_celery: None, make_tenant: Callable[..., Tenant]
) -> None:
    first = payer(tenant)
    second = dupont(tenant, external_id="martin", name="Martin SA")
    partner_of(tenant, "alpnet", {"service": "20"}, first)
    partner_of(tenant, "rhone", {"service": "10"}, second)
    a = service_invoice(first, "100.00")
    b = service_invoice(second, "100.00")
    pay(a, "120.00", datetime(2026, 4, 30, 21, 30, tzinfo=UTC))  # 23:30 in Paris: April
    pay(b, "120.00", datetime(2026, 4, 30, 23, 30, tzinfo=UTC))  # 1 May 01:30 in Paris: May

    # 30 April, 23:30 UTC is already the 1st in Paris: the task builds April.
    with time_machine.travel(datetime(2026, 4, 30, 23, 30, tzinfo=UTC), tick=False):
        commission_statements_scheduled_task()
    april = {s.partner.code: s for s in CommissionStatement.objects.filter(month=APRIL).select_related("partner")}
    assert {code: s.total for code, s in april.items()} == {"alpnet": Decimal("20.00")}
    assert april["alpnet"].status == "draft"

    # Any other day does nothing.
    with time_machine.travel(paris(5, 15), tick=False):
        commission_statements_scheduled_task()
    assert not CommissionStatement.objects.filter(month=MAY).exists()
    with time_machine.travel(paris(6, 1, 0, 10), tick=False):
        commission_statements_scheduled_task()
    may = {s.partner.code: s.total for s in CommissionStatement.objects.filter(month=MAY).select_related("partner")}
    assert may == {"rhone": Decimal("10.00")}
    assert AuditLogEntry.objects.filter(action="commission_statement.built", actor_label="schedule").count() == 2


def test_the_monthly_task_catches_up_the_months_it_missed(tenant: Tenant, eager_celery: None) -> None:
    customer = payer(tenant)
    partner_of(tenant, "alpnet", {"service": "20"}, customer)
    invoice = service_invoice(customer, "100.00")
    pay(invoice, "60.00", paris(4, 10))
    pay(invoice, "30.00", paris(5, 10))
    # No pass on 1 May nor on 1 June: the first one, on 2 June, builds April then May.
    with time_machine.travel(paris(6, 2, 9), tick=False):
        commission_statements_scheduled_task()
    built = {s.month: (s.status, s.total) for s in CommissionStatement.objects.all()}
    # April: 100.00 × 20 % × 60 ÷ 120 = 10.00; May: 100.00 × 20 % × 90 ÷ 120 = 15.00, less 10.00 = 5.00.
    assert built == {APRIL: ("draft", Decimal("10.00")), MAY: ("draft", Decimal("5.00"))}
    april = CommissionStatement.objects.get(month=APRIL)
    statement_approve(statement=april, actor=ACTOR, at=paris(6, 2, 10))
    pay(invoice, "30.00", paris(6, 2, 11))
    # The next passes leave the months built as they are: nothing built again, the approved never.
    with time_machine.travel(paris(6, 3, 9), tick=False):
        commission_statements_scheduled_task()
    assert AuditLogEntry.objects.filter(action="commission_statement.built", actor_label="schedule").count() == 2
    assert not AuditLogEntry.objects.filter(action="commission_statement.rebuilt").exists()
    # On 1 July, June is built (20.00 − 15.00 = 5.00); April and May stay.
    with time_machine.travel(paris(7, 1, 9), tick=False):
        commission_statements_scheduled_task()
    built = {s.month: (s.status, s.total) for s in CommissionStatement.objects.all()}
    assert built == {
        APRIL: ("approved", Decimal("10.00")),
        MAY: ("draft", Decimal("5.00")),
        JUNE: ("draft", Decimal("5.00")),
    }


def test_commissions_by_month_and_the_report_show_the_month_so_far(tenant: Tenant) -> None:
    customer = payer(tenant)
    partner = partner_of(tenant, "alpnet", {"service": "20"}, customer)
    invoice = service_invoice(customer, "100.00")
    pay(invoice, "60.00", paris(4, 10))
    april = build(tenant, APRIL)["alpnet"]
    statement_approve(statement=april, actor=ACTOR, at=paris(5, 2))
    pay(invoice, "30.00", paris(5, 6))
    # 20.00 x 90 / 120 = 15.00, less 10.00: 5.00 so far in May, not saved
    months = commissions_by_month(tenant=tenant, partner=partner, at=paris(5, 20))
    assert [(m.month, m.status, m.total) for m in months] == [
        (APRIL, "approved", Decimal("10.0000")),
        (MAY, "accruing", Decimal("5.00")),
    ]
    assert not CommissionStatement.objects.filter(month=MAY).exists()
    report = commission_report(tenant=tenant, month=MAY, at=paris(5, 20))
    assert [(r.partner.code, r.currency, r.status, r.total, r.net_collected, r.lines) for r in report] == [
        ("alpnet", "EUR", "accruing", Decimal("5.00"), Decimal("25.00"), 1)
    ]
    report = commission_report(tenant=tenant, month=APRIL, at=paris(5, 20))
    assert [(r.partner.code, r.status, r.total, r.net_collected, r.lines) for r in report] == [
        ("alpnet", "approved", Decimal("10.0000"), Decimal("50.0000"), 1)
    ]
    # for some partners only: their rows, the same; another partner's: none of AlpNet's
    quiet = partner_of(tenant, "quiet", {"service": "20"})
    for month in (APRIL, MAY):
        whole = commission_report(tenant=tenant, month=month, at=paris(5, 20))
        assert commission_report(tenant=tenant, month=month, at=paris(5, 20), partners=[partner.pk]) == whole
        assert commission_report(tenant=tenant, month=month, at=paris(5, 20), partners=[quiet.pk]) == []


def test_the_month_so_far_leaves_out_the_money_of_a_month_not_built_yet(tenant: Tenant) -> None:
    customer = payer(tenant)
    partner = partner_of(tenant, "alpnet", {"service": "20"}, customer)
    invoice = service_invoice(customer, "100.00")
    pay(invoice, "60.00", paris(4, 10))
    pay(invoice, "30.00", paris(5, 6))
    # April not built yet on 20 May: its 100.00 × 20 % × 60 ÷ 120 = 10.00 is April's, shown as
    # such; May so far takes 20.00 × 90 ÷ 120 = 15.00 less those 10.00 = 5.00.
    months = commissions_by_month(tenant=tenant, partner=partner, at=paris(5, 20))
    assert [(m.month, m.status, m.total) for m in months] == [
        (APRIL, "accruing", Decimal("10.00")),
        (MAY, "accruing", Decimal("5.00")),
    ]
    report = commission_report(tenant=tenant, month=MAY, at=paris(5, 20))
    assert [(r.partner.code, r.status, r.total, r.net_collected) for r in report] == [
        ("alpnet", "accruing", Decimal("5.00"), Decimal("25.00"))
    ]
    report = commission_report(tenant=tenant, month=APRIL, at=paris(5, 20))
    assert [(r.partner.code, r.status, r.total, r.net_collected) for r in report] == [
        ("alpnet", "accruing", Decimal("10.00"), Decimal("50.00"))
    ]
    # A month that has not begun has nothing.
    assert commission_report(tenant=tenant, month=JUNE, at=paris(5, 20)) == []


def test_the_report_keeps_a_partners_other_currencies_without_a_statement(tenant: Tenant) -> None:
    euro = payer(tenant)
    swiss = dupont(tenant, external_id="bern", name="Bern AG", currency="CHF")
    partner_of(tenant, "alpnet", {"service": "20"}, euro, swiss)
    pay(service_invoice(euro, "100.00"), "120.00", paris(4, 10))
    chf = service_invoice(swiss, "50.00")
    assert build(tenant, APRIL)["alpnet"].currency == "EUR"  # 100.00 × 20 % = 20.00
    # A CHF payment received on 20 April, recorded after the build: not in a statement yet.
    pay(chf, str(chf.total.amount), paris(5, 2), received_at=paris(4, 20))
    report = commission_report(tenant=tenant, month=APRIL, at=paris(5, 3))
    # 50.00 × 20 % = 10.00 CHF, beside the EUR statement's 20.00.
    assert [(r.currency, r.status, r.total) for r in report] == [
        ("CHF", "accruing", Decimal("10.00")),
        ("EUR", "draft", Decimal("20.0000")),
    ]
