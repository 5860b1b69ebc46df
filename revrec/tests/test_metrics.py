"""MRR and its movements (analytics.md): the Smart Fleet worked example, a churn then a
reactivation, and the movements adding up every month."""

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.utils import timezone
from djmoney.money import Money

from catalog.services.plans import price_override_create, price_version_create
from catalog.tests.factories import platform_plan
from customers.services import customer_create
from revrec.metrics import CurrencyMrr, CustomerMrr, MonthMrr, mrr_report
from subscriptions.changes import subscription_change
from subscriptions.services import subscription_transition
from subscriptions.tests.factories import (
    ACTOR,
    monthly_fee_customers,
    signed_subscription,
    smart_fleet,
    smart_fleet_activate,
)
from tenancy.models import Tenant

PARIS = ZoneInfo("Europe/Paris")
MOVES = ("start", "new", "expansion", "contraction", "churn", "reactivation", "end")


def eur(amount: str) -> Money:
    return Money(Decimal(amount), "EUR")


def totals(month: MonthMrr) -> dict[str, str]:
    (eur_total,) = month.currencies
    return {name: str(getattr(eur_total, name).amount) for name in MOVES}


def only(month: MonthMrr) -> CurrencyMrr:
    (currency,) = month.currencies
    return currency


def assert_adds_up(months: list[MonthMrr]) -> None:
    for month in months:
        for currency in month.currencies:
            rows: list[CurrencyMrr | CustomerMrr] = [currency, *currency.customers]
            for row in rows:
                assert row.end == (
                    row.start + row.new + row.expansion - row.contraction - row.churn + row.reactivation
                ), (month.month, row)


def test_the_smart_fleet_example(tenant: Tenant) -> None:
    # given: Smart Fleet, 25.00 per device and month from each device's activation; A (15 March)
    # and B (20 March) active, C activated on 10 April, B removed on 15 May
    sub = smart_fleet(tenant)
    smart_fleet_activate(tenant, ("A", "B", "C"))
    removed_at = datetime(2026, 5, 15, 10, 0, tzinfo=PARIS)
    with time_machine.travel(removed_at, tick=False):
        subscription_change(
            subscription=sub, action="remove_devices", params={"device_ids": ["B"]}, actor=ACTOR, at=removed_at
        )
    # when
    months = mrr_report(tenant_id=tenant.pk, start=date(2026, 3, 1), end=date(2026, 5, 31))
    # then
    assert [m.month for m in months] == [date(2026, 3, 1), date(2026, 4, 1), date(2026, 5, 1)]
    march, april, may = months
    # 31 March: A and B, 2 x 25.00 = 50.00, the customer's first MRR
    assert totals(march) == {**dict.fromkeys(MOVES, "0.00"), "new": "50.00", "end": "50.00"}
    # 30 April: A, B and C, 3 x 25.00 = 75.00: +25.00
    assert totals(april) == {**dict.fromkeys(MOVES, "0.00"), "start": "50.00", "expansion": "25.00", "end": "75.00"}
    # 31 May: A and C, 2 x 25.00 = 50.00: -25.00
    assert totals(may) == {**dict.fromkeys(MOVES, "0.00"), "start": "75.00", "contraction": "25.00", "end": "50.00"}
    # ARPD at 30 April: 75.00 / 3 devices = 25.00
    assert (only(april).devices, only(april).arpd) == (3, eur("25.00"))
    assert [(c.external_id, c.end) for c in only(may).customers] == [("dupont", eur("50.00"))]
    assert_adds_up(months)


def test_hardware_and_usage_are_not_mrr_and_a_device_counts_from_its_activation(tenant: Tenant) -> None:
    # given: Smart Fleet signed on 10 March with three devices (hardware billed at signature),
    # none activated
    smart_fleet(tenant)
    # when
    (march,) = mrr_report(tenant_id=tenant.pk, start=date(2026, 3, 1), end=date(2026, 3, 1))
    # then: the subscription pays no service fee yet, so the customer has no MRR and no row
    assert march.currencies == []


def test_a_churn_then_a_reactivation(tenant: Tenant) -> None:
    # given: customer c0 on plan p (10.00 per device and month from the start), 2 devices from
    # 1 March; cancelled at once on 20 April; back on 3 June with a yearly plan, 120.00 per device
    # and year, one device
    with time_machine.travel(datetime(2026, 3, 1, 9, 0, tzinfo=PARIS), tick=False):
        (customer,) = monthly_fee_customers(tenant)
        yearly = platform_plan(tenant, "y", "120.00", interval="year")
    sub = customer.subscriptions.get()
    cancelled_at = datetime(2026, 4, 20, 10, 0, tzinfo=PARIS)
    with time_machine.travel(cancelled_at, tick=False):
        subscription_change(
            subscription=sub, action="cancel", params={"at_period_end": False}, actor=ACTOR, at=cancelled_at
        )
    signed_at = datetime(2026, 6, 3, 9, 0, tzinfo=PARIS)
    with time_machine.travel(signed_at, tick=False):
        signed_subscription(
            tenant,
            customer=customer,
            plan=yearly,
            external_id="s0-back",
            devices=("e0",),
            signed_at=signed_at,
            starts_on=date(2026, 6, 3),
        )
    # when
    months = mrr_report(tenant_id=tenant.pk, start=date(2026, 3, 1), end=date(2026, 7, 31))
    # then
    march, april, may, june, july = months
    zero = dict.fromkeys(MOVES, "0.00")
    assert totals(march) == {**zero, "new": "20.00", "end": "20.00"}  # 2 x 10.00
    assert totals(april) == {**zero, "start": "20.00", "churn": "20.00"}  # cancelled: nothing from its end
    assert may.currencies == []  # no MRR at either end of May
    assert totals(june) == {**zero, "reactivation": "10.00", "end": "10.00"}  # 120.00 / 12
    assert totals(july) == {**zero, "start": "10.00", "end": "10.00"}
    assert_adds_up(months)


def test_a_report_starting_after_the_churn_still_sees_the_reactivation(tenant: Tenant) -> None:
    # given: the same history, read from June only: March's MRR is before the report, yet June is a
    # reactivation, not a new customer
    with time_machine.travel(datetime(2026, 3, 1, 9, 0, tzinfo=PARIS), tick=False):
        (customer,) = monthly_fee_customers(tenant)
    sub = customer.subscriptions.get()
    cancelled_at = datetime(2026, 4, 20, 10, 0, tzinfo=PARIS)
    with time_machine.travel(cancelled_at, tick=False):
        subscription_change(
            subscription=sub, action="cancel", params={"at_period_end": False}, actor=ACTOR, at=cancelled_at
        )
    signed_at = datetime(2026, 6, 3, 9, 0, tzinfo=PARIS)
    with time_machine.travel(signed_at, tick=False):
        signed_subscription(
            tenant,
            customer=customer,
            plan=sub.plan,
            external_id="s0-back",
            devices=("e0",),
            signed_at=signed_at,
            starts_on=date(2026, 6, 3),
        )
    # when
    (june,) = mrr_report(tenant_id=tenant.pk, start=date(2026, 6, 1), end=date(2026, 6, 30))
    # then: 1 device x 10.00
    assert totals(june) == {**dict.fromkeys(MOVES, "0.00"), "reactivation": "10.00", "end": "10.00"}


@pytest.mark.parametrize(("interval", "amount", "mrr"), [("quarter", "30.00", "10.00"), ("year", "100.00", "8.33")])
def test_longer_intervals_are_normalised_to_a_month(tenant: Tenant, interval: str, amount: str, mrr: str) -> None:
    # given: one device at 30.00 a quarter (30.00 / 3 = 10.00), or 100.00 a year (100.00 / 12 =
    # 8.333... rounded once to 8.33)
    with time_machine.travel(datetime(2026, 1, 1, 9, 0, tzinfo=PARIS), tick=False):
        (customer,) = monthly_fee_customers(tenant)
        plan = platform_plan(tenant, "long", amount, interval=interval)
        customer.subscriptions.all().delete()
        signed_subscription(tenant, customer=customer, plan=plan, external_id="long", devices=("x",))
    # when
    (january,) = mrr_report(tenant_id=tenant.pk, start=date(2026, 1, 1), end=date(2026, 1, 1))
    # then
    assert totals(january) == {**dict.fromkeys(MOVES, "0.00"), "new": mrr, "end": mrr}


def test_overrides_new_prices_suspension_and_other_currencies(tenant: Tenant) -> None:
    # given, on plan p (10.00 per device and month from the start, 12.00 in USD):
    # - c0 (EUR, 2 devices from 1 March) negotiated 8.00 per device from 1 April, and is
    #   suspended on 10 May;
    # - c1 (USD, 1 device from 1 March);
    # - from 1 June the plan costs 15.00 in USD.
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
        price_override_create(
            tenant=tenant,
            actor=ACTOR,
            at=timezone.now(),
            customer=c0,
            plan=plan,
            data={
                "product": "platform",
                "charge": {"model": "flat", "amount": "8.00"},
                "effective_from": "2026-04-01T00:00:00+02:00",
            },
        )
        price_version_create(
            tenant=tenant,
            actor=ACTOR,
            at=timezone.now(),
            plan=plan,
            data={
                "currency": "USD",
                "effective_from": "2026-06-01T00:00:00+02:00",
                "components": [{"product": "platform", "charge": {"model": "flat", "amount": "15.00"}}],
            },
        )
    suspended_at = datetime(2026, 5, 10, 9, 0, tzinfo=PARIS)
    with time_machine.travel(suspended_at, tick=False):
        subscription_transition(
            subscription=c0.subscriptions.get(), to_status="suspended", actor=ACTOR, at=suspended_at
        )
    # when
    march, april, may, june = mrr_report(tenant_id=tenant.pk, start=date(2026, 3, 1), end=date(2026, 6, 30))
    # then: EUR first (the tenant's), USD on its own, never converted
    assert [c.currency for c in march.currencies] == ["EUR", "USD"]
    eur_march, usd_march = march.currencies
    assert (eur_march.new, eur_march.end) == (eur("20.00"), eur("20.00"))  # 2 x 10.00
    assert (usd_march.new, usd_march.end) == (Money("12.00", "USD"), Money("12.00", "USD"))  # 1 x 12.00
    # April: c0's override, 2 x 8.00 = 16.00
    assert (april.currencies[0].contraction, april.currencies[0].end) == (eur("4.00"), eur("16.00"))
    # May: suspended, the MRR stays 16.00
    assert (may.currencies[0].start, may.currencies[0].end) == (eur("16.00"), eur("16.00"))
    # June: the new USD price, 1 x 15.00: +3.00; c0 unchanged
    assert [(c.currency, str(c.end.amount)) for c in june.currencies] == [("EUR", "16.00"), ("USD", "15.00")]
    assert june.currencies[1].expansion == Money("3.00", "USD")
