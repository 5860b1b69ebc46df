"""The dunning queue: each open invoice's next steps and the day they happen, and the subscriptions
suspended now. Days are the customer's (Dupont: Europe/Paris); the policy is the default one:
reminders 3 days before and 7 after the due date, retries 3, 5 and 7 days after, suspension at 21
days, write-off at 60."""

from collections import defaultdict
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

import pytest
import time_machine
from djmoney.money import Money

from customers.models import Collection, Customer
from payments.dunning import dunning_queue, dunning_run, suspended_subscriptions
from payments.models import DunningAction
from payments.models import DunningActionKind as K
from payments.tests.conftest import open_invoice
from subscriptions.models import Subscription
from tenancy.models import Tenant

pytestmark = pytest.mark.django_db


def morning(day: date) -> datetime:
    """08:00 in Paris in summer (UTC+2): the pass of that day."""
    return datetime(day.year, day.month, day.day, 6, 0, tzinfo=UTC)


def run(tenant: Tenant, day: date) -> dict[str, int]:
    with time_machine.travel(morning(day), tick=False):
        return dunning_run(tenant_id=tenant.pk, at=morning(day)).counts()


def queue(tenant: Tenant, day: date) -> list[tuple[str, tuple[str, ...], date | None]]:
    return [(e.number, e.kinds, e.on) for e in dunning_queue(tenant_id=tenant.pk, as_of=morning(day))]


def charge_automatically(subscription: Subscription) -> None:
    Customer.objects.filter(pk=subscription.customer_id).update(collection=Collection.CHARGE_AUTOMATICALLY)


def test_before_the_due_date_the_next_step_is_the_first_reminder(tenant: Tenant, fleet: Subscription) -> None:
    open_invoice(fleet, number="INV-1", issue_date=date(2026, 5, 1), due_date=date(2026, 5, 31), total="308.57")
    # Seen on 20 May: reminder day -3 falls on 31 May - 3 = 28 May.
    [entry] = dunning_queue(tenant_id=tenant.pk, as_of=morning(date(2026, 5, 20)))
    assert (entry.kinds, entry.on, entry.days_past_due) == ((K.REMINDER,), date(2026, 5, 28), -11)
    assert [(s.kind, s.day) for s in entry.steps] == [(K.REMINDER, -3)]
    assert entry.amount_due == Money("308.57", "EUR")
    assert (entry.customer_name, entry.customer_external_id) == ("Transports Dupont", "dupont")


def test_after_the_first_reminder_the_next_step_is_the_overdue_event(
    tenant: Tenant, fleet: Subscription, charged: list[Any]
) -> None:
    open_invoice(fleet, number="INV-1", issue_date=date(2026, 5, 1), due_date=date(2026, 5, 31), total="308.57")
    assert run(tenant, date(2026, 5, 28))["reminders"] == 1
    # Seen on 29 May: day 1 past due (overdue) is 1 June; a send_invoice customer is never retried.
    assert queue(tenant, date(2026, 5, 29)) == [("INV-1", (K.OVERDUE,), date(2026, 6, 1))]


def test_a_customer_charged_automatically_is_retried_on_day_3(
    tenant: Tenant, fleet: Subscription, charged: list[Any]
) -> None:
    charge_automatically(fleet)
    open_invoice(fleet, number="INV-1", issue_date=date(2026, 6, 1), due_date=date(2026, 6, 1), total="9.00")
    # The pass of 2 June (1 day past due) sends the reminder of day -3 and announces it overdue.
    assert run(tenant, date(2026, 6, 2))["overdue"] == 1
    # Next: the retry of day 3, on 1 June + 3 = 4 June.
    assert queue(tenant, date(2026, 6, 2)) == [("INV-1", (K.RETRY,), date(2026, 6, 4))]
    # On day 7 the reminder and the retry fall on one day (8 June): both are the next steps.
    run(tenant, date(2026, 6, 4))
    run(tenant, date(2026, 6, 6))
    assert queue(tenant, date(2026, 6, 6)) == [("INV-1", (K.REMINDER, K.RETRY), date(2026, 6, 8))]


def test_after_the_suspension_the_next_step_is_the_write_off(
    tenant: Tenant, fleet: Subscription, charged: list[Any]
) -> None:
    open_invoice(fleet, number="INV-1", issue_date=date(2026, 5, 1), due_date=date(2026, 5, 31), total="308.57")
    # 21 June is 21 days past due: reminders, overdue and the suspension, all in one pass.
    assert run(tenant, date(2026, 6, 21))["suspensions"] == 1
    # Seen on 30 June (30 days past due): write-off on day 60, 31 May + 60 days = 30 July.
    [entry] = dunning_queue(tenant_id=tenant.pk, as_of=morning(date(2026, 6, 30)))
    assert (entry.kinds, entry.on, entry.days_past_due) == ((K.UNCOLLECTIBLE,), date(2026, 7, 30), 30)
    [suspended] = suspended_subscriptions(tenant_id=tenant.pk)
    assert (suspended.external_id, suspended.customer_external_id) == ("dupont-fleet", "dupont")
    assert suspended.since == morning(date(2026, 6, 21))


def test_steps_missed_are_due_today_and_the_queue_is_ordered_by_day(tenant: Tenant, fleet: Subscription) -> None:
    # Never dunned, 40 days past due on 10 July: every step up to the suspension is due today.
    open_invoice(fleet, number="INV-LATE", issue_date=date(2026, 5, 1), due_date=date(2026, 5, 31), total="1.00")
    open_invoice(fleet, number="INV-SOON", issue_date=date(2026, 6, 15), due_date=date(2026, 7, 15), total="2.00")
    open_invoice(fleet, number="INV-NOW", issue_date=date(2026, 6, 3), due_date=date(2026, 7, 3), total="3.00")
    assert queue(tenant, date(2026, 7, 10)) == [
        ("INV-LATE", (K.REMINDER, K.REMINDER, K.OVERDUE, K.SUSPENSION), date(2026, 7, 10)),
        # 7 days past due: its reminder of day 7 is today.
        ("INV-NOW", (K.REMINDER, K.REMINDER, K.OVERDUE), date(2026, 7, 10)),
        # Due 15 July: reminder day -3 on 12 July.
        ("INV-SOON", (K.REMINDER,), date(2026, 7, 12)),
    ]
    assert len(dunning_queue(tenant_id=tenant.pk, as_of=morning(date(2026, 7, 10)), limit=1)) == 1


def test_nothing_planned_when_the_policy_has_no_more_steps(tenant: Tenant, fleet: Subscription) -> None:
    from payments.policies import customer_policy_set
    from tenancy.actors import Actor

    customer_policy_set(
        customer=fleet.customer,
        values={"retry_days": [], "reminder_days": [], "suspend_after_days": None, "uncollectible_after_days": None},
        actor=Actor.system("tests"),
        at=datetime(2026, 4, 1, tzinfo=UTC),
    )
    open_invoice(fleet, number="INV-1", issue_date=date(2026, 5, 1), due_date=date(2026, 5, 31), total="5.00")
    assert queue(tenant, date(2026, 5, 20)) == [("INV-1", (K.OVERDUE,), date(2026, 6, 1))]
    run(tenant, date(2026, 6, 1))
    assert queue(tenant, date(2026, 6, 2)) == [("INV-1", (), None)]


def test_the_queue_takes_a_fixed_number_of_queries(
    tenant: Tenant, fleet: Subscription, django_assert_num_queries: Any
) -> None:
    for month in range(1, 7):
        open_invoice(
            fleet,
            number=f"INV-{month}",
            issue_date=date(2026, month, 1),
            due_date=date(2026, month, 28),
            total="10.00",
        )
    # Policies, open invoices, steps taken, customer names, the entries' amounts: 5, for 6 invoices.
    with django_assert_num_queries(5):
        entries = dunning_queue(tenant_id=tenant.pk, as_of=morning(date(2026, 6, 30)))
    assert len(entries) == 6


def _taken(tenant: Tenant, after: int) -> dict[UUID, set[tuple[str, int]]]:
    taken: dict[UUID, set[tuple[str, int]]] = defaultdict(set)
    for invoice_id, kind, day in DunningAction.objects.filter(
        tenant=tenant, pk__gt=after, invoice__isnull=False
    ).values_list("invoice_id", "kind", "day"):
        taken[invoice_id].add((kind, day))
    return taken


def test_the_pass_takes_exactly_the_steps_the_queue_announces(
    tenant: Tenant, fleet: Subscription, charged: list[Any]
) -> None:
    """From 10 June, over and over: the pass of the queue's first day takes, for every invoice, the
    steps its entry announced for that day, and nothing for the invoices whose day is later; until
    every invoice is written off (a hundred days at most)."""
    charge_automatically(fleet)
    for number, due in [
        ("INV-A", date(2026, 4, 1)),  # 70 days past due, never dunned
        ("INV-B", date(2026, 5, 1)),
        ("INV-C", date(2026, 6, 1)),
        ("INV-D", date(2026, 6, 12)),
        ("INV-E", date(2026, 7, 1)),
    ]:
        open_invoice(fleet, number=number, issue_date=due, due_date=due, total="10.00")
    day, passes = date(2026, 6, 10), 0
    while entries := [e for e in dunning_queue(tenant_id=tenant.pk, as_of=morning(day)) if e.on is not None]:
        day = min(e.on for e in entries if e.on is not None)
        last = DunningAction.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        run(tenant, day)
        taken = _taken(tenant, last)
        for entry in entries:
            expected = {(s.kind, s.day) for s in entry.steps} if entry.on == day else set()
            assert taken.get(entry.invoice_id, set()) == expected, (entry.number, day)
        passes += 1
        assert passes < 40
    # Every invoice went through to its write-off, 60 days after its due date (INV-E's: 30 August).
    assert day == date(2026, 8, 30)
    assert DunningAction.objects.filter(tenant=tenant, kind=K.UNCOLLECTIBLE).count() == 5
