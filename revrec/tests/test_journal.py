"""The journal of invoices, credit notes, voids, payments and refunds, and contract balances."""

from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from djmoney.money import Money

from catalog.services import tax_rate_set
from customers.tests.factories import dupont
from invoicing.models import Invoice
from invoicing.services import invoice_void
from invoicing.tests.factories import issue, line
from payments.ledger import payment_record, refund_record
from revrec.balances import contract_balances
from revrec.journal import invoices_journal_post, posting_period
from revrec.models import Contract, JournalEntry, JournalLine, RevenuePeriod
from revrec.runs import recognition_run
from revrec.tests.conftest import PARIS
from subscriptions.models import Subscription
from subscriptions.tests.factories import ACTOR
from tenancy.models import Tenant

APRIL, MAY = date(2026, 4, 1), date(2026, 5, 1)
AT = datetime(2026, 4, 1, 9, tzinfo=PARIS)


def lines_of(**filters: Any) -> set[tuple[Any, str, Decimal, Decimal]]:
    """(contract, account, debit, credit) of the journal lines of the entries matching ``filters``."""
    return {
        (x.entry.contract_id, x.account, x.debit.amount, x.credit.amount)
        for x in JournalLine.objects.filter(**{f"entry__{k}": v for k, v in filters.items()}).select_related("entry")
    }


def mixed_invoice(fleet: Subscription, *, on: date = APRIL, finalize: bool = True) -> Invoice:
    """100.00 of service of the fleet's subscription and 50.00 of setup outside any subscription,
    VAT 20 % on 150.00 = 30.00, total 180.00."""
    return issue(
        fleet.customer,
        [replace(line("service", "fleet-platform", "100.00"), subscription=fleet), line("fee", "setup", "50.00")],
        on=on,
        finalize=finalize,
    )


@pytest.mark.django_db
def test_an_invoice_posts_receivable_tax_and_contract_balance_per_contract(
    tenant: Tenant, fleet: Subscription, fleet_contract: Contract
) -> None:
    invoice = mixed_invoice(fleet)
    # the contract's 100.00 takes 100/150 of the 30.00 VAT = 20.00; the 50.00 of no contract 10.00
    assert lines_of(source_type="invoice") == {
        (fleet_contract.pk, "receivable", Decimal("120.00"), Decimal(0)),
        (fleet_contract.pk, "tax_payable", Decimal(0), Decimal("20.00")),
        (fleet_contract.pk, "contract_balance", Decimal(0), Decimal("100.00")),
        (None, "receivable", Decimal("60.00"), Decimal(0)),
        (None, "tax_payable", Decimal(0), Decimal("10.00")),
        (None, "contract_balance", Decimal(0), Decimal("50.00")),
    }
    entries = JournalEntry.objects.filter(source_type="invoice")
    assert {(e.date, e.period, e.source_id) for e in entries} == {(APRIL, APRIL, str(invoice.pk))}
    # posting it again (a receiver called twice) writes nothing more
    assert invoices_journal_post(invoices=[invoice], at=AT) == []
    assert JournalLine.objects.count() == 6

    # billed 100.00 before anything is recognized: deferred revenue 100.00 on 1 April
    balances = contract_balances(tenant_id=tenant.pk, on=APRIL)
    [balance] = balances.contracts
    assert (balance.billed, balance.recognized, balance.deferred_revenue) == (Decimal("100.00"), 0, Decimal("100.00"))
    assert (balances.totals["EUR"].deferred_revenue, balances.totals["EUR"].contract_asset) == (Decimal("100.00"), 0)
    assert balances.unassigned == {"EUR": Decimal("50.00")}
    # on 31 March it was not billed yet
    assert contract_balances(tenant_id=tenant.pk, on=date(2026, 3, 31)).contracts == []


@pytest.mark.django_db
def test_a_void_reverses_the_invoice_on_its_day(tenant: Tenant, fleet: Subscription, fleet_contract: Contract) -> None:
    invoice = mixed_invoice(fleet)
    invoice_void(invoice=invoice, actor=ACTOR, at=datetime(2026, 4, 3, 0, 30, tzinfo=PARIS), reason="wrong")
    # the void of 3 April (Paris) credits what the invoice debited and debits what it credited
    assert lines_of(source_type="invoice_void") == {
        (fleet_contract.pk, "receivable", Decimal(0), Decimal("120.00")),
        (fleet_contract.pk, "tax_payable", Decimal("20.00"), Decimal(0)),
        (fleet_contract.pk, "contract_balance", Decimal("100.00"), Decimal(0)),
        (None, "receivable", Decimal(0), Decimal("60.00")),
        (None, "tax_payable", Decimal("10.00"), Decimal(0)),
        (None, "contract_balance", Decimal("50.00"), Decimal(0)),
    }
    assert set(JournalEntry.objects.filter(source_type="invoice_void").values_list("date", flat=True)) == {
        date(2026, 4, 3)
    }
    [balance] = contract_balances(tenant_id=tenant.pk, on=date(2026, 4, 30)).contracts
    assert (balance.billed, balance.balance) == (Decimal(0), Decimal(0))


@pytest.mark.django_db
def test_an_invoice_of_a_closed_month_posts_in_the_first_open_month(
    tenant: Tenant, fleet: Subscription, fleet_contract: Contract
) -> None:
    RevenuePeriod.objects.create(tenant=tenant, month=APRIL, closed_at=AT)
    RevenuePeriod.objects.create(tenant=tenant, month=MAY, closed_at=AT)
    mixed_invoice(fleet)
    # April and May are closed: the invoice dated 1 April posts in June, keeping its date
    assert set(JournalEntry.objects.values_list("date", "period")) == {(APRIL, date(2026, 6, 1))}
    # a balance on 30 April (a closed month) does not move; from 1 June it counts
    assert contract_balances(tenant_id=tenant.pk, on=date(2026, 4, 30)).contracts == []
    [balance] = contract_balances(tenant_id=tenant.pk, on=date(2026, 6, 1)).contracts
    assert balance.billed == Decimal("100.00")


def test_posting_period_skips_closed_months() -> None:
    closed = {date(2026, 3, 1), date(2026, 4, 1)}
    assert posting_period(date(2026, 3, 31), closed=closed) == MAY
    assert posting_period(date(2026, 2, 28), closed=closed) == date(2026, 2, 1)


@pytest.mark.django_db
def test_a_bill_run_of_many_invoices_is_journaled_in_a_constant_number_of_statements(
    tenant: Tenant, fleet: Subscription, fleet_contract: Contract, django_assert_num_queries: Any
) -> None:
    one = [mixed_invoice(fleet, finalize=False)]
    others = []
    for n in range(3):
        customer = dupont(tenant, external_id=f"other-{n}", name=f"Other {n}")
        others.append(issue(customer, [line("service", "fleet-platform", "10.00")], on=MAY, finalize=False))
    # closed periods, lines, taxes, entries, lines: 5 statements for 1 invoice or 4
    with django_assert_num_queries(5):
        invoices_journal_post(invoices=one, at=AT)
    with django_assert_num_queries(5):
        invoices_journal_post(invoices=others + one, at=AT)
    # 10.00 + 2.00 VAT each, of no contract
    assert JournalEntry.objects.filter(contract__isnull=True, date=MAY).count() == 3


@pytest.mark.django_db
def test_payments_and_refunds_post_cash_against_receivable(
    tenant: Tenant, fleet: Subscription, fleet_contract: Contract
) -> None:
    invoice = mixed_invoice(fleet)  # 180.00
    customer = fleet.customer
    # 200.00 received on 20 April: 180.00 pays the invoice, 20.00 goes to the credit balance and
    # stays on the receivable account (a credit there): Dr cash 200.00 / Cr receivable 200.00
    payment = payment_record(
        customer=customer,
        amount=Money("200.00", "EUR"),
        method="bank_transfer",
        received_at=datetime(2026, 4, 20, 10, tzinfo=PARIS),
        actor=ACTOR,
        at=datetime(2026, 4, 20, 10, tzinfo=PARIS),
    )
    invoice.refresh_from_db()
    assert invoice.payment_status == "paid"
    assert lines_of(source_type="payment") == {
        (None, "cash", Decimal("200.00"), Decimal(0)),
        (None, "receivable", Decimal(0), Decimal("200.00")),
    }
    # the 20.00 on the balance refunded on 22 April: Dr receivable / Cr cash 20.00
    refund_record(
        payment=payment,
        amount=Money("20.00", "EUR"),
        reason="overpayment",
        actor=ACTOR,
        at=datetime(2026, 4, 22, 10, tzinfo=PARIS),
    )
    assert lines_of(source_type="refund") == {
        (None, "receivable", Decimal("20.00"), Decimal(0)),
        (None, "cash", Decimal(0), Decimal("20.00")),
    }
    assert JournalEntry.objects.get(source_type="refund").date == date(2026, 4, 22)
    # receivable: 120.00 + 60.00 billed - 200.00 paid + 20.00 refunded = 0; cash 180.00
    receivable = sum(
        (x.debit.amount - x.credit.amount for x in JournalLine.objects.filter(account="receivable")), Decimal(0)
    )
    cash = sum((x.debit.amount - x.credit.amount for x in JournalLine.objects.filter(account="cash")), Decimal(0))
    assert (receivable, cash) == (Decimal(0), Decimal("180.00"))


@pytest.mark.django_db
def test_a_month_recognized_after_billing_leaves_deferred_revenue_or_an_asset(
    tenant: Tenant, fleet: Subscription, fleet_contract: Contract
) -> None:
    tax_rate_set(tenant=tenant, actor=ACTOR, at=AT, country="FR", tax_category="standard", rate="20")
    # 600.00 billed on 1 March for the contract, then March recognizes 514.30 (hardware A, B
    # 490.90, service A 13.72, B 9.68): deferred revenue 600.00 - 514.30 = 85.70 on 31 March
    issue(
        fleet.customer, [replace(line("service", "fleet-platform", "600.00"), subscription=fleet)], on=date(2026, 3, 1)
    )
    recognition_run(tenant_id=tenant.pk, month=date(2026, 3, 1), at=AT)
    [balance] = contract_balances(tenant_id=tenant.pk, on=date(2026, 3, 31)).contracts
    assert (balance.billed, balance.recognized, balance.deferred_revenue, balance.contract_asset) == (
        Decimal("600.00"),
        Decimal("514.30"),
        Decimal("85.70"),
        Decimal(0),
    )
