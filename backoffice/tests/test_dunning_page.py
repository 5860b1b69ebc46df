"""The back-office dunning page (/app/dunning/): the queue of next steps, suspended subscriptions,
recent steps, "Run dunning now" and the tenant's policy. Dupont (Europe/Paris, send_invoice) owes
invoices billing its Smart Fleet; the policy is the default one unless a test sets it: reminders 3
days before and 7 after the due date, retries 3, 5, 7, suspension at 21 days, write-off at 60."""

import re
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.test import Client

from payments.models import DunningAction
from payments.policies import DEFAULT_POLICY, Policy, bill_while_suspended_get, tenant_policy_get
from payments.tests.conftest import fleet, open_invoice
from subscriptions.models import Subscription, SubscriptionStatus
from tenancy.models import Role, Tenant

pytestmark = pytest.mark.django_db
__all__ = ["fleet"]

StaffMaker = Callable[..., Any]
# 21 June 2026, 08:00 in Paris: 21 days after a due date of 31 May.
NOW = datetime(2026, 6, 21, 6, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _on_21_june() -> Iterator[None]:
    with time_machine.travel(NOW, tick=True):
        yield


def text(response: Any) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode())).replace("&#x27;", "'")


def client_for(tenant: Tenant, make_staff: StaffMaker, role: str = Role.OWNER) -> Client:
    client = Client()
    client.force_login(make_staff(tenant, role, "staff@acme.test"))
    return client


POLICY_POST = {
    "reminder_days": "-5, 10",
    "retry_days": "2, 4",
    "suspend_after_days": "30",
    "uncollectible_after_days": "90",
    "bill_while_suspended": "",
    "pay_url": "https://pay.acme.test/",
}


@pytest.mark.parametrize(
    ("role", "reads", "writes"),
    [
        (Role.OWNER, 200, 302),
        (Role.FINANCE_ADMIN, 200, 302),
        (Role.FINANCE_VIEWER, 200, 403),
        (Role.SUPPORT_AGENT, 403, 403),
    ],
)
def test_who_may_see_and_run_dunning(
    tenant: Tenant, make_staff: StaffMaker, role: str, reads: int, writes: int
) -> None:
    client = client_for(tenant, make_staff, role)
    page = client.get("/app/dunning/")
    assert page.status_code == reads
    if reads == 200:
        # Only those who may run it see the button and the form.
        assert ("Run dunning now" in text(page)) is (writes == 302)
        assert ('action="/app/dunning/policy/"' in page.content.decode()) is (writes == 302)
    assert client.post("/app/dunning/run/").status_code == writes
    assert client.post("/app/dunning/policy/", POLICY_POST).status_code == writes
    assert client.get("/app/dunning/run/").status_code == (405 if writes == 302 else 403)


def test_the_queue_shows_the_next_steps_and_their_days(
    tenant: Tenant, fleet: Subscription, make_staff: StaffMaker
) -> None:
    # On 21 June: due 30 June -> reminder day -3 on 27 June; due 20 June (1 day past due) -> overdue today;
    # due 31 May with the steps of 21 days taken -> write-off on 31 May + 60 = 30 July.
    open_invoice(fleet, number="INV-SOON", issue_date=date(2026, 6, 1), due_date=date(2026, 6, 30), total="10.00")
    open_invoice(fleet, number="INV-LATE", issue_date=date(2026, 5, 1), due_date=date(2026, 5, 31), total="308.57")
    client = client_for(tenant, make_staff)
    assert client.post("/app/dunning/run/").status_code == 302
    open_invoice(fleet, number="INV-NEW", issue_date=date(2026, 5, 21), due_date=date(2026, 6, 20), total="20.00")
    page = text(client.get("/app/dunning/"))
    assert "Transports Dupont dupont INV-NEW €20.00 20 Jun 2026 1 Reminder e-mail (day -3), Overdue Today" in page, page
    assert "Transports Dupont dupont INV-SOON €10.00 30 Jun 2026 — Reminder e-mail (day -3) 27 Jun 2026" in page
    assert "Transports Dupont dupont INV-LATE €308.57 31 May 2026 21 Written off 30 Jul 2026" in page
    # Ordered by day: today, 27 June, 30 July.
    assert page.index("INV-NEW €") < page.index("INV-SOON €") < page.index("INV-LATE €")
    # The subscription suspended by the run, since 21 June 08:00 Paris.
    assert "Suspended since Transports Dupont dupont dupont-fleet 21 Jun 2026, 08:00 CEST" in page
    french = client
    french.cookies["django_language"] = "fr"
    assert "Relances" in text(french.get("/app/dunning/"))


def test_run_dunning_now_takes_the_steps_due_once(tenant: Tenant, fleet: Subscription, make_staff: StaffMaker) -> None:
    invoice = open_invoice(
        fleet, number="INV-LATE", issue_date=date(2026, 5, 1), due_date=date(2026, 5, 31), total="308.57"
    )
    client = client_for(tenant, make_staff, Role.FINANCE_ADMIN)
    response = client.post("/app/dunning/run/", follow=True)
    # 21 days past due: reminders -3 and 7 (only the latest is e-mailed), overdue, the invoice's suspension
    # step and the subscription's suspension: 5 rows, 1 e-mail.
    assert len(mail.outbox) == 1
    assert DunningAction.objects.filter(tenant=tenant).count() == 5
    assert DunningAction.objects.filter(tenant=tenant, invoice=invoice).count() == 4
    assert (
        "Dunning done: 1 reminders, 0 retries, 1 invoices overdue, 1 subscriptions suspended, 0 reactivated, "
        "0 invoices written off." in text(response)
    )
    fleet.refresh_from_db()
    assert fleet.status == SubscriptionStatus.SUSPENDED
    # The recent steps list them; a second click takes nothing more.
    assert "Suspension" in text(response)
    assert "skipped: a later one was due" in text(response)
    again = client.post("/app/dunning/run/", follow=True)
    assert "Dunning done: 0 reminders, 0 retries, 0 invoices overdue" in text(again)
    assert (len(mail.outbox), DunningAction.objects.filter(tenant=tenant).count()) == (1, 5)


def test_the_policy_form_saves(tenant: Tenant, make_staff: StaffMaker) -> None:
    client = client_for(tenant, make_staff)
    assert bill_while_suspended_get(tenant=tenant) is True
    assert client.post("/app/dunning/policy/", POLICY_POST).status_code == 302
    assert tenant_policy_get(tenant=tenant) == Policy(
        retry_days=(2, 4), reminder_days=(-5, 10), suspend_after_days=30, uncollectible_after_days=90
    )
    assert bill_while_suspended_get(tenant=tenant) is False
    page = client.get("/app/dunning/").content.decode()
    assert 'value="-5, 10"' in page
    assert 'value="https://pay.acme.test/"' in page
    # Empty: never suspend, never write off.
    client.post("/app/dunning/policy/", {**POLICY_POST, "suspend_after_days": "", "uncollectible_after_days": ""})
    assert tenant_policy_get(tenant=tenant).suspend_after_days is None
    assert tenant_policy_get(tenant=tenant).uncollectible_after_days is None


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("reminder_days", "7, -3", "List the days in increasing order, each once."),
        ("reminder_days", "seven", "Enter whole numbers of days separated by commas, e.g. -3, 7."),
        ("retry_days", "-1", "A day out of range: reminders from -60 to 365, the other days from 0 to 365."),
        ("uncollectible_after_days", "10", "An invoice is written off no sooner than its subscriptions are suspended."),
        ("suspend_after_days", "0", "Suspend 1 to 365 days past due: subscriptions are not suspended on the due date"),
        ("pay_url", "not a url", "Enter a valid URL."),
    ],
)
def test_the_policy_form_refuses_bad_input(
    tenant: Tenant, make_staff: StaffMaker, field: str, value: str, message: str
) -> None:
    client = client_for(tenant, make_staff)
    response = client.post("/app/dunning/policy/", {**POLICY_POST, field: value})
    assert response.status_code == 422
    assert message in text(response)
    assert tenant_policy_get(tenant=tenant) == DEFAULT_POLICY


def test_the_page_takes_a_bounded_number_of_queries(
    tenant: Tenant, fleet: Subscription, make_staff: StaffMaker, django_assert_max_num_queries: Any
) -> None:
    for month in range(1, 7):
        open_invoice(
            fleet,
            number=f"INV-{month}",
            issue_date=date(2026, month, 1),
            due_date=date(2026, month, 10),
            total="10.00",
        )
    client = client_for(tenant, make_staff)
    client.post("/app/dunning/run/")
    # 6 invoices, 20 steps taken: the session and the staff member, the queue's 5, the suspended
    # subscriptions, the recent steps, the policy and its settings; not one per row.
    with django_assert_max_num_queries(20):
        response = client.get("/app/dunning/")
    assert response.status_code == 200
    assert text(response).count("Overdue") >= 6
