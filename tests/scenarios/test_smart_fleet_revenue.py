"""revrec.md's worked example: the Smart Fleet scenario of billing.md recognized as revenue, end to
end. The catalog (with its standalone selling prices), the customer, the subscription, the
activations, the usage, the bill run, the invoice's finalization and the payment go through the
public API; the contract is built and the monthly runs are started by their services (they have
no API yet)."""

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.db.models import Sum
from rest_framework.test import APIClient

from invoicing.tests.billing_api import eager_celery, ok, paris
from payments.tests.test_worked_examples import finalize, pay
from revrec.balances import contract_balances
from revrec.contracts import contract_from_subscription
from revrec.models import Contract, JournalEntry, JournalLine, RecognitionEntry
from revrec.runs import recognition_run
from subscriptions.models import Subscription
from tenancy.models import Tenant
from tests.scenarios.test_smart_fleet import bill, fleet, send_usage

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]
__all__ = ["eager_celery", "fleet"]

MARCH, APRIL = date(2026, 3, 1), date(2026, 4, 1)


def recognized(period: date) -> dict[tuple[str, str], Decimal]:
    return {
        (e.obligation.kind, e.obligation.device_id): e.amount.amount
        for e in RecognitionEntry.objects.filter(period=period).select_related("obligation")
    }


def accounts(period: date) -> dict[str, tuple[Decimal, Decimal]]:
    """(debits, credits) per account of the period's journal."""
    return {
        row["account"]: (row["debit"], row["credit"])
        for row in JournalLine.objects.filter(entry__period=period)
        .values("account")
        .annotate(debit=Sum("debit"), credit=Sum("credit"))
        .order_by("account")
    }


def assert_balanced() -> None:
    """Every entry, hence every period, debits what it credits."""
    for entry in JournalEntry.objects.prefetch_related("lines"):
        debits = sum((x.debit.amount for x in entry.lines.all()), Decimal(0))
        credits = sum((x.credit.amount for x in entry.lines.all()), Decimal(0))
        assert debits == credits, (entry.source_type, entry.period, debits, credits)
    for period in JournalEntry.objects.values_list("period", flat=True).distinct():
        sums = accounts(period).values()
        assert sum(d for d, _ in sums) == sum(c for _, c in sums), period


def test_smart_fleet_march_and_april_revenue(
    fleet: dict[str, Any], api: APIClient, tenant: Tenant, django_capture_on_commit_callbacks: Any
) -> None:
    capture = django_capture_on_commit_callbacks
    # given: the standalone selling prices of revrec.md, eld-200 300.00 and fleet-platform 30.00
    with time_machine.travel(paris(2026, 3, 1, 10), tick=False):
        ok(api.patch("/api/v1/products/eld-200", {"ssp": [{"currency": "EUR", "amount": "300.00"}]}, format="json"))
        ok(
            api.patch(
                "/api/v1/products/fleet-platform", {"ssp": [{"currency": "EUR", "amount": "30.00"}]}, format="json"
            )
        )
        # the buyer's address, which an e-invoice needs to be finalized
        address = {"line1": "8 avenue des Transporteurs", "postal_code": "94150", "city": "Rungis", "country": "FR"}
        ok(api.patch("/api/v1/customers/dupont", {"address": address}, format="json"))
    # March usage: A 800 MB, B 3000 MB
    send_usage(
        fleet["ingest"],
        paris(2026, 3, 31, 12),
        [("a-0001", "A", paris(2026, 3, 16, 11), 800), ("b-0001", "B", paris(2026, 3, 25, 11), 3000)],
    )
    subscription = Subscription.objects.get(tenant=tenant, external_id="dupont-fleet")
    contract = contract_from_subscription(subscription=subscription, at=paris(2026, 3, 31, 12))
    # 3 x 240.00 + 3 x 12 x 25.00 = 1,620.00
    assert contract.transaction_price.amount == Decimal("1620.00")

    # the bill run of 1 April drafts the invoice (not billed yet: a draft posts nothing)
    invoice = bill(api, paris(2026, 4, 1, 0, 30), "2026-04-01", capture)
    assert (invoice["net_total"], invoice["taxes"][0]["amount"], invoice["total"]) == ("150.91", "30.18", "181.09")

    # when: the March run, on 1 April at 06:00
    report = recognition_run(tenant_id=tenant.pk, month=MARCH, at=paris(2026, 4, 1, 6))

    # then: hardware A and B at activation 245.45 + 245.45 = 490.90; service A 294.54 x 17/365
    # = 13.7183... -> 13.72, B 294.54 x 12/365 = 9.6835... -> 9.68; usage of 1-31 March, all in
    # March: (800 + 3000 - 2 x 1024) = 1752 MB x 0.010 = 17.52. 490.90 + 23.40 + 17.52 = 531.82.
    assert recognized(MARCH) == {
        ("hardware", "A"): Decimal("245.45"),
        ("hardware", "B"): Decimal("245.45"),
        ("service", "A"): Decimal("13.72"),
        ("service", "B"): Decimal("9.68"),
        ("usage", ""): Decimal("17.52"),
    }
    assert report.revenue == {
        ("EUR", "hardware"): Decimal("490.90"),
        ("EUR", "service"): Decimal("23.40"),
        ("EUR", "usage"): Decimal("17.52"),
    }
    assert sum(report.revenue.values(), Decimal(0)) == Decimal("531.82")
    assert accounts(MARCH) == {
        "contract_balance": (Decimal("531.82"), Decimal("0")),
        "revenue_hardware": (Decimal("0"), Decimal("490.90")),
        "revenue_service": (Decimal("0"), Decimal("23.40")),
        "revenue_usage": (Decimal("0"), Decimal("17.52")),
    }
    # nothing billed at 31 March: billed 0 - recognized 531.82 = -531.82, a contract asset
    march = contract_balances(tenant_id=tenant.pk, on=date(2026, 3, 31))
    [balance] = march.contracts
    assert (balance.contract_id, balance.billed, balance.recognized) == (contract.pk, Decimal(0), Decimal("531.82"))
    assert (balance.contract_asset, balance.deferred_revenue) == (Decimal("531.82"), Decimal(0))
    assert march.totals["EUR"].contract_asset == Decimal("531.82")

    # the invoice of 1 April finalized: Dr receivable 181.09 / Cr tax payable 30.18 / Cr contract
    # balance 150.91 (60.00 + 13.71 + 9.68 + 50.00 + 17.52), dated 1 April
    finalize(api, invoice, paris(2026, 4, 1, 9), capture)
    [entry] = JournalEntry.objects.filter(source_type="invoice")
    assert (entry.date, entry.period, entry.contract_id, entry.source_id) == (APRIL, APRIL, contract.pk, invoice["id"])
    assert {(x.account, x.debit.amount, x.credit.amount) for x in entry.lines.all()} == {
        ("receivable", Decimal("181.09"), Decimal(0)),
        ("tax_payable", Decimal(0), Decimal("30.18")),
        ("contract_balance", Decimal(0), Decimal("150.91")),
    }
    # the transfer of 181.09 on 20 April: Dr cash / Cr receivable 181.09
    pay(api, paris(2026, 4, 20, 10), "181.09", "VIR-0420", capture)

    # April usage: A 5000, B 7000, C 2000 MB (A's at 00:30 on 1 April, Paris: April usage)
    send_usage(
        fleet["ingest"],
        paris(2026, 4, 30, 12),
        [
            ("a-0002", "A", paris(2026, 4, 1, 0, 30), 5000),
            ("b-0002", "B", paris(2026, 4, 18, 9), 7000),
            ("c-0002", "C", paris(2026, 4, 20, 9), 2000),
        ],
    )
    # C, activated on 10 April: its dates are filled in
    contract_from_subscription(subscription=subscription, at=paris(2026, 4, 30, 12))
    recognition_run(tenant_id=tenant.pk, month=APRIL, at=paris(2026, 5, 1, 6))
    # A to 1 May 294.54 x 47/365 = 37.93 - 13.72 = 24.21; B 294.54 x 42/365 = 33.89 - 9.68 = 24.21;
    # C's hardware 245.46 on 10 April; C's service 294.56 x 21/365 (10-30 April) = 16.9473... ->
    # 16.95; April's usage rated so far (the period is open until 1 May):
    # 14000 - 3 x 1024 = 10928 MB -> 10000 x 0.010 + 928 x 0.005 = 104.64. Total 415.47.
    assert recognized(APRIL) == {
        ("service", "A"): Decimal("24.21"),
        ("service", "B"): Decimal("24.21"),
        ("hardware", "C"): Decimal("245.46"),
        ("service", "C"): Decimal("16.95"),
        ("usage", ""): Decimal("104.64"),
    }
    assert accounts(APRIL) == {
        # 181.09 received
        "cash": (Decimal("181.09"), Decimal(0)),
        # 415.47 recognized; 150.91 billed
        "contract_balance": (Decimal("415.47"), Decimal("150.91")),
        # 181.09 billed, 181.09 paid
        "receivable": (Decimal("181.09"), Decimal("181.09")),
        "revenue_hardware": (Decimal(0), Decimal("245.46")),
        "revenue_service": (Decimal(0), Decimal("65.37")),  # 24.21 + 24.21 + 16.95
        "revenue_usage": (Decimal(0), Decimal("104.64")),
        "tax_payable": (Decimal(0), Decimal("30.18")),
    }
    assert_balanced()
    # 30 April: billed 150.91 - recognized (531.82 + 415.47 = 947.29) = -796.38, a contract asset
    [april] = contract_balances(tenant_id=tenant.pk, on=date(2026, 4, 30)).contracts
    assert (april.billed, april.recognized, april.contract_asset) == (
        Decimal("150.91"),
        Decimal("947.29"),
        Decimal("796.38"),
    )
    assert Contract.objects.count() == 1
    # running April again changes nothing
    again = recognition_run(tenant_id=tenant.pk, month=APRIL, at=paris(2026, 5, 1, 7))
    assert (again.entries, again.journal_entries) == (0, 0)
