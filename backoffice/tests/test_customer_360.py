"""The customer page (/app/customers/<id>/): the customer at a glance, its amounts checked by hand.

Transports Dupont (EUR, Paris, billing day 1, 30 days to pay) on 20 April 2026, 14:00 Paris:

- ``dupont-fleet``, billing.md's Smart Fleet (signed 10 March; devices A, B and C activated on
  15 March, 20 March and 10 April), with 14,000 MB of data in April; and ``dupont-spare`` on plan
  ``tracker`` (10.00 per device and month from each device's activation), signed on 2 April with
  device T1, not activated yet.
- Three invoices of one service line + 20 % VAT: 1 February (100.00 -> 120.00), paid with 150.00
  (the 30.00 left over becomes credit balance); 1 March (200.00 -> 240.00, due 31 March), unpaid:
  20 days overdue; 1 April (50.00 -> 60.00, due 1 May), 25.00 paid: 35.00 left, not yet due.
"""

import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog.tests.factories import platform_plan
from customers.models import Customer
from customers.services import customer_update
from customers.tests.factories import dupont as new_customer
from invoicing.models import Invoice
from payments.tests.factories import invoice_of, pay
from subscriptions.tests.factories import signed_subscription, smart_fleet, smart_fleet_activate
from tenancy.actors import Actor
from tenancy.models import ApiKeyScope, Role, Tenant
from usage.tests.factories import events_poster

pytestmark = pytest.mark.django_db

StaffMaker = Callable[..., Any]
PARIS = ZoneInfo("Europe/Paris")
ACTOR = Actor.system("tests")
NOW = datetime(2026, 4, 20, 12, 0, tzinfo=UTC)  # 14:00 in Paris


def html(response: Any) -> str:
    return response.content.decode()


def text(response: Any) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html(response))).replace("\xa0", " ").replace("\u202f", " ")


def figure(page: str, name: str) -> str:
    """The text of ``<strong data-figure="name">`` (an amount card of the page)."""
    found = re.search(r'data-figure="%s"[^>]*>([^<]*)<' % name, page)
    assert found, name
    return found.group(1).replace("\xa0", " ").replace("\u202f", " ")


def client_for(tenant: Tenant, make_staff: StaffMaker, role: str = Role.OWNER) -> Client:
    client = Client()
    client.force_login(make_staff(tenant, role, "%s@acme.test" % role))
    return client


def ev(tid: str, device: str, mb: int, ts: str) -> dict[str, Any]:
    return {"transaction_id": tid, "code": "data_mb", "timestamp": ts, "device_id": device, "properties": {"mb": mb}}


@pytest.fixture
def dupont(tenant: Tenant, make_client: Any) -> Customer:
    subscription = smart_fleet(tenant)
    smart_fleet_activate(tenant)
    customer = subscription.customer
    with time_machine.travel(datetime(2026, 4, 2, 9, 0, tzinfo=PARIS), tick=False):
        tracker = platform_plan(tenant, "tracker", "10.00", starts_on="activation")
        signed_subscription(
            tenant,
            customer=customer,
            plan=tracker,
            external_id="dupont-spare",
            devices=("T1",),
            signed_at=timezone.now(),
            starts_on=date(2026, 4, 2),
        )
    feb = invoice_of(customer, "100.00", on=date(2026, 2, 1))
    invoice_of(customer, "200.00", on=date(2026, 3, 1))
    apr = invoice_of(customer, "50.00", on=date(2026, 4, 1))
    ingest = events_poster(make_client(tenant, ApiKeyScope.INGEST), NOW)
    ingest(
        [
            ev("a", "A", 5000, "2026-04-02T10:00:00Z"),
            ev("b", "B", 7000, "2026-04-05T10:00:00Z"),
            ev("c", "C", 2000, "2026-04-12T10:00:00Z"),
        ]
    )
    with time_machine.travel(datetime(2026, 4, 15, 9, 0, tzinfo=PARIS), tick=False):
        at = timezone.now()
        pay(customer, "150.00", invoice=feb, received_at=at, at=at)
        pay(customer, "25.00", invoice=apr, received_at=at, at=at)
        customer_update(
            tenant=tenant, actor=ACTOR, at=at, external_id="dupont", changes={"email": "finance@dupont.test"}
        )
    customer.refresh_from_db()
    return customer


@pytest.fixture(autouse=True)
def _on_20_april() -> Any:
    with time_machine.travel(NOW, tick=False):
        yield


# --- what the page shows ----------------------------------------------------------------------


def test_the_balance_and_amounts_due_are_the_receivables_figures(
    dupont: Customer, tenant: Tenant, make_staff: StaffMaker
) -> None:
    invoices = {i.issue_date.month: i for i in Invoice.objects.filter(customer=dupont)}
    assert [(m, invoices[m].payment_status, invoices[m].amount_due.amount) for m in (2, 3, 4)] == [
        (2, "paid", Decimal("0.00")),
        (3, "unpaid", Decimal("240.00")),
        (4, "partially_paid", Decimal("35.00")),
    ]
    page = html(client_for(tenant, make_staff).get("/app/customers/dupont/"))
    # due: 240.00 (March, 20 days late) + 35.00 (April, not yet due) = 275.00; overdue: 240.00
    assert figure(page, "due") == "€275.00"
    assert figure(page, "overdue") == "€240.00"
    # 150.00 paid on a 120.00 invoice: 30.00 kept as credit balance
    assert figure(page, "balance") == "€30.00"
    # MRR: fleet-platform 25.00 x 3 active devices = 75.00; the spare's T1 is not activated: 0.00
    assert figure(page, "mrr") == "€75.00"


def test_subscriptions_show_their_devices_status_and_mrr(
    dupont: Customer, tenant: Tenant, make_staff: StaffMaker
) -> None:
    response = client_for(tenant, make_staff).get("/app/customers/dupont/")
    body = text(response)
    assert response.status_code == 200
    assert 'href="/app/subscriptions/dupont-fleet/"' in html(response)
    assert 'href="/app/subscriptions/dupont-spare/"' in html(response)
    assert "3 active of 3" in body
    assert "0 active of 1" in body
    assert "T1 Not activated yet" in body
    assert "€75.00" in body
    assert "€0.00" in body


def test_usage_this_period_and_the_projected_invoice(dupont: Customer, tenant: Tenant, make_staff: StaffMaker) -> None:
    page = html(client_for(tenant, make_staff).get("/app/customers/dupont/"))
    body = text(client_for(tenant, make_staff, Role.FINANCE_VIEWER).get("/app/customers/dupont/"))
    # April in Paris; data: 14000 MB, 3 x 1024 = 3072 included, 10928 billable:
    # 10000 x 0.010 + 928 x 0.005 = 104.64
    assert "1–30 Apr 2026" in body
    assert "data_mb" in body
    assert "14,000 3,072 10,928 €104.64" in body
    # the invoice of 1 May: ELD instalment 2/12 3 x 20.00 = 60.00, C's platform fee from 10 April
    # 25.00 x 21/30 = 17.50, May's platform fees 3 x 25.00 = 75.00, data 104.64:
    # 60.00 + 17.50 + 75.00 + 104.64 = 257.14 net, VAT 20 % 51.43, total 308.57
    assert "Net total €257.14" in body
    assert "€51.43" in body
    assert figure(page, "projected") == "€308.57"


def test_invoices_show_their_payment_status_and_the_overdue_one(
    dupont: Customer, tenant: Tenant, make_staff: StaffMaker
) -> None:
    response = client_for(tenant, make_staff).get("/app/customers/dupont/")
    page = html(response)
    row = r'<tr>\s*<td class="tp-nowrap"><a href="/app/billing/invoices/[^"]+/"><code>[^<]+</code>.*?</tr>'
    rows = re.findall(row, page, re.S)
    assert len(rows) == 3
    statuses = [re.findall(r"tp-pay-(\w+)", row) for row in rows]
    # newest first: April partly paid, March unpaid and overdue, February paid
    assert statuses == [["partially_paid"], ["unpaid", "overdue"], ["paid"]]
    dues = [re.sub(r"<[^>]+>", "", re.findall(r'<td class="num tp-nowrap">(.*?)</td>', row)[1]) for row in rows]
    assert dues == ["€35.00", "€240.00", "€0.00"]
    # the list behind is this customer's alone (an exact external ID, never a part of another's)
    assert "/app/billing/invoices/?customer=dupont" in page


def test_the_timeline_merges_audit_entries_and_events_newest_first(
    dupont: Customer, tenant: Tenant, make_staff: StaffMaker
) -> None:
    page = html(client_for(tenant, make_staff).get("/app/customers/dupont/"))
    timeline = page[page.index('id="timeline-title"') :]
    kinds = re.findall(r'<tr data-kind="(\w+)">\s*<td class="tp-nowrap">([^<]+)</td>\s*<td>(.*?)</td>', timeline, re.S)
    what = [(kind, re.sub(r"<[^>]+>", "", label).strip()) for kind, _, label in kinds]
    # at one instant, the action (audit) above the events it caused
    assert what == [
        ("audit", "Customer updated"),  # 15 April, 09:00
        ("event", "Device activated"),  # C, 10 April
        ("audit", "Subscription created"),  # dupont-spare, 2 April, 09:00
        ("event", "Signed"),  # dupont-spare, 2 April, 09:00
        ("event", "Device activated"),  # B, 20 March
        ("event", "Status changed"),  # dupont-fleet active with A, 15 March
        ("event", "Device activated"),  # A, 15 March
        ("audit", "Subscription created"),  # dupont-fleet, 10 March
        ("event", "Signed"),  # dupont-fleet, 10 March
        ("audit", "Customer created"),  # 1 March
    ]
    # the audit log's own rows, with what changed, below the timeline
    assert "finance@dupont.test" in timeline


# --- actions and roles -------------------------------------------------------------------------


def test_writers_get_the_actions_prefilled_with_the_customer(
    dupont: Customer, tenant: Tenant, make_staff: StaffMaker
) -> None:
    owner = client_for(tenant, make_staff)
    page = html(owner.get("/app/customers/dupont/"))
    assert 'href="/app/subscriptions/new/?customer=dupont"' in page
    assert 'href="/app/payments/new/?customer=dupont"' in page
    assert 'href="/app/customers/dupont/edit/"' in page
    march = Invoice.objects.get(customer=dupont, issue_date=date(2026, 3, 1))
    assert 'href="/app/billing/invoices/%s/#actions"' % march.pk in page  # credit it
    assert 'href="/app/payments/new/?customer=dupont&amp;invoice=%s"' % march.pk in page
    # the links open their forms with the customer chosen
    form = html(owner.get("/app/subscriptions/new/?customer=dupont"))
    assert re.search(r'<option value="dupont" selected>', form)
    record = owner.get("/app/payments/new/?customer=dupont&invoice=%s" % march.pk)
    assert record.status_code == 200
    assert "Transports Dupont" in html(record)


@pytest.mark.parametrize("role", [Role.FINANCE_VIEWER, Role.SUPPORT_AGENT])
def test_readers_see_the_page_without_actions(
    dupont: Customer, tenant: Tenant, make_staff: StaffMaker, role: str
) -> None:
    response = client_for(tenant, make_staff, role).get("/app/customers/dupont/")
    page = html(response)
    assert response.status_code == 200
    assert "/app/subscriptions/new/" not in page
    assert "/app/payments/new/" not in page
    assert "/edit/" not in page
    assert figure(page, "due") == "€275.00"
    if role == Role.SUPPORT_AGENT:  # no audit log for support agents: the events only
        assert 'data-kind="audit"' not in page
        assert "Customer updated" not in page
    else:
        assert 'data-kind="audit"' in page


def test_french(dupont: Customer, tenant: Tenant, make_staff: StaffMaker) -> None:
    body = text(client_for(tenant, make_staff).get("/app/customers/dupont/", HTTP_ACCEPT_LANGUAGE="fr"))
    for words in ("Montant dû", "En retard", "Consommation de la période", "Facture prévisionnelle", "Historique"):
        assert words in body, words
    assert "275,00 €" in body


def test_another_tenants_customer_is_a_404(dupont: Customer, other_tenant: Tenant, make_staff: StaffMaker) -> None:
    assert client_for(other_tenant, make_staff).get("/app/customers/dupont/").status_code == 404


# --- a bounded number of queries -----------------------------------------------------------------


def test_the_number_of_queries_does_not_grow_with_subscriptions_and_invoices(
    dupont: Customer, tenant: Tenant, make_staff: StaffMaker, django_assert_max_num_queries: Any
) -> None:
    client = client_for(tenant, make_staff)
    client.get("/app/customers/dupont/")  # the session and the caches warm up
    with CaptureQueriesContext(connection) as before:
        client.get("/app/customers/dupont/")
    # given 12 more subscriptions with 3 devices each and 12 more invoices (more than each list shows)
    tracker = dupont.subscriptions.get(external_id="dupont-spare").plan
    for n in range(12):
        signed_subscription(
            tenant,
            customer=dupont,
            plan=tracker,
            external_id="extra-%d" % n,
            devices=["x%d-%d" % (n, d) for d in range(3)],
            signed_at=timezone.now(),
            starts_on=date(2026, 4, 20),
        )
        invoice_of(dupont, "10.00", on=date(2025, 1 + n, 1))
    # then: the same number of queries, and the lists link to the rest
    with django_assert_max_num_queries(len(before)):
        response = client.get("/app/customers/dupont/")
    page = html(response)
    assert page.count('<tr data-kind="') <= 30
    assert "See all its subscriptions" in page
    assert "See all its invoices" in page
    # 25 when written: 9 for the session, the user, its memberships and the tenant's security wall
    assert len(before) <= 30


def test_a_new_customer_page_says_what_is_not_there_yet(tenant: Tenant, make_staff: StaffMaker) -> None:
    new_customer(tenant, external_id="fresh", name="Fresh Start")
    response = client_for(tenant, make_staff).get("/app/customers/fresh/")
    page, body = html(response), text(response)
    assert response.status_code == 200
    assert (figure(page, "due"), figure(page, "overdue"), figure(page, "balance"), figure(page, "mrr")) == (
        "€0.00",
        "€0.00",
        "€0.00",
        "—",
    )
    assert "No subscription yet. Subscribe this customer to a plan" in body
    assert "No subscription bills a period now." in body
    assert "No invoices yet" in body
    assert 'data-figure="projected"' not in page


def test_a_usage_that_cannot_be_priced_is_said_and_the_rest_of_the_page_shown(
    dupont: Customer, tenant: Tenant, make_staff: StaffMaker, monkeypatch: Any
) -> None:
    from backoffice.customers import views
    from catalog.errors import NoPriceForCurrency

    def unpriced(**kwargs: Any) -> Any:
        raise NoPriceForCurrency("Plan smart-fleet has no price in EUR.")

    monkeypatch.setattr(views, "invoice_upcoming", unpriced)
    response = client_for(tenant, make_staff).get("/app/customers/dupont/")
    page = html(response)
    assert response.status_code == 200
    assert "The usage of this period cannot be priced: Plan smart-fleet has no price in EUR." in text(response)
    assert figure(page, "due") == "€275.00"
    assert figure(page, "mrr") == "—"


def test_the_lists_behind_the_page_hold_this_customer_alone(
    dupont: Customer, tenant: Tenant, make_staff: StaffMaker
) -> None:
    # given: "dupont-2", whose external ID contains "dupont", with one invoice of 10.00 + VAT = 12.00
    other = new_customer(tenant, external_id="dupont-2", name="Dupont Frères")
    invoice_of(other, "10.00", on=date(2026, 4, 1))
    client = client_for(tenant, make_staff)
    # then: the customer page's links narrow the lists to dupont's own rows (3 invoices, 1 subscription)
    page = html(client.get("/app/billing/invoices/?customer=dupont"))
    assert "Dupont Frères" not in page
    assert len(re.findall(r'<a href="/app/billing/invoices/[0-9a-f-]{36}/">', page)) == 3
    subscriptions = html(client.get("/app/subscriptions/?customer=dupont"))
    assert "Customer dupont only" in subscriptions
    assert "dupont-2" not in subscriptions.split("Customer dupont only", 1)[1]
    # and a text search, by contrast, finds both customers' invoices
    assert "Dupont Frères" in html(client.get("/app/billing/invoices/?q=dupont"))
