"""Properties of modifications over random histories of the Smart Fleet subscription: devices
added (activated or not), removed, a change of plan, a cancellation, with recognition runs in
between. After each sync the obligations' allocations add up to the contract's transaction price,
none is negative or below what was recognized of it, and in the end every dated obligation has
recognized exactly its allocation."""

from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog.tests.factories import platform_plan
from revrec.contracts import contracts_sync
from revrec.models import Contract, PerformanceObligation
from revrec.runs import recognition_run
from revrec.schedules import next_month
from revrec.tests.conftest import END_OF_MARCH, PARIS, ssp_set
from subscriptions.changes import subscription_change
from subscriptions.services import device_event_apply
from subscriptions.tests.factories import ACTOR, smart_fleet, smart_fleet_activate
from tenancy.models import Tenant

pytestmark = pytest.mark.django_db
APRIL = datetime(2026, 4, 1, 10, 0, tzinfo=PARIS)

# An operation: a day after 1 April 2026 and what happens that day.
OPERATION = st.tuples(
    st.integers(0, 330),
    st.one_of(
        st.tuples(st.just("add"), st.integers(1, 2), st.booleans()),  # how many, activated that day
        st.tuples(st.just("remove"), st.integers(0, 4), st.just(False)),  # which live device
        st.tuples(st.just("plan"), st.just(0), st.just(False)),
        st.tuples(st.just("cancel"), st.just(0), st.just(False)),
    ),
)


def check(contract: Contract) -> None:
    contract.refresh_from_db()
    rows = PerformanceObligation.objects.filter(contract=contract).annotate(recognized=Sum("entries__amount"))
    assert sum((o.allocated.amount for o in rows), Decimal(0)) == contract.transaction_price.amount
    for o in rows:
        assert o.allocated.amount >= 0, o
        assert (o.recognized or 0) <= o.allocated.amount, o


def run_through(tenant: Tenant, month: date, done: set[date]) -> None:
    """The run of ``month`` (named by any of its days), on the next 1st: it catches up the months
    before it that were not run."""
    month = month.replace(day=1)
    if month >= date(2026, 3, 1) and month not in done:
        end = next_month(month)
        recognition_run(tenant_id=tenant.pk, month=month, at=datetime(end.year, end.month, 1, 6, tzinfo=PARIS))
        done.add(month)


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(activated=st.sets(st.sampled_from("ABC")), operations=st.lists(OPERATION, max_size=4))
def test_allocations_add_up_to_the_price_after_any_modification(
    make_tenant: Callable[..., Tenant], activated: set[str], operations: list[Any]
) -> None:
    # given: Smart Fleet (SSP 300.00 and 30.00 a device-month), some of A, B, C activated, its
    # contract made on 31 March; a dearer plan on another service product (SSP 36.00)
    tenant = make_tenant()
    subscription = smart_fleet(tenant)
    ssp_set(tenant, "eld-200", "300.00")
    ssp_set(tenant, "fleet-platform", "30.00")
    with time_machine.travel(datetime(2026, 3, 1, 9, tzinfo=PARIS), tick=False):
        platform_plan(tenant, "pro", "40.00", commitment_months=12, starts_on="activation")
    ssp_set(tenant, "platform", "36.00")
    smart_fleet_activate(tenant, sorted(activated))
    contracts_sync(tenant_id=tenant.pk, at=END_OF_MARCH)
    contract = Contract.objects.get(subscription=subscription)
    check(contract)
    done: set[date] = set()
    added = 0
    # when: the operations happen in the order of their days, the months before each one run
    for offset, (action, n, activate) in sorted(operations, key=lambda op: op[0]):
        at = APRIL + timedelta(days=offset)
        run_through(tenant, date(at.year, at.month, 1) - timedelta(days=1), done)
        subscription.refresh_from_db()
        if subscription.status in ("cancelled", "ended"):
            break
        live = list(subscription.devices.filter(removed_at__isnull=True).order_by("device_id"))
        with time_machine.travel(at, tick=False):
            if action == "add":
                ids = [f"N{added + i}" for i in range(n)]
                added += n
                params: dict[str, Any] = {"devices": [{"device_id": i} for i in ids]}
            elif action == "remove":
                if len(live) < 2:
                    continue
                params = {"device_ids": [live[n % len(live)].device_id]}
                action = "remove_devices"
            elif action == "plan":
                if subscription.plan.code == "pro":
                    continue
                params = {"plan": "pro"}
                action = "change_plan"
            else:
                params = {"at_period_end": False}
            subscription_change(
                subscription=subscription,
                action="add_devices" if action == "add" else action,
                params=params,
                actor=ACTOR,
                at=at,
            )
            if action == "add" and activate:
                for device_id in ids:
                    device_event_apply(
                        tenant=tenant, device_id=device_id, event_type="device.activated", occurred_at=at, actor=ACTOR
                    )
        report = contracts_sync(tenant_id=tenant.pk, at=at + timedelta(hours=1))
        # then: after each modification
        assert report.failed == {}, report
        check(contract)
    # and once every term is over, each dated obligation has recognized exactly its allocation
    run_through(tenant, date(2028, 12, 1), done)
    check(contract)
    for o in PerformanceObligation.objects.filter(contract=contract).annotate(recognized=Sum("entries__amount")):
        if o.starts_on is not None or o.recognized_on is not None:
            assert (o.recognized or 0) == o.allocated.amount, o
