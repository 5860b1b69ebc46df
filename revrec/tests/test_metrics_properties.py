"""Properties of the MRR report over random histories: every month, per customer and in total,
end = start + new + expansion - contraction - churn + reactivation; a month starts where the
previous one ended; a customer is new once, and reactivated only after a churn. The report reads
a tenant's subscriptions, devices and prices in a few queries, whatever their number."""

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog.tests.factories import platform_plan
from customers.services import customer_create
from revrec.metrics import CustomerMrr, mrr_report
from subscriptions.models import Subscription, SubscriptionStatus
from subscriptions.tests.factories import ACTOR, signed_subscription
from tenancy.models import Tenant

pytestmark = pytest.mark.django_db
PARIS = ZoneInfo("Europe/Paris")
JANUARY = datetime(2026, 1, 1, 9, 0, tzinfo=PARIS)

# A subscription: its plan, the day it starts (after 1 January), the day each device is removed
# (None: never; days after the start), and the day it is cancelled (None: never; after the start).
SUBSCRIPTION = st.tuples(
    st.sampled_from(["m", "q", "y"]),
    st.integers(0, 200),
    st.lists(st.one_of(st.none(), st.integers(0, 300)), min_size=1, max_size=3),
    st.one_of(st.none(), st.integers(0, 300)),
)
# Customers, each with its subscriptions one after the other.
HISTORIES = st.lists(st.lists(SUBSCRIPTION, min_size=1, max_size=2), min_size=1, max_size=3)


def build(tenant: Tenant, histories: list[list[tuple[str, int, list[int | None], int | None]]]) -> None:
    with time_machine.travel(JANUARY, tick=False):
        plans = {
            "m": platform_plan(tenant, "m", "10.00"),
            "q": platform_plan(tenant, "q", "25.00", interval="quarter"),
            "y": platform_plan(tenant, "y", "100.00", interval="year"),
        }
    for i, subscriptions in enumerate(histories):
        with time_machine.travel(JANUARY, tick=False):
            customer = customer_create(
                tenant=tenant,
                actor=ACTOR,
                at=timezone.now(),
                external_id=f"c{i}",
                name=f"Customer {i}",
                email=f"c{i}@x.test",
                country="FR",
                timezone="Europe/Paris",
                billing_day=1,
            )
        for j, (plan, start, removals, cancel) in enumerate(subscriptions):
            starts_on = date(2026, 1, 1) + timedelta(days=start)
            signed_at = datetime.combine(starts_on, datetime.min.time(), tzinfo=PARIS) + timedelta(hours=9)
            with time_machine.travel(signed_at, tick=False):
                sub = signed_subscription(
                    tenant,
                    customer=customer,
                    plan=plans[plan],
                    external_id=f"c{i}-s{j}",
                    devices=[f"c{i}-s{j}-d{k}" for k in range(len(removals))],
                    signed_at=signed_at,
                    starts_on=starts_on,
                )
            for k, removal in enumerate(removals):
                if removal is not None:
                    sub.devices.filter(device_id=f"c{i}-s{j}-d{k}").update(
                        removed_at=sub.starts_at + timedelta(days=removal)
                    )
            if cancel is not None:
                Subscription.objects.filter(pk=sub.pk).update(
                    status=SubscriptionStatus.ENDED, ended_at=sub.starts_at + timedelta(days=cancel)
                )


def adds_up(row: Any) -> bool:
    return bool(row.end == row.start + row.new + row.expansion - row.contraction - row.churn + row.reactivation)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(histories=HISTORIES)
def test_the_movements_add_up_every_month(
    make_tenant: Callable[..., Tenant], histories: list[list[tuple[str, int, list[int | None], int | None]]]
) -> None:
    # given
    tenant = make_tenant()
    build(tenant, histories)
    # when: the whole of 2026 and the first months of 2027
    months = mrr_report(tenant_id=tenant.pk, start=date(2026, 1, 1), end=date(2027, 3, 31))
    # then
    previous_end: dict[Any, Any] = {}
    seen: set[Any] = set()
    churned: set[Any] = set()
    for month in months:
        for currency in month.currencies:
            assert adds_up(currency), (month.month, currency)
            rows: list[CustomerMrr] = currency.customers
            for row in rows:
                assert adds_up(row), (month.month, row)
                assert row.start.amount == previous_end.get(row.customer_id, 0), (month.month, row)
                if row.new.amount:
                    assert row.customer_id not in seen, (month.month, row)
                if row.reactivation.amount:
                    assert row.customer_id in churned, (month.month, row)
                if row.end.amount:
                    seen.add(row.customer_id)
                if row.churn.amount:
                    churned.add(row.customer_id)
        ends = {r.customer_id: r.end.amount for c in month.currencies for r in c.customers}
        previous_end = {k: v for k, v in ends.items() if v}


def test_a_few_queries_whatever_the_number_of_subscriptions(
    make_tenant: Callable[..., Tenant], django_assert_max_num_queries: Any
) -> None:
    # given: 4 customers with 2 subscriptions of 3 devices each
    tenant = make_tenant()
    build(tenant, [[("m", 0, [None, 40, 80], None), ("y", 10, [None, None, 100], 150)]] * 4)
    # when / then: tenant, subscriptions (customers and plans joined), components, devices, price
    # versions, component prices, overrides
    with django_assert_max_num_queries(7):
        months = mrr_report(tenant_id=tenant.pk, start=date(2026, 1, 1), end=date(2026, 12, 31))
    # January: each customer 3 x 10.00 + 3 x 100.00 / 12 = 30.00 + 25.00 = 55.00, all new
    (january_eur,) = months[0].currencies
    assert [str(c.new.amount) for c in january_eur.customers] == ["55.00"] * 4
