"""The revenue reports (revrec.reports) on the Smart Fleet contract of revrec.md: recognition from
the monthly run, invoices and credit notes written straight into the journal (balanced: Dr
receivable gross / Cr tax payable / Cr contract balance net, a credit note the other way round).
Usage is left out: its recognition is not posted by the run yet."""

from datetime import date
from typing import Any

import pytest
from djmoney.money import Money

from revrec.models import Contract
from revrec.reports import (
    contract_balances,
    journal_totals,
    revenue_by_stream,
    revenue_report,
    revenue_waterfall,
)
from revrec.runs import recognition_run
from revrec.tests.reports_data import APRIL, AT, JUNE, MARCH, MAY, eur, history, invoice_entry  # noqa: F401
from tenancy.models import Tenant

pytestmark = pytest.mark.django_db


@pytest.mark.usefixtures("history")
def test_revenue_by_stream_and_month(tenant: Tenant) -> None:
    [(currency, months)] = revenue_by_stream(tenant_id=tenant.pk, start=MARCH, end=JUNE).items()
    assert currency == "EUR"
    assert [m.month for m in months] == [MARCH, APRIL, MAY, JUNE]
    march, april, may, june = months
    # March: hardware A + B 245.45 + 245.45 = 490.90; service A 294.54 x 17/365 = 13.72, B x 12/365
    # = 9.68, 23.40; no usage, no fees: 514.30 (revrec.md's 531.82 less March's usage 17.52).
    assert (march.hardware, march.service, march.usage, march.fees) == (eur("490.90"), eur("23.40"), eur("0"), eur("0"))
    assert march.total == eur("514.30")
    # April: A 294.54 x 47/365 = 37.93 - 13.72 = 24.21; B x 42/365 = 33.89 - 9.68 = 24.21.
    assert (april.hardware, april.service, april.total) == (eur("0"), eur("48.42"), eur("48.42"))
    # May: A x 78/365 = 62.94 - 37.93 = 25.01; B x 73/365 = 58.908 -> 58.91 - 33.89 = 25.02.
    assert may.service == eur("50.03")
    # June is not run: nothing recognized yet.
    assert june.total == eur("0")


@pytest.mark.usefixtures("history")
def test_contract_balances_at_each_month_end(tenant: Tenant) -> None:
    [(currency, months)] = contract_balances(tenant_id=tenant.pk, start=MARCH, end=MAY).items()
    assert currency == "EUR"
    march, april, may = months
    # 31 March: nothing billed, 514.30 recognized: a contract asset of 514.30 (revrec.md, usage aside).
    assert (march.deferred_revenue, march.contract_asset) == (eur("0"), eur("514.30"))
    # 30 April: fleet billed 530.00 - 30.00 = 500.00, recognized 514.30 + 48.42 = 562.72: asset 62.72;
    # the second contract billed 100.00, recognized nothing: deferred 100.00. Never netted.
    assert (april.deferred_revenue, april.contract_asset, april.net) == (eur("100.00"), eur("62.72"), eur("37.28"))
    # 31 May: fleet 500.00 + 600.00 - (562.72 + 50.03) = 487.25, plus 100.00: deferred 587.25.
    assert (may.deferred_revenue, may.contract_asset) == (eur("587.25"), eur("0"))


@pytest.mark.usefixtures("history")
def test_entries_before_the_range_open_its_first_balance(tenant: Tenant) -> None:
    # April alone: March's recognition (514.30) still counts in the balance at 30 April.
    [april] = contract_balances(tenant_id=tenant.pk, start=APRIL, end=APRIL)["EUR"]
    assert (april.deferred_revenue, april.contract_asset) == (eur("100.00"), eur("62.72"))


@pytest.mark.usefixtures("history")
def test_billings_vs_revenue(tenant: Tenant) -> None:
    report = revenue_report(tenant_id=tenant.pk, start=MARCH, end=MAY)
    [eur_report] = report.currencies
    rows = [(b.month, b.billings, b.revenue, b.difference) for b in eur_report.billings]
    assert rows == [
        (MARCH, eur("0"), eur("514.30"), eur("-514.30")),
        # 530.00 - 30.00 (the credit note) + 100.00 = 600.00 billed; 48.42 recognized.
        (APRIL, eur("600.00"), eur("48.42"), eur("551.58")),
        (MAY, eur("600.00"), eur("50.03"), eur("549.97")),
    ]
    # Billings - revenue of each month is the change of the net contract balance:
    # -514.30, then -514.30 + 551.58 = 37.28, then 37.28 + 549.97 = 587.25.
    assert [b.net for b in eur_report.contract_balances] == [eur("-514.30"), eur("37.28"), eur("587.25")]


@pytest.mark.usefixtures("history")
def test_the_waterfall_spreads_what_is_left_by_the_schedules(tenant: Tenant) -> None:
    waterfall = revenue_waterfall(tenant_id=tenant.pk, as_of=MAY)["EUR"]
    months = {m.month: m.amount for m in waterfall.months}
    # From May (run already: nothing left of it) to March 2027, the last month of A's and B's terms.
    assert (waterfall.months[0].month, waterfall.months[-1].month, len(months)) == (MAY, date(2027, 3, 1), 11)
    assert months[MAY] == eur("0")
    # June: A 294.54 x 108/365 = 87.1509... -> 87.15 - 62.94 = 24.21; B x 103/365 = 83.1166... -> 83.12
    # - 58.91 = 24.21.
    assert months[JUNE] == eur("48.42")
    # March 2027: A 294.54 - (x 351/365 = 283.24) = 11.30; B 294.54 - (x 346/365 = 279.21) = 15.33.
    assert months[date(2027, 3, 1)] == eur("26.63")
    # What is left of A and B: 294.54 - 62.94 + 294.54 - 58.91 = 467.23; C is not activated, its
    # hardware 245.46 and service 294.56 wait unscheduled: 540.02.
    assert (waterfall.scheduled, waterfall.unscheduled) == (eur("467.23"), eur("540.02"))
    # 1,620.00 allocated - 612.75 recognized (514.30 + 48.42 + 50.03) = 1,007.25.
    assert waterfall.remaining == eur("1007.25")


def test_a_month_not_run_yet_is_the_waterfalls_first_month(tenant: Tenant, fleet_contract: Contract) -> None:
    # given: March run, April not yet (the report is read during April)
    recognition_run(tenant_id=tenant.pk, month=MARCH, at=AT)
    # when
    waterfall = revenue_waterfall(tenant_id=tenant.pk, as_of=APRIL)["EUR"]
    # then: April's 48.42 is still ahead, in April; as of March, April is the first month after.
    assert (waterfall.months[0].month, waterfall.months[0].amount) == (APRIL, eur("48.42"))
    as_of_march = revenue_waterfall(tenant_id=tenant.pk, as_of=MARCH)["EUR"]
    assert [(m.month, m.amount) for m in as_of_march.months[:2]] == [(MARCH, eur("0")), (APRIL, eur("48.42"))]
    # 1,620.00 - 514.30 = 1,105.70, of which C's 540.02 unscheduled.
    assert (as_of_march.remaining, as_of_march.unscheduled) == (eur("1105.70"), eur("540.02"))


@pytest.mark.usefixtures("history")
def test_a_waterfall_of_the_past_ignores_later_runs(tenant: Tenant) -> None:
    # As of March, April's and May's entries are not recognized yet: 1,620.00 - 514.30 = 1,105.70.
    waterfall = revenue_waterfall(tenant_id=tenant.pk, as_of=MARCH)["EUR"]
    assert waterfall.remaining == eur("1105.70")
    assert {m.month: m.amount for m in waterfall.months}[APRIL] == eur("48.42")


def test_a_device_activated_in_a_month_already_past_is_due_in_the_first_month(
    tenant: Tenant, fleet_contract: Contract
) -> None:
    # given: hardware A and B dated March, no run at all
    # when: the waterfall as of April
    waterfall = revenue_waterfall(tenant_id=tenant.pk, as_of=APRIL)["EUR"]
    # then: the run of April would catch up March: 490.90 + A 37.93 + B 33.89 = 562.72 in April.
    assert waterfall.months[0] == type(waterfall.months[0])(APRIL, eur("562.72"))


@pytest.mark.usefixtures("history")
def test_currencies_are_reported_apart_the_tenants_first(tenant: Tenant) -> None:
    # given: a USD invoice on a contract-less entry (an invoice of a subscription without contract)
    invoice_entry(tenant, None, date(2026, 4, 2), "50.00", "0.00", currency="USD")
    # when
    report = revenue_report(tenant_id=tenant.pk, start=APRIL, end=APRIL)
    # then: EUR first (the tenant's), USD alone: billed 50.00, deferred 50.00, never converted
    assert [c.currency for c in report.currencies] == ["EUR", "USD"]
    usd = report.currencies[1]
    assert (usd.billings[0].billings, usd.billings[0].revenue) == (Money("50.00", "USD"), Money("0", "USD"))
    assert usd.contract_balances[0].deferred_revenue == Money("50.00", "USD")
    assert usd.revenue[0].total == Money("0", "USD")
    assert usd.waterfall.months == []


@pytest.mark.usefixtures("history")
def test_the_report_runs_a_fixed_number_of_queries(tenant: Tenant, django_assert_num_queries: Any) -> None:
    # The tenant, then one query per table, however many contracts, entries and months.
    with django_assert_num_queries(5):
        small = revenue_report(tenant_id=tenant.pk, start=MARCH, end=MARCH)
    with django_assert_num_queries(5):
        large = revenue_report(tenant_id=tenant.pk, start=date(2020, 1, 1), end=date(2029, 12, 1))
    assert len(small.currencies[0].revenue) == 1
    assert len(large.currencies[0].revenue) == 120


@pytest.mark.usefixtures("history")
def test_another_tenants_report_is_empty(tenant: Tenant, other_tenant: Tenant) -> None:
    report = revenue_report(tenant_id=other_tenant.pk, start=MARCH, end=MAY)
    assert report.currencies == []
    assert journal_totals(tenant_id=other_tenant.pk, period=APRIL) == []


@pytest.mark.usefixtures("history")
def test_journal_totals_are_balanced(tenant: Tenant) -> None:
    [april] = journal_totals(tenant_id=tenant.pk, period=APRIL)
    # Invoices: 636.00 + 120.00 Dr receivable, 106.00 + 20.00 Cr tax, 530.00 + 100.00 Cr contract
    # balance; credit note: 36.00 Cr receivable, 6.00 Dr tax, 30.00 Dr contract balance; run: 48.42 Dr
    # contract balance / Cr service. Debits 636 + 120 + 6 + 30 + 48.42 = 840.42 = credits
    # 106 + 20 + 530 + 100 + 36 + 48.42.
    assert (april.entries, april.debit, april.credit, april.balanced) == (4, eur("840.42"), eur("840.42"), True)
