"""A closed month never changes: whatever happens after March is closed (device C's activation
back-dated into March, an invoice dated in March, March run again, April run), no row of March
changes, and what is due lands in the first open month."""

from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
import time_machine
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from revrec.contracts import contract_from_subscription
from revrec.errors import PeriodClosed
from revrec.models import Contract, JournalEntry, JournalLine, RecognitionEntry, RevenuePeriod
from revrec.periods import period_close, posting_period, recognition_run_create, recognition_run_execute
from revrec.tests.conftest import PARIS
from subscriptions.services import device_event_apply
from tenancy.actors import Actor
from tenancy.models import Tenant

pytestmark = pytest.mark.django_db
MARCH = date(2026, 3, 1)
APRIL = date(2026, 4, 1)
CLOSED_AT = datetime(2026, 4, 2, 9, 0, tzinfo=PARIS)
ACTOR = Actor.system("tests")

EVENTS = st.lists(
    st.one_of(
        st.tuples(st.just("activate_c"), st.integers(1, 31)),  # C activated on that day of March, told late
        st.tuples(st.just("invoice"), st.integers(1, 31)),  # an invoice dated that day of March
        st.tuples(st.just("run"), st.sampled_from([MARCH, APRIL])),
    ),
    min_size=1,
    max_size=6,
)


def march_rows(tenant: Tenant) -> tuple[Any, ...]:
    return (
        sorted(
            RecognitionEntry.objects.filter(tenant=tenant, period=MARCH).values_list("id", "obligation_id", "amount")
        ),
        sorted(JournalEntry.objects.filter(tenant=tenant, period=MARCH).values_list("id", "date", "source_id")),
        sorted(
            JournalLine.objects.filter(tenant=tenant, entry__period=MARCH).values_list(
                "id", "account", "debit", "credit"
            )
        ),
        list(RevenuePeriod.objects.filter(tenant=tenant, month=MARCH).values_list("closed_at", flat=True)),
    )


def invoice_posted(tenant: Tenant, day: date, n: int) -> JournalEntry:
    """An invoice's journal as any posting must be made: in the period ``posting_period`` gives."""
    entry = JournalEntry.objects.create(
        tenant=tenant,
        period=posting_period(tenant_id=tenant.pk, day=day),
        date=day,
        source_type="invoice",
        source_id="INV-%d" % n,
        currency="EUR",
        created_at=CLOSED_AT,
    )
    JournalLine.objects.create(tenant=tenant, entry=entry, account="receivable", currency="EUR", debit=Decimal("30"))
    JournalLine.objects.create(
        tenant=tenant, entry=entry, account="contract_balance", currency="EUR", credit=Decimal("30")
    )
    return entry


def run(tenant: Tenant, month: date) -> None:
    created = recognition_run_create(tenant=tenant, month=month, actor=ACTOR, at=CLOSED_AT)
    assert recognition_run_execute(run_id=created.pk, at=CLOSED_AT).status == "succeeded"


@pytest.fixture
def closed_march(tenant: Tenant, fleet_contract: Contract) -> Contract:
    run(tenant, MARCH)
    period_close(tenant=tenant, month=MARCH, actor=ACTOR, at=CLOSED_AT)
    return fleet_contract


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=EVENTS)
def test_after_closing_march_nothing_changes_it(tenant: Tenant, closed_march: Contract, events: list[Any]) -> None:
    before = march_rows(tenant)
    savepoint = transaction.savepoint()
    try:
        activated: date | None = None
        for n, (kind, value) in enumerate(events):
            if kind == "activate_c" and activated is None:
                activated = MARCH + timedelta(days=value - 1)
                at = datetime(activated.year, activated.month, activated.day, 10, 0, tzinfo=PARIS)
                with time_machine.travel(CLOSED_AT, tick=False):
                    device_event_apply(
                        tenant=tenant, device_id="C", event_type="device.activated", occurred_at=at, actor=ACTOR
                    )
                contract_from_subscription(subscription=closed_march.subscription, at=CLOSED_AT)
            elif kind == "invoice":
                entry = invoice_posted(tenant, MARCH + timedelta(days=value - 1), n)
                assert entry.period == APRIL
            elif kind == "run" and value == MARCH:
                with pytest.raises(PeriodClosed, match="2026-03 is closed"):
                    run(tenant, MARCH)
            elif kind == "run":
                run(tenant, APRIL)
        # then: March is as it was closed
        assert march_rows(tenant) == before
        # and C's activation in March, once April has run, is April's revenue: hardware 245.46 and
        # its service from the activation day to 1 May (294.56 x days / 365)
        if activated is not None and ("run", APRIL) in events[[e[0] for e in events].index("activate_c") :]:
            c = RecognitionEntry.objects.filter(tenant=tenant, obligation__device_id="C")
            assert {e.period for e in c} == {APRIL}
            days = (date(2026, 5, 1) - activated).days
            service = (Decimal("294.56") * days / 365).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
            assert sorted(e.amount.amount for e in c) == sorted([Decimal("245.46"), service])
    finally:
        transaction.savepoint_rollback(savepoint)


def test_activating_c_on_25_march_after_the_close_is_april_revenue(tenant: Tenant, closed_march: Contract) -> None:
    # given: C's activation on 25 March, reported after March was closed
    at = datetime(2026, 3, 25, 10, 0, tzinfo=PARIS)
    with time_machine.travel(CLOSED_AT, tick=False):
        device_event_apply(tenant=tenant, device_id="C", event_type="device.activated", occurred_at=at, actor=ACTOR)
    contract_from_subscription(subscription=closed_march.subscription, at=CLOSED_AT)
    # when
    run(tenant, APRIL)
    # then: hardware C 245.46 and its service 25 March - 30 April = 37 days: 294.56 x 37/365 = 29.8595... -> 29.86,
    # all in April; A and B's April service too (24.21 each, see test_runs)
    april = {
        (e.obligation.kind, e.obligation.device_id): e.amount.amount
        for e in RecognitionEntry.objects.filter(tenant=tenant, period=APRIL).select_related("obligation")
    }
    assert april == {
        ("hardware", "C"): Decimal("245.46"),
        ("service", "C"): Decimal("29.86"),
        ("service", "A"): Decimal("24.21"),
        ("service", "B"): Decimal("24.21"),
    }
