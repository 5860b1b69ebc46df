"""The back-office's global search (/app/search/?q=): what it finds per kind, the exact hit that
opens its page, its bounds, the roles, and that a tenant's search never shows another's rows.

Acme has Transports Dupont (``dupont``, compta@dupont.test) with subscription ``dupont-fleet``
(devices TRK-001 and TRK-002) and one invoice, and Durand Logistique (``durand``) with ``durand-vans``
(device VAN-9). Globex has its own Dupont (``dupont-gx``, "Dupont Globex") with ``gx-fleet``
(device TRK-777) and an invoice numbered like Acme's, as each tenant numbers from 1.
"""

import re
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from django.test import Client

from catalog.tests.factories import platform_plan
from customers.models import Customer
from invoicing.models import Invoice
from payments.tests.factories import invoice_of, payer
from subscriptions.tests.factories import signed_subscription
from tenancy.models import Role, Tenant

pytestmark = pytest.mark.django_db

StaffMaker = Callable[..., Any]


def html(response: Any) -> str:
    return response.content.decode()


def client_for(tenant: Tenant, make_staff: StaffMaker, role: str = Role.OWNER) -> Client:
    client = Client()
    client.force_login(make_staff(tenant, role, "%s-%s@acme.test" % (role, tenant.slug)))
    return client


def sections(page: str) -> list[str]:
    return re.findall(r'<h2 class="tp-section" id="found-(\w+)">', page)


@pytest.fixture
def world(tenant: Tenant, other_tenant: Tenant) -> dict[str, Any]:
    dupont = payer(tenant)
    durand = payer(tenant, external_id="durand", name="Durand Logistique", email="ap@durand.test")
    plan = platform_plan(tenant, "basic", "10.00")
    signed_subscription(tenant, customer=dupont, plan=plan, external_id="dupont-fleet", devices=("TRK-001", "TRK-002"))
    signed_subscription(tenant, customer=durand, plan=plan, external_id="durand-vans", devices=("VAN-9",))
    invoice = invoice_of(dupont, "100.00", on=date(2026, 2, 1))
    globex = payer(other_tenant, external_id="dupont-gx", name="Dupont Globex", email="compta@globex.test")
    gx_plan = platform_plan(other_tenant, "basic", "10.00")
    signed_subscription(other_tenant, customer=globex, plan=gx_plan, external_id="gx-fleet", devices=("TRK-777",))
    gx_invoice = invoice_of(globex, "100.00", on=date(2026, 2, 1))
    return {"dupont": dupont, "invoice": invoice, "gx_invoice": gx_invoice, "globex": globex}


def test_a_part_of_a_name_finds_customers_and_their_subscriptions(
    world: dict[str, Any], tenant: Tenant, make_staff: StaffMaker
) -> None:
    response = client_for(tenant, make_staff).get("/app/search/", {"q": "dup"})
    page = html(response)
    assert response.status_code == 200
    assert sections(page) == ["customers", "subscriptions"]
    assert 'href="/app/customers/dupont/"' in page
    assert 'href="/app/subscriptions/dupont-fleet/"' in page
    # 1 customer + 1 subscription; never Globex's Dupont
    assert "2 results for “dup”." in page
    assert "Dupont Globex" not in page
    assert "gx-fleet" not in page


def test_an_e_mail_finds_its_customer_and_a_device_prefix_its_devices(
    world: dict[str, Any], tenant: Tenant, make_staff: StaffMaker
) -> None:
    client = client_for(tenant, make_staff)
    page = html(client.get("/app/search/", {"q": "compta@dupont"}))
    assert sections(page) == ["customers"]
    assert "Transports Dupont" in page
    devices = html(client.get("/app/search/", {"q": "trk-"}))
    assert sections(devices) == ["devices"]
    assert re.findall(r"<code>(TRK-\d+)</code>", devices) == ["TRK-001", "TRK-002"]  # not Globex's TRK-777


def test_an_exact_identifier_opens_its_page(world: dict[str, Any], tenant: Tenant, make_staff: StaffMaker) -> None:
    client = client_for(tenant, make_staff)
    invoice: Invoice = world["invoice"]
    assert invoice.number == world["gx_invoice"].number  # each tenant numbers from 1
    # an invoice number: Acme's invoice, not Globex's of the same number
    response = client.get("/app/search/", {"q": invoice.number})
    assert response.status_code == 302
    assert response["Location"] == "/app/billing/invoices/%s/" % invoice.pk
    # a device id, in any case: its subscription
    assert client.get("/app/search/", {"q": "van-9"})["Location"] == "/app/subscriptions/durand-vans/"
    # a subscription's external ID, and its id
    assert client.get("/app/search/", {"q": "dupont-fleet"})["Location"] == "/app/subscriptions/dupont-fleet/"
    pk = world["dupont"].subscriptions.get().pk
    assert client.get("/app/search/", {"q": str(pk)})["Location"] == "/app/subscriptions/dupont-fleet/"
    # a customer's external ID (its subscription's contains it, but is not it)
    assert client.get("/app/search/", {"q": "dupont"})["Location"] == "/app/customers/dupont/"
    # exact=0 lists instead
    listed = client.get("/app/search/", {"q": "dupont", "exact": "0"})
    assert listed.status_code == 200
    assert sections(html(listed)) == ["customers", "subscriptions"]


def test_another_tenants_identifiers_find_nothing(
    world: dict[str, Any], tenant: Tenant, make_staff: StaffMaker
) -> None:
    client = client_for(tenant, make_staff)
    for q in ("dupont-gx", "Globex", "TRK-777", "gx-fleet", str(world["gx_invoice"].pk)):
        response = client.get("/app/search/", {"q": q})
        assert response.status_code == 200, q
        assert "Nothing matches" in html(response), q


def test_each_kind_is_capped_with_a_link_to_the_whole_list(
    tenant: Tenant, make_staff: StaffMaker, django_assert_max_num_queries: Any
) -> None:
    # given 12 customers named "Fleet n" (more than the 10 shown)
    for n in range(12):
        payer(tenant, external_id="fleet-%02d" % n, name="Fleet %02d" % n, email="f%d@x.test" % n)
    client = client_for(tenant, make_staff)
    client.get("/app/")
    # session, user, membership, the tenant's row-level security; one query per kind (4); the
    # header's memberships; the session saved (3 with its savepoint); the security reset
    with django_assert_max_num_queries(13):
        response = client.get("/app/search/", {"q": "fleet"})
    page = html(response)
    assert page.count('href="/app/customers/fleet-') == 10
    assert 'href="/app/customers/?q=fleet"' in page


@pytest.mark.parametrize("role", [Role.FINANCE_VIEWER, Role.SUPPORT_AGENT])
def test_every_role_searches(world: dict[str, Any], tenant: Tenant, make_staff: StaffMaker, role: str) -> None:
    response = client_for(tenant, make_staff, role).get("/app/search/", {"q": "durand"})
    assert response.status_code == 302
    assert response["Location"] == "/app/customers/durand/"


def test_anonymous_is_sent_to_log_in(client: Client) -> None:
    response = client.get("/app/search/?q=dupont")
    assert response.status_code == 302
    assert response["Location"].startswith("/app/login/?next=/app/search/")


@pytest.mark.parametrize("q", ["", "   ", "%", "_", "x" * 5000, "' OR 1=1 --"])
def test_odd_input_never_fails(world: dict[str, Any], tenant: Tenant, make_staff: StaffMaker, q: str) -> None:
    response = client_for(tenant, make_staff).get("/app/search/", {"q": q})
    assert response.status_code == 200
    assert "Nothing matches" in html(response) or not q.strip()


def test_a_nul_character_is_refused_before_the_search(
    world: dict[str, Any], tenant: Tenant, make_staff: StaffMaker
) -> None:
    assert client_for(tenant, make_staff).get("/app/search/", {"q": "a\x00b"}).status_code == 400


def test_the_header_has_the_search_box_on_every_page_in_french(
    world: dict[str, Any], tenant: Tenant, make_staff: StaffMaker
) -> None:
    client = client_for(tenant, make_staff)
    page = html(client.get("/app/customers/", HTTP_ACCEPT_LANGUAGE="fr"))
    assert re.search(r'<form method="get" action="/app/search/" role="search"', page)
    assert '<label for="global-search" class="visually-hidden">Rechercher clients' in page
    assert 'aria-keyshortcuts="/"' in page
    result = html(client.get("/app/search/", {"q": "zzz"}, HTTP_ACCEPT_LANGUAGE="fr"))
    assert "Aucun résultat pour « zzz »." in result


def test_customer_row_of_the_globex_tenant_is_found_there(
    world: dict[str, Any], other_tenant: Tenant, make_staff: StaffMaker
) -> None:
    globex: Customer = world["globex"]
    response = client_for(other_tenant, make_staff).get("/app/search/", {"q": "dup", "exact": "0"})
    page = html(response)
    assert "Dupont Globex" in page
    assert "Transports Dupont" not in page
    assert 'href="/app/customers/%s/"' % globex.external_id in page


def test_the_row_level_security_wall_holds_even_without_the_tenant_filter(
    world: dict[str, Any], tenant: Tenant, make_staff: StaffMaker, monkeypatch: Any
) -> None:
    # given: the customer search forgets its tenant filter
    from backoffice import search

    monkeypatch.setattr(search, "customer_list", lambda **kwargs: Customer.objects.filter(name__icontains="dupont"))
    # when: Acme's staff searches
    page = html(client_for(tenant, make_staff).get("/app/search/", {"q": "dupont", "exact": "0"}))
    # then: the database shows Acme's rows only
    assert "Transports Dupont" in page
    assert "Dupont Globex" not in page
