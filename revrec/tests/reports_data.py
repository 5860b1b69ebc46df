"""Revenue report data of the revrec tests: the Smart Fleet contract's runs of March to May 2026,
and invoices and credit notes written straight into the journal (balanced: Dr receivable gross /
Cr tax payable / Cr contract balance net; a credit note the other way round), as the invoice
journal would post them."""

from datetime import date, datetime
from decimal import Decimal

import pytest
from djmoney.money import Money

from revrec.models import Account, Contract, JournalEntry, JournalLine, JournalSource
from revrec.runs import recognition_run
from revrec.tests.conftest import PARIS
from subscriptions.models import Subscription
from subscriptions.tests.factories import signed_subscription
from tenancy.models import Tenant

MARCH, APRIL, MAY, JUNE = date(2026, 3, 1), date(2026, 4, 1), date(2026, 5, 1), date(2026, 6, 1)
AT = datetime(2026, 6, 1, 6, 0, tzinfo=PARIS)


def eur(amount: str) -> Money:
    return Money(Decimal(amount), "EUR")


def invoice_entry(
    tenant: Tenant, contract: Contract | None, day: date, net: str, tax: str, *, currency: str = "EUR"
) -> JournalEntry:
    """An invoice's posting (a negative ``net`` and ``tax``: a credit note's): Dr receivable
    net + tax / Cr tax payable tax / Cr contract balance net."""
    net_d, tax_d = Decimal(net), Decimal(tax)
    entry = JournalEntry.objects.create(
        tenant=tenant,
        period=day.replace(day=1),
        date=day,
        source_type=JournalSource.INVOICE,
        source_id="F-%s" % day.isoformat(),
        contract=contract,
        currency=currency,
        created_at=AT,
    )

    def line(account: str, amount: Decimal, *, debit: bool) -> JournalLine:
        # A negative debit is a credit and the other way round: each line keeps one side.
        if amount < 0:
            amount, debit = -amount, not debit
        return JournalLine(
            tenant=tenant,
            entry=entry,
            account=account,
            currency=currency,
            debit=amount if debit else Decimal(0),
            credit=Decimal(0) if debit else amount,
        )

    JournalLine.objects.bulk_create(
        [
            line(Account.RECEIVABLE, net_d + tax_d, debit=True),
            line(Account.TAX_PAYABLE, tax_d, debit=False),
            line(Account.CONTRACT_BALANCE, net_d, debit=False),
        ]
    )
    return entry


def second_contract(tenant: Tenant, fleet: Subscription) -> Contract:
    """Another contract of the same customer, billed ahead: 100.00 net invoiced in April, nothing
    recognized."""
    subscription = signed_subscription(
        tenant, customer=fleet.customer, plan=fleet.plan, external_id="dupont-second", devices=("D",)
    )
    return Contract.objects.create(
        tenant=tenant,
        subscription=subscription,
        currency="EUR",
        transaction_price=Decimal("100.00"),
        created_at=AT,
        plan=subscription.plan,
    )


@pytest.fixture
def history(tenant: Tenant, fleet_contract: Contract) -> dict[str, Contract]:
    """Runs of March, April and May on A and B (C is never activated); invoices of the fleet
    contract: 530.00 net (+ 106.00 VAT) on 1 April, a credit note of 30.00 (+ 6.00) on 20 April and
    600.00 (+ 120.00) on 5 May; the second contract 100.00 (+ 20.00) on 10 April."""
    for month in (MARCH, APRIL, MAY):
        recognition_run(tenant_id=tenant.pk, month=month, at=AT)
    other = second_contract(tenant, fleet_contract.subscription)
    invoice_entry(tenant, fleet_contract, date(2026, 4, 1), "530.00", "106.00")
    invoice_entry(tenant, fleet_contract, date(2026, 4, 20), "-30.00", "-6.00")
    invoice_entry(tenant, fleet_contract, date(2026, 5, 5), "600.00", "120.00")
    invoice_entry(tenant, other, date(2026, 4, 10), "100.00", "20.00")
    return {"fleet": fleet_contract, "other": other}
