"""The partner dashboard's customers: only the partner's own, each with its active devices, MRR and
amount due, read in the same number of queries for 2 or 12 customers; a new customer is the
partner's; a customer's page lists its subscriptions and devices."""

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from djmoney.money import Money

from catalog.services import price_version_create
from catalog.tests.factories import platform_plan
from customers.models import Customer, Partner
from customers.tests.factories import dupont
from invoicing.models import Invoice, InvoiceStatus
from partners.models import PartnerUser
from partners.tests.dashboard import ACTOR, make_partner, make_partner_user, partner_client, partner_customer
from subscriptions.tests.factories import signed_subscription
from tenancy.models import AuditLogEntry, Tenant

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 10, 9, 0, tzinfo=UTC)
# A page computed: the session, the tenant set, its user with their partner, the customers' count
# and page, subscriptions, components, device counts, three of prices, the devices' next change,
# the amounts due, the scope put back.
LIST_QUERIES = 14
# A page from the cache: the session, the tenant set, its user with their partner, the amounts due,
# the scope put back.
LIST_QUERIES_CACHED = 5


@pytest.fixture
def partner(tenant: Tenant) -> Partner:
    return make_partner(tenant)


@pytest.fixture
def user(partner: Partner) -> PartnerUser:
    return make_partner_user(partner, email="lea@alpnet.test", role="sales")


def _invoice(
    tenant: Tenant, customer: Customer, due: str, status: str = InvoiceStatus.FINALIZED, day: int = 1
) -> Invoice:
    return Invoice.objects.create(
        tenant=tenant,
        customer=customer,
        status=status,
        issue_date=date(2026, 6, day),
        currency="EUR",
        total=Money(due, "EUR"),
        amount_due=Money(due, "EUR"),
        number="INV-%s-%s" % (customer.external_id, due),
    )


def _alpha(tenant: Tenant, partner: Partner) -> Customer:
    """Alpha Logistique: 2 devices at 10.00 a month and 1 at 120.00 a year; owes 120.00 + 30.50."""
    alpha = partner_customer(tenant, partner, "alpha", "Alpha Logistique")
    monthly = platform_plan(tenant, "fleet-10", "10.00")
    yearly = platform_plan(tenant, "fleet-year", "120.00", interval="year")
    signed_subscription(tenant, customer=alpha, plan=monthly, external_id="alpha-1", devices=("A1", "A2"))
    signed_subscription(tenant, customer=alpha, plan=yearly, external_id="alpha-2", devices=("A3",))
    _invoice(tenant, alpha, "120.00")
    _invoice(tenant, alpha, "30.50", day=2)
    _invoice(tenant, alpha, "99.00", status=InvoiceStatus.DRAFT, day=3)
    return alpha


@time_machine.travel(NOW, tick=False)
def test_the_list_shows_only_the_partners_customers_with_their_figures(
    tenant: Tenant, partner: Partner, user: PartnerUser
) -> None:
    # given: Alpha (the partner's), Dupont (direct) and Beta (another partner's)
    _alpha(tenant, partner)
    dupont(tenant)
    other = make_partner(tenant, code="other", name="Other Net")
    partner_customer(tenant, other, "beta", "Beta Transports")
    # when
    response = partner_client(user).get("/partners/")
    page = response.content.decode()
    # then: 2 + 1 = 3 active devices; MRR 2 x 10.00 + 120.00 / 12 = 30.00; due 120.00 + 30.50 = 150.50
    # (the draft's 99.00 is not due)
    assert response.status_code == 200
    assert "Alpha Logistique" in page
    assert "Transports Dupont" not in page
    assert "Beta Transports" not in page
    row = page.split('data-customer="alpha"')[1].split("</tr>")[0]
    assert '<td class="num">3</td>' in row
    assert "€30.00" in row
    assert "€150.50" in row


@time_machine.travel(NOW, tick=False)
def test_the_list_reads_12_customers_in_as_many_queries_as_2(
    tenant: Tenant, partner: Partner, user: PartnerUser
) -> None:
    plan = platform_plan(tenant, "fleet-10", "10.00")
    for n in range(2):
        c = partner_customer(tenant, partner, "c%d" % n, "Customer %02d" % n)
        signed_subscription(tenant, customer=c, plan=plan, external_id="s%d" % n, devices=("D%d" % n,))
    client = partner_client(user)
    with CaptureQueriesContext(connection) as two:
        assert client.get("/partners/").status_code == 200
    for n in range(2, 12):
        c = partner_customer(tenant, partner, "c%d" % n, "Customer %02d" % n)
        devices = tuple("D%d-%d" % (n, d) for d in range(5))
        signed_subscription(tenant, customer=c, plan=plan, external_id="s%d" % n, devices=devices)
        _invoice(tenant, c, "10.00")
    with CaptureQueriesContext(connection) as twelve:
        response = client.get("/partners/")
    assert "Customer 11" in response.content.decode()
    with CaptureQueriesContext(connection) as cached:
        again = client.get("/partners/")

    def table(r: Any) -> str:
        return r.content.decode().split("<tbody>")[1].split("</tbody>")[0]

    assert table(again) == table(response)
    assert len(two.captured_queries) == len(twelve.captured_queries) == LIST_QUERIES
    assert len(cached.captured_queries) == LIST_QUERIES_CACHED


def test_a_new_customer_is_the_partners(tenant: Tenant, partner: Partner, user: PartnerUser) -> None:
    client = partner_client(user)
    assert client.get("/partners/customers/+new/").status_code == 200
    bad = client.post(
        "/partners/customers/+new/", {"external_id": "gamma", "name": "Gamma", "email": "x", "country": "FR"}
    )
    assert bad.status_code == 400
    body = {
        "external_id": "gamma",
        "name": "Gamma Fret",
        "email": "compta@gamma.test",
        "country": "fr",
        "currency": "",
        "language": "fr",
        "address_line1": "1 quai du Port",
        "postal_code": "13002",
        "city": "Marseille",
    }
    response = client.post("/partners/customers/+new/", body)
    assert response.status_code == 302
    assert response["Location"] == "/partners/customers/gamma/"
    gamma = Customer.objects.get(tenant=tenant, external_id="gamma")
    assert (gamma.partner_id, gamma.country, gamma.currency, gamma.language) == (partner.pk, "FR", "EUR", "fr")
    created = AuditLogEntry.objects.get(tenant=tenant, action="customer.created")
    assert (created.actor_type, created.actor_label) == ("partner_user", "lea@alpnet.test")
    # the same reference again is refused on its field
    again = client.post("/partners/customers/+new/", body)
    assert again.status_code == 400


def test_a_customer_whose_id_is_new_opens_and_the_form_has_its_own_address(
    tenant: Tenant, partner: Partner, user: PartnerUser
) -> None:
    client = partner_client(user)
    # no customer "new" yet: the form's earlier address leads to the form
    old = client.get("/partners/customers/new/")
    assert (old.status_code, old["Location"]) == (302, "/partners/customers/+new/")
    partner_customer(tenant, partner, "new", "Nouvelle Flotte")
    page = client.get("/partners/customers/new/")
    assert page.status_code == 200
    assert "Nouvelle Flotte" in page.content.decode()
    assert client.get("/partners/customers/+new/").status_code == 200


@time_machine.travel(NOW, tick=False)
def test_a_customers_page_lists_its_subscriptions_and_devices(
    tenant: Tenant, partner: Partner, user: PartnerUser
) -> None:
    _alpha(tenant, partner)
    response = partner_client(user).get("/partners/customers/alpha/")
    page = response.content.decode()
    assert response.status_code == 200
    for text in ("alpha-1", "alpha-2", "A1", "A2", "A3", "Fleet-10", "Fleet-Year"):
        assert text in page, text
    assert '<dd data-figure="mrr">€30.00</dd>' in page
    assert '<dd data-figure="due">€150.50</dd>' in page
    assert '<dd data-figure="active">3</dd>' in page
    assert Decimal("150.50") == sum(i.amount_due.amount for i in Invoice.objects.filter(status="finalized"))


@time_machine.travel(NOW, tick=False)
def test_mrr_reads_the_partners_price_book_and_the_page_speaks_the_partners_french(tenant: Tenant) -> None:
    # given: a French partner whose price book "alp" sells fleet-10 at 8.00 instead of 10.00
    partner = make_partner(tenant, code="alp-fr", name="Alp France", language="fr", price_book="alp")
    user = make_partner_user(partner, email="jean@alp.test")
    plan = platform_plan(tenant, "fleet-10", "10.00")
    price_version_create(
        tenant=tenant,
        actor=ACTOR,
        at=datetime(2025, 12, 1, tzinfo=UTC),
        plan=plan,
        data={
            "currency": "EUR",
            "price_book": "alp",
            "components": [{"product": "platform", "charge": {"model": "flat", "amount": "8.00"}}],
        },
    )
    alpha = partner_customer(tenant, partner, "alpha", "Alpha Logistique")
    signed_subscription(tenant, customer=alpha, plan=plan, external_id="alpha-1", devices=("A1", "A2", "A3"))
    # when
    page = partner_client(user).get("/partners/customers/alpha/").content.decode()
    # then: 3 x 8.00 = 24.00, in French
    assert "Votre référence" in page
    assert '<dd data-figure="mrr">24,00\xa0€</dd>' in page or '<dd data-figure="mrr">24,00\u202f€</dd>' in page
