"""MRR in the reporting currency (analytics.md): the Smart Fleet example's ARPD and NRR, another
currency converted at each month's rate, and a month without a rate reported as missing."""

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import time_machine
from django.utils import timezone

from catalog.services.plans import price_version_create
from customers.services import customer_create
from revrec.metrics import mrr_in_reporting_currency, mrr_report
from revrec.rates import RateInput, exchange_rates_set
from subscriptions.changes import subscription_change
from subscriptions.tests.factories import (
    ACTOR,
    monthly_fee_customers,
    signed_subscription,
    smart_fleet,
    smart_fleet_activate,
)
from tenancy.models import Tenant

PARIS = ZoneInfo("Europe/Paris")
D = Decimal


def smart_fleet_history(tenant: Tenant) -> None:
    """A and B active in March, C from 10 April, B removed on 15 May, 25.00 per device and month."""
    sub = smart_fleet(tenant)
    smart_fleet_activate(tenant, ("A", "B", "C"))
    removed_at = datetime(2026, 5, 15, 10, 0, tzinfo=PARIS)
    with time_machine.travel(removed_at, tick=False):
        subscription_change(
            subscription=sub, action="remove_devices", params={"device_ids": ["B"]}, actor=ACTOR, at=removed_at
        )


def test_the_smart_fleet_arpd_and_nrr(tenant: Tenant) -> None:
    # given
    smart_fleet_history(tenant)
    months = mrr_report(tenant_id=tenant.pk, start=date(2026, 3, 1), end=date(2026, 5, 31))
    # when: all in EUR, the reporting currency: no rate needed
    summary = mrr_in_reporting_currency(tenant=tenant, months=months)
    # then
    march, april, may = summary.months
    assert (march.new, march.end, march.devices, march.arpd) == (D("50.00"), D("50.00"), 2, D("25.00"))
    # ARPD at 30 April: 75.00 / 3 = 25.00
    assert (april.expansion, april.end, april.devices, april.arpd) == (D("25.00"), D("75.00"), 3, D("25.00"))
    assert (may.contraction, may.end, may.devices, may.arpd) == (D("25.00"), D("50.00"), 2, D("25.00"))
    # NRR per month: March had no customer at its start; April (50 + 25) / 50 = 150 %;
    # May (75 - 25) / 75 = 66.666... -> 66.67 %
    assert [m.nrr for m in summary.months] == [None, D("150.00"), D("66.67")]
    assert summary.missing_rates == []
    # NRR over March-May: nobody had MRR at the start of March
    assert summary.retention.nrr is None


def test_nrr_over_a_period_follows_the_customers_of_its_start(tenant: Tenant) -> None:
    smart_fleet_history(tenant)
    # May alone: the customers with MRR at its start (Dupont, 75.00): (75.00 - 25.00) / 75.00 = 66.67 %
    may_only = mrr_in_reporting_currency(
        tenant=tenant, months=mrr_report(tenant_id=tenant.pk, start=date(2026, 5, 1), end=date(2026, 5, 1))
    )
    r = may_only.retention
    assert (r.start, r.expansion, r.contraction, r.churn, r.end, r.nrr) == (
        D("75.00"),
        D("0.00"),
        D("25.00"),
        D("0.00"),
        D("50.00"),
        D("66.67"),
    )
    # April to May: 50.00 at the start of April, +25.00 then -25.00: 50.00 / 50.00 = 100 %
    april_may = mrr_in_reporting_currency(
        tenant=tenant, months=mrr_report(tenant_id=tenant.pk, start=date(2026, 4, 1), end=date(2026, 5, 1))
    )
    r = april_may.retention
    assert (r.start, r.expansion, r.contraction, r.end, r.nrr) == (
        D("50.00"),
        D("25.00"),
        D("25.00"),
        D("50.00"),
        D("100.00"),
    )


def test_other_currencies_convert_at_each_months_rate_and_a_missing_rate_is_flagged(tenant: Tenant) -> None:
    # given: c0 (EUR) 2 devices x 10.00 and c1 (USD) 1 device x 12.00, both from 1 March; rates
    # 1 USD = 0.90 EUR in March, 0.95 in May, none for April
    with time_machine.travel(datetime(2026, 3, 1, 9, 0, tzinfo=PARIS), tick=False):
        (c0,) = monthly_fee_customers(tenant)
        plan = c0.subscriptions.get().plan
        price_version_create(
            tenant=tenant,
            actor=ACTOR,
            at=timezone.now(),
            plan=plan,
            data={
                "currency": "USD",
                "components": [{"product": "platform", "charge": {"model": "flat", "amount": "12.00"}}],
            },
        )
        c1 = customer_create(
            tenant=tenant,
            actor=ACTOR,
            at=timezone.now(),
            external_id="c1",
            name="Customer 1",
            email="c1@x.test",
            country="US",
            currency="USD",
            timezone="America/New_York",
            billing_day=1,
        )
        signed_subscription(
            tenant,
            customer=c1,
            plan=plan,
            external_id="s1",
            devices=("u0",),
            signed_at=datetime(2026, 3, 1, 9, 0, tzinfo=PARIS),
            starts_on=date(2026, 3, 1),
        )
    at = datetime(2026, 6, 1, tzinfo=UTC)
    exchange_rates_set(
        tenant=tenant,
        rates=[RateInput("2026-03", "USD", "0.90"), RateInput("2026-05", "USD", "0.95")],
        actor=ACTOR,
        at=at,
    )
    months = mrr_report(tenant_id=tenant.pk, start=date(2026, 3, 1), end=date(2026, 5, 1))
    # when
    summary = mrr_in_reporting_currency(tenant=tenant, months=months)
    # then
    march, april, may = summary.months
    # March: 20.00 EUR + 12.00 USD x 0.90 = 20.00 + 10.80 = 30.80 EUR, all new; 3 devices:
    # 30.80 / 3 = 10.2666... -> 10.27
    assert (march.new, march.end, march.devices, march.arpd) == (D("30.80"), D("30.80"), 3, D("10.27"))
    # April: no USD rate: totals unknown, not 20.00 + 12.00 x 1
    assert (april.start, april.end, april.arpd, april.nrr, april.missing) == (None, None, None, None, ["USD"])
    # May: at May's rate, 12.00 x 0.95 = 11.40: start = end = 31.40; NRR 100 %
    assert (may.start, may.end, may.nrr, may.missing) == (D("31.40"), D("31.40"), D("100.00"), [])
    assert summary.missing_rates == [(date(2026, 4, 1), "USD")]
    # The per-currency figures stay as they were
    assert [(c.currency, c.end.amount) for c in months[1].currencies] == [("EUR", D("20.00")), ("USD", D("12.00"))]
