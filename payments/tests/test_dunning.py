"""The dunning pass (payments.md, "Collection and dunning" and the worked example "Smart Fleet pays")."""

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.core import mail
from djmoney.money import Money

from customers.models import Collection, Customer
from invoicing.composition import billing_context_load
from invoicing.models import Invoice, InvoicePaymentStatus, InvoicingSettings
from payments.dunning import customers_reactivate_if_clear, dunning_run
from payments.models import DunningAction, DunningActionKind, DunningPolicy
from payments.policies import DEFAULT_POLICY, tenant_policy_set
from payments.tests.conftest import PDF, open_invoice
from subscriptions.models import Subscription, SubscriptionEvent, SubscriptionStatus
from subscriptions.services import subscriptions_reactivate, subscriptions_suspend
from tenancy.actors import Actor
from tenancy.models import AuditLogEntry, Tenant
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db
ACTOR = Actor.system("tests")
# 08:00 in Paris (UTC+2 in summer): the pass of that morning.
MORNING = 6


def morning(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, MORNING, 0, tzinfo=UTC)


def run(tenant: Tenant, at: datetime) -> dict[str, int]:
    with time_machine.travel(at, tick=False):
        return dunning_run(tenant_id=tenant.pk, at=at).counts()


def events(tenant: Tenant, type: str) -> list[dict[str, Any]]:
    rows = WebhookEvent.objects.filter(tenant=tenant, type=type).order_by("created_at")
    return [json.loads(e.body)["data"] for e in rows]


def nothing(**counts: int) -> dict[str, int]:
    return {**dict.fromkeys(DEFAULT_POLICY_KINDS, 0), **counts}


DEFAULT_POLICY_KINDS = ("reminders", "retries", "overdue", "suspensions", "reactivations", "write_offs")


@pytest.fixture
def dupont_policy(tenant: Tenant) -> None:
    """payments.md's worked example: reminders 3 days before and 7 after, suspension at 21 days."""
    tenant_policy_set(
        tenant=tenant,
        values={
            "retry_days": [3, 5, 7],
            "reminder_days": [-3, 7],
            "suspend_after_days": 21,
            "uncollectible_after_days": 60,
        },
        actor=ACTOR,
        at=datetime(2026, 4, 1, tzinfo=UTC),
    )


def test_smart_fleet_pays_late_reminded_suspended_and_reactivated(
    tenant: Tenant, fleet: Subscription, dupont_policy: None, charged: list[Any]
) -> None:
    # Invoice of 2026-05-01, 308.57, due 30 days later: 2026-05-31.
    invoice = open_invoice(
        fleet, number="INV-2026-000002", issue_date=date(2026, 5, 1), due_date=date(2026, 5, 31), total="308.57"
    )
    # 2026-05-27 is 4 days before the due date: the first reminder is on day -3.
    assert run(tenant, morning(date(2026, 5, 27))) == nothing()
    assert mail.outbox == []

    assert run(tenant, morning(date(2026, 5, 28))) == nothing(reminders=1)
    [reminder] = mail.outbox
    assert reminder.to == ["compta@dupont.test"]
    assert "INV-2026-000002" in reminder.subject
    assert "308,57" in reminder.subject
    assert reminder.attachments == [("INV-2026-000002.pdf", PDF, "application/pdf")]
    # The same day again: every step is taken already.
    assert run(tenant, morning(date(2026, 5, 28)).replace(hour=20)) == nothing()
    assert len(mail.outbox) == 1

    # A transfer of 100.00 on 2026-06-02 (the ledger's work): 308.57 - 100.00 = 208.57 due.
    Invoice.objects.filter(pk=invoice.pk).update(
        amount_due=Money("208.57", "EUR"), payment_status=InvoicePaymentStatus.PARTIALLY_PAID
    )
    # 2026-06-01 is the first day past due: invoice.overdue, once.
    assert run(tenant, morning(date(2026, 6, 1))) == nothing(overdue=1)
    [overdue] = events(tenant, "invoice.overdue")
    assert (overdue["number"], overdue["amount_due"], overdue["due_date"]) == (
        "INV-2026-000002",
        "208.57",
        "2026-05-31",
    )
    assert overdue["subscriptions"] == ["dupont-fleet"]

    assert run(tenant, morning(date(2026, 6, 7))) == nothing(reminders=1)
    assert "208,57" in mail.outbox[1].body
    assert "7 jours" in mail.outbox[1].body

    # Day 20: not yet suspended; day 21: suspended, with devices A, B and C.
    assert run(tenant, morning(date(2026, 6, 20))) == nothing()
    assert run(tenant, morning(date(2026, 6, 21))) == nothing(suspensions=1)
    fleet.refresh_from_db()
    assert fleet.status == SubscriptionStatus.SUSPENDED
    [suspended] = events(tenant, "subscription.suspended")
    assert suspended["external_id"] == "dupont-fleet"
    assert suspended["devices"] == ["A", "B", "C"]
    assert (suspended["status"], suspended["reason"], suspended["invoices"]) == (
        "suspended",
        "non_payment",
        ["INV-2026-000002"],
    )
    entry = SubscriptionEvent.objects.filter(subscription=fleet, to_status="suspended").get()
    assert (entry.from_status, entry.data["invoices"]) == ("active", ["INV-2026-000002"])
    assert run(tenant, morning(date(2026, 6, 21)).replace(hour=21)) == nothing()
    assert charged == []  # Dupont is sent its invoices: never charged

    # 2026-06-23: the card payment settles the invoice; the ledger reactivates at once.
    Invoice.objects.filter(pk=invoice.pk).update(amount_due=Money(0, "EUR"), payment_status=InvoicePaymentStatus.PAID)
    at = morning(date(2026, 6, 23))
    customers_reactivate_if_clear(tenant_id=tenant.pk, customer_ids=[fleet.customer_id], at=at)
    fleet.refresh_from_db()
    assert fleet.status == SubscriptionStatus.ACTIVE
    [reactivated] = events(tenant, "subscription.reactivated")
    assert (reactivated["devices"], reactivated["status"]) == (["A", "B", "C"], "active")
    assert run(tenant, morning(date(2026, 6, 24))) == nothing()
    assert len(mail.outbox) == 2


def test_reminder_in_french_with_pay_link_and_bank_details(tenant: Tenant, fleet: Subscription) -> None:
    tenant_policy_set(
        tenant=tenant,
        values=DEFAULT_POLICY.as_dict(),
        actor=ACTOR,
        at=datetime(2026, 4, 1, tzinfo=UTC),
        pay_url="https://pay.acme.test/{invoice}",
    )
    open_invoice(
        fleet, number="INV-2026-000002", issue_date=date(2026, 5, 1), due_date=date(2026, 5, 31), total="308.57"
    )
    run(tenant, morning(date(2026, 5, 28)))
    [reminder] = mail.outbox
    # French typography: (narrow) no-break spaces before the colon and the euro sign.
    plain = reminder.subject.replace("\u202f", " ").replace("\xa0", " ")
    assert plain == "Rappel : facture INV-2026-000002, 308,57 € à régler bientôt"
    assert "Bonjour Transports Dupont," in reminder.body
    assert "est à régler le 31 mai 2026" in reminder.body
    assert "https://pay.acme.test/INV-2026-000002" in reminder.body
    assert tenant.iban in reminder.body


def test_only_the_latest_missed_reminder_is_sent(tenant: Tenant, fleet: Subscription, dupont_policy: None) -> None:
    invoice = open_invoice(
        fleet, number="INV-2026-000002", issue_date=date(2026, 5, 1), due_date=date(2026, 5, 31), total="308.57"
    )
    # Dunning first runs 10 days past due: reminders -3 and 7 are both due; one e-mail, the day-7 one.
    assert run(tenant, morning(date(2026, 6, 10))) == nothing(reminders=1, overdue=1)
    assert len(mail.outbox) == 1
    assert "10 jours" in mail.outbox[0].body
    steps = dict(
        DunningAction.objects.filter(invoice=invoice, kind=DunningActionKind.REMINDER).values_list("day", "detail")
    )
    assert steps == {-3: {"sent": False}, 7: {"sent": True}}


@pytest.mark.parametrize(
    ("zone", "before", "on_the_day"),
    [
        # Auckland is UTC+12 in June: 2026-06-20T12:30Z is already 21 June there, still 20 June in UTC.
        ("Pacific/Auckland", datetime(2026, 6, 20, 11, 30, tzinfo=UTC), datetime(2026, 6, 20, 12, 30, tzinfo=UTC)),
        # Los Angeles is UTC-7: 2026-06-21T06:30Z is still 20 June there (23:30), 07:30Z is 21 June.
        ("America/Los_Angeles", datetime(2026, 6, 21, 6, 30, tzinfo=UTC), datetime(2026, 6, 21, 7, 30, tzinfo=UTC)),
    ],
)
def test_days_are_counted_in_the_customers_time_zone(
    tenant: Tenant, fleet: Subscription, dupont_policy: None, zone: str, before: datetime, on_the_day: datetime
) -> None:
    Customer.objects.filter(pk=fleet.customer_id).update(timezone=zone)
    open_invoice(
        fleet, number="INV-2026-000002", issue_date=date(2026, 5, 1), due_date=date(2026, 5, 31), total="308.57"
    )
    run(tenant, morning(date(2026, 6, 19)))  # the earlier steps: reminders, overdue
    assert run(tenant, before)["suspensions"] == 0
    assert run(tenant, on_the_day)["suspensions"] == 1
    action = DunningAction.objects.get(subscription=fleet, kind=DunningActionKind.SUSPENSION)
    assert action.on == date(2026, 6, 21)


def test_write_off_at_60_days_reactivates(tenant: Tenant, fleet: Subscription, dupont_policy: None) -> None:
    invoice = open_invoice(
        fleet, number="INV-2026-000002", issue_date=date(2026, 5, 1), due_date=date(2026, 5, 31), total="308.57"
    )
    run(tenant, morning(date(2026, 6, 21)))
    fleet.refresh_from_db()
    assert fleet.status == SubscriptionStatus.SUSPENDED
    # 2026-07-29 is 59 days past due (30 days of June after the 31 May, + 29).
    assert run(tenant, morning(date(2026, 7, 29)))["write_offs"] == 0
    assert run(tenant, morning(date(2026, 7, 30))) == nothing(write_offs=1, reactivations=1)
    invoice.refresh_from_db()
    fleet.refresh_from_db()
    assert invoice.payment_status == InvoicePaymentStatus.UNCOLLECTIBLE
    assert fleet.status == SubscriptionStatus.ACTIVE
    audit = AuditLogEntry.objects.get(tenant=tenant, action="invoice.written_off")
    assert (audit.object_id, audit.after) == (str(invoice.pk), {"payment_status": "uncollectible"})
    assert run(tenant, morning(date(2026, 8, 30))) == nothing()


def test_retries_on_days_3_5_7_for_customers_charged_automatically(
    tenant: Tenant, fleet: Subscription, dupont_policy: None, charged: list[Any]
) -> None:
    Customer.objects.filter(pk=fleet.customer_id).update(collection=Collection.CHARGE_AUTOMATICALLY)
    # Charged automatically: due the day it is issued.
    card = open_invoice(
        fleet, number="INV-2026-000003", issue_date=date(2026, 6, 1), due_date=date(2026, 6, 1), total="308.57"
    )
    retried = []
    for day in range(2, 10):
        if run(tenant, morning(date(2026, 6, day)))["retries"]:
            retried.append(day - 1)  # days past due
    assert retried == [3, 5, 7]
    assert charged == [([card.pk], {"tenant_id": tenant.pk, "trigger": "dunning"})] * 3


def test_a_send_invoice_customer_is_never_charged(
    tenant: Tenant, fleet: Subscription, dupont_policy: None, charged: list[Any]
) -> None:
    open_invoice(fleet, number="INV-2026-000003", issue_date=date(2026, 6, 1), due_date=date(2026, 6, 1), total="10.00")
    for day in range(2, 10):
        run(tenant, morning(date(2026, 6, day)))
    assert charged == []


def test_missed_retry_days_charge_once(
    tenant: Tenant, fleet: Subscription, dupont_policy: None, charged: list[Any]
) -> None:
    Customer.objects.filter(pk=fleet.customer_id).update(collection=Collection.CHARGE_AUTOMATICALLY)
    card = open_invoice(
        fleet, number="INV-2026-000003", issue_date=date(2026, 6, 1), due_date=date(2026, 6, 1), total="9.00"
    )
    # First pass 8 days past due: days 3, 5 and 7 are all due, the invoice is charged once.
    assert run(tenant, morning(date(2026, 6, 9)))["retries"] == 1
    assert charged == [([card.pk], {"tenant_id": tenant.pk, "trigger": "dunning"})]
    assert DunningAction.objects.filter(invoice=card, kind=DunningActionKind.RETRY).count() == 3


def test_customer_policy_replaces_the_tenants(tenant: Tenant, fleet: Subscription, dupont_policy: None) -> None:
    from payments.policies import customer_policy_set

    customer_policy_set(
        customer=fleet.customer,
        values={"retry_days": [], "reminder_days": [], "suspend_after_days": None, "uncollectible_after_days": None},
        actor=ACTOR,
        at=datetime(2026, 4, 1, tzinfo=UTC),
    )
    open_invoice(fleet, number="INV-2026-000002", issue_date=date(2026, 5, 1), due_date=date(2026, 5, 31), total="5.00")
    # 90 days past due: only the overdue event, which every policy has.
    assert run(tenant, morning(date(2026, 8, 29))) == nothing(overdue=1)


def test_pass_queries_do_not_grow_with_invoices(
    tenant: Tenant, fleet: Subscription, dupont_policy: None, django_assert_max_num_queries: Any
) -> None:
    for month in range(1, 6):
        open_invoice(
            fleet,
            number=f"INV-2026-00000{month}",
            issue_date=date(2026, month, 1),
            due_date=date(2026, month, 28),
            total="10.00",
        )
    # 5 invoices, every kind of step: a fixed number of statements, not one per invoice.
    with django_assert_max_num_queries(40):
        counts = run(tenant, morning(date(2026, 6, 30)))
    assert counts["overdue"] == 5


def test_suspended_subscriptions_are_not_billed_when_the_tenant_says_so(tenant: Tenant, fleet: Subscription) -> None:
    customer = fleet.customer
    context = billing_context_load(tenant=tenant, customers=[customer], billing_date=date(2026, 5, 1))
    assert context.due_subscriptions(customer) == [fleet]
    subscriptions_suspend(
        tenant=tenant, subscription_ids=[fleet.pk], at=datetime(2026, 4, 25, tzinfo=UTC), reason="non_payment"
    )
    # Billed while suspended by default.
    context = billing_context_load(tenant=tenant, customers=[customer], billing_date=date(2026, 5, 1))
    assert [s.pk for s in context.due_subscriptions(customer)] == [fleet.pk]
    InvoicingSettings.objects.update_or_create(tenant=tenant, defaults={"bill_while_suspended": False})
    context = billing_context_load(tenant=tenant, customers=[customer], billing_date=date(2026, 5, 1))
    assert context.due_subscriptions(customer) == []


def hourly(tenant: Tenant, start: datetime, hours: int) -> list[dict[str, int]]:
    """The beat's hourly passes from ``start``."""
    return [run(tenant, start + timedelta(hours=h)) for h in range(hours)]


def test_hourly_passes_suspend_once_from_one_day_past_due(tenant: Tenant, fleet: Subscription) -> None:
    tenant_policy_set(
        tenant=tenant,
        values={**DEFAULT_POLICY.as_dict(), "suspend_after_days": 1},
        actor=ACTOR,
        at=datetime(2026, 4, 1, tzinfo=UTC),
    )
    open_invoice(fleet, number="INV-2026-000002", issue_date=date(2026, 5, 1), due_date=date(2026, 5, 31), total="5.00")
    # From 30 May 22:00 UTC (midnight in Paris, the due date) every hour for 3 days (72 passes): day 0
    # suspends nothing, day 1 (1 June in Paris, from 31 May 22:00 UTC) suspends once, the rest nothing.
    counts = hourly(tenant, datetime(2026, 5, 30, 22, 0, tzinfo=UTC), 72)
    assert [h for h, c in enumerate(counts) if c["suspensions"]] == [24]
    assert sum(c["reactivations"] for c in counts) == 0
    assert len(events(tenant, "subscription.suspended")) == 1
    assert events(tenant, "subscription.reactivated") == []


def test_a_policy_suspending_on_the_due_date_does_not_flap(tenant: Tenant, fleet: Subscription) -> None:
    # A policy stored before the minimum of 1 day (the API refuses 0 now): suspended on the due date,
    # and the same rule keeps it suspended; no pass of the day reactivates it.
    DunningPolicy.objects.create(tenant=tenant, **{**DEFAULT_POLICY.as_dict(), "suspend_after_days": 0})
    open_invoice(fleet, number="INV-2026-000002", issue_date=date(2026, 5, 1), due_date=date(2026, 5, 31), total="5.00")
    # 24 passes over 31 May in Paris (30 May 22:00 UTC to 31 May 21:00 UTC).
    counts = hourly(tenant, datetime(2026, 5, 30, 22, 0, tzinfo=UTC), 24)
    assert sum(c["suspensions"] for c in counts) == 1
    assert sum(c["reactivations"] for c in counts) == 0
    assert len(events(tenant, "subscription.suspended")) == 1
    assert events(tenant, "subscription.reactivated") == []
    fleet.refresh_from_db()
    assert fleet.status == SubscriptionStatus.SUSPENDED


def test_a_suspended_subscription_comes_back_only_when_nothing_is_overdue_any_more(
    tenant: Tenant, fleet: Subscription, dupont_policy: None
) -> None:
    may = open_invoice(
        fleet, number="INV-2026-000002", issue_date=date(2026, 5, 1), due_date=date(2026, 5, 31), total="308.57"
    )
    june = open_invoice(
        fleet, number="INV-2026-000003", issue_date=date(2026, 6, 1), due_date=date(2026, 6, 15), total="100.00"
    )
    # 21 June: May's invoice is 21 days past due (suspended), June's 6 (under 21).
    assert run(tenant, morning(date(2026, 6, 21)))["suspensions"] == 1
    # 23 June: May's invoice is paid, but June's is 8 days past due: something is still overdue
    # (payments.md: active again "when nothing is overdue any more"), so it stays suspended.
    Invoice.objects.filter(pk=may.pk).update(amount_due=Money(0, "EUR"), payment_status=InvoicePaymentStatus.PAID)
    customers_reactivate_if_clear(tenant_id=tenant.pk, customer_ids=[fleet.customer_id], at=morning(date(2026, 6, 23)))
    fleet.refresh_from_db()
    assert fleet.status == SubscriptionStatus.SUSPENDED
    # The passes of 23 June to 7 July neither reactivate it nor suspend it again: on 6 July June's
    # invoice reaches 21 days past due (15 days of June after the 15th, + 6), while it is suspended.
    for day in range(23, 38):
        counts = run(tenant, morning(date(2026, 6, 23) + timedelta(days=day - 23)))
        assert (counts["suspensions"], counts["reactivations"]) == (0, 0), day
    # 8 July: June's invoice is paid too: nothing is overdue, active again, once.
    Invoice.objects.filter(pk=june.pk).update(amount_due=Money(0, "EUR"), payment_status=InvoicePaymentStatus.PAID)
    customers_reactivate_if_clear(tenant_id=tenant.pk, customer_ids=[fleet.customer_id], at=morning(date(2026, 7, 8)))
    fleet.refresh_from_db()
    assert fleet.status == SubscriptionStatus.ACTIVE
    assert run(tenant, morning(date(2026, 7, 9))) == nothing()
    suspended = events(tenant, "subscription.suspended")
    assert [e["invoices"] for e in suspended] == [["INV-2026-000002"]]
    assert len(events(tenant, "subscription.reactivated")) == 1


def test_a_subscription_reactivated_by_hand_is_not_suspended_again_for_the_same_invoice(
    tenant: Tenant, fleet: Subscription, dupont_policy: None
) -> None:
    open_invoice(
        fleet, number="INV-2026-000002", issue_date=date(2026, 5, 1), due_date=date(2026, 5, 31), total="308.57"
    )
    assert run(tenant, morning(date(2026, 6, 21)))["suspensions"] == 1
    # Given time to pay: active again while the invoice is still 22 days past due.
    subscriptions_reactivate(tenant=tenant, subscription_ids=[fleet.pk], at=morning(date(2026, 6, 22)), reason="grace")
    # Its suspension step is taken: the passes of the next days (23 to 28 June) leave it active.
    for day in range(23, 29):
        assert run(tenant, morning(date(2026, 6, day)))["suspensions"] == 0
    fleet.refresh_from_db()
    assert fleet.status == SubscriptionStatus.ACTIVE
    assert len(events(tenant, "subscription.suspended")) == 1
