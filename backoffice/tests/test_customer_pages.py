"""Customer pages of the back-office (/app/customers/...) through Django's test client: the list
and its search, creating and editing a customer, and tenant isolation."""

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from customers.models import Customer
from customers.services import customer_create
from tenancy.actors import Actor
from tenancy.models import AuditLogEntry, Role, Tenant

pytestmark = pytest.mark.django_db

StaffMaker = Callable[..., Any]


def add_customer(tenant: Tenant, external_id: str, name: str, email: str, **fields: Any) -> Customer:
    return customer_create(
        tenant=tenant,
        actor=Actor.system(),
        at=timezone.now(),
        external_id=external_id,
        name=name,
        email=email,
        country=fields.pop("country", "FR"),
        **fields,
    )


def logged_in(client: Client, user: Any) -> Client:
    client.force_login(user)
    return client


def html(response: Any) -> str:
    return response.content.decode()


def form_data(customer: Customer, **changes: Any) -> dict[str, Any]:
    data = {
        "external_id": customer.external_id,
        "name": customer.name,
        "email": customer.email,
        "country": customer.country,
        "currency": customer.currency,
        "timezone": customer.timezone,
        "language": customer.language,
        "tax_id": customer.tax_id,
        "billing_day": "" if customer.billing_day is None else customer.billing_day,
    }
    data.update(changes)
    return data


# --- Customers list ----------------------------------------------------------------------------


def test_customer_list_shows_only_current_tenant_customers(
    client: Client, tenant: Tenant, other_tenant: Tenant, make_staff: StaffMaker
) -> None:
    add_customer(tenant, "dupont", "Transports Dupont", "compta@dupont.test", billing_day=5)
    add_customer(tenant, "martin", "Martin Logistique", "factures@martin.test")
    add_customer(other_tenant, "secret-co", "Globex Secret Customer", "ap@secret.test")
    logged_in(client, make_staff(tenant))

    response = client.get("/app/customers/")

    assert response.status_code == 200
    body = html(response)
    assert "<html" in body
    assert "Transports Dupont" in body
    assert "Martin Logistique" in body
    assert "/app/customers/dupont/" in body
    assert "Globex Secret Customer" not in body
    assert "secret-co" not in body
    assert [c.external_id for c in response.context["page"].object_list] == ["martin", "dupont"]


def test_customer_list_search_filters(client: Client, tenant: Tenant, make_staff: StaffMaker) -> None:
    add_customer(tenant, "dupont", "Transports Dupont", "compta@dupont.test")
    add_customer(tenant, "martin", "Martin Logistique", "factures@martin.test")
    logged_in(client, make_staff(tenant))

    response = client.get("/app/customers/", {"q": "dupont"})

    body = html(response)
    assert response.status_code == 200
    assert "Transports Dupont" in body
    assert "Martin Logistique" not in body
    assert response.context["q"] == "dupont"

    nothing = client.get("/app/customers/", {"q": "nobody-matches"})
    assert "No customer matches this search." in html(nothing)


def test_customer_list_htmx_request_returns_rows_partial(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    add_customer(tenant, "dupont", "Transports Dupont", "compta@dupont.test")
    add_customer(tenant, "martin", "Martin Logistique", "factures@martin.test")
    logged_in(client, make_staff(tenant))

    response = client.get("/app/customers/", {"q": "martin"}, HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    body = html(response)
    assert "<html" not in body
    assert "<body" not in body
    assert body.lstrip().startswith("<table")
    assert "Martin Logistique" in body
    assert "Transports Dupont" not in body
    assert [t.name for t in response.templates] == [
        "backoffice/customers/_rows.html",
        "backoffice/_pager.html",
    ]


# --- Customer create / edit / isolation --------------------------------------------------------


def test_owner_creates_customer(
    client: Client, tenant: Tenant, make_staff: StaffMaker, customer_body: dict[str, Any]
) -> None:
    user = make_staff(tenant, email="owner@acme.test")
    logged_in(client, user)
    assert client.get("/app/customers/new/").status_code == 200

    response = client.post("/app/customers/new/", {**customer_body, "tax_id": "FR 40 303 265 045", "billing_day": 15})

    assert response.status_code == 302
    assert response["Location"] == "/app/customers/dupont/"
    customer = Customer.objects.get(tenant=tenant, external_id="dupont")
    assert customer.name == "Transports Dupont"
    assert customer.email == "compta@dupont.test"
    assert customer.currency == "EUR"
    assert customer.timezone == "Europe/Paris"
    assert customer.language == "fr"
    assert customer.country == "FR"
    assert customer.tax_id == "FR40303265045"
    assert customer.billing_day == 15
    assert customer.partner is None
    entry = AuditLogEntry.objects.get(tenant=tenant, action="customer.created")
    assert entry.object_type == "customer"
    assert entry.object_id == "dupont"
    assert entry.actor_type == "user"
    assert entry.actor_id == str(user.pk)
    assert entry.actor_label == "owner@acme.test"
    assert entry.before is None
    assert entry.after is not None
    assert entry.after["billing_day"] == 15
    assert entry.after["tax_id"] == "FR40303265045"

    detail = client.get(response["Location"])
    assert detail.status_code == 200
    assert "Customer Transports Dupont created." in html(detail)
    assert "FR40303265045" in html(detail)


def test_create_customer_with_bad_currency_and_timezone_rerenders_form(
    client: Client, tenant: Tenant, make_staff: StaffMaker, customer_body: dict[str, Any]
) -> None:
    logged_in(client, make_staff(tenant))

    response = client.post("/app/customers/new/", {**customer_body, "currency": "EUX", "timezone": "Mars/Olympus"})

    assert response.status_code == 200
    form = response.context["form"]
    assert form.errors["currency"] == ["Choose a currency from the list (EUX is not an ISO 4217 currency code)."]
    assert form.errors["timezone"] == ["Choose a time zone from the list (Mars/Olympus is not one)."]
    body = html(response)
    assert "EUX is not an ISO 4217 currency code" in body
    assert "Mars/Olympus is not one" in body
    assert 'value="Transports Dupont"' in body
    assert Customer.objects.count() == 0
    assert not AuditLogEntry.objects.filter(action="customer.created").exists()


def test_edit_customer_changes_billing_day_and_audits_it(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    customer = add_customer(tenant, "dupont", "Transports Dupont", "compta@dupont.test", billing_day=5)
    logged_in(client, make_staff(tenant, role=Role.FINANCE_ADMIN, email="fa@acme.test"))
    page = client.get("/app/customers/dupont/edit/")
    assert page.status_code == 200
    assert page.context["form"].initial["billing_day"] == 5

    response = client.post("/app/customers/dupont/edit/", form_data(customer, billing_day=28))

    assert response.status_code == 302
    assert response["Location"] == "/app/customers/dupont/"
    customer.refresh_from_db()
    assert customer.billing_day == 28
    assert customer.name == "Transports Dupont"
    entry = AuditLogEntry.objects.get(tenant=tenant, action="customer.updated")
    assert entry.object_id == "dupont"
    assert entry.actor_label == "fa@acme.test"
    assert entry.before == {"billing_day": 5}
    assert entry.after == {"billing_day": 28}


def test_edit_cannot_change_external_id(client: Client, tenant: Tenant, make_staff: StaffMaker) -> None:
    customer = add_customer(tenant, "dupont", "Transports Dupont", "compta@dupont.test")
    logged_in(client, make_staff(tenant))

    response = client.post("/app/customers/dupont/edit/", form_data(customer, external_id="hijacked", name="Dupont SA"))

    assert response.status_code == 302
    assert list(Customer.objects.values_list("external_id", "name")) == [("dupont", "Dupont SA")]


def test_other_tenant_customer_is_404(
    client: Client, tenant: Tenant, other_tenant: Tenant, make_staff: StaffMaker
) -> None:
    add_customer(other_tenant, "secret-co", "Globex Secret Customer", "ap@secret.test")
    logged_in(client, make_staff(tenant))

    assert client.get("/app/customers/secret-co/").status_code == 404
    assert client.get("/app/customers/secret-co/edit/").status_code == 404
    response = client.post("/app/customers/secret-co/edit/", {"name": "Pwned", "billing_day": 3})
    assert response.status_code == 404
    assert Customer.objects.get(external_id="secret-co").name == "Globex Secret Customer"


def test_a_control_character_in_a_customer_field_is_refused_on_the_form(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    # a name with U+0001 was stored; that customer's invoices then could not be made into Factur-X
    customer = add_customer(tenant, "dupont", "Transports Dupont", "compta@dupont.test")
    logged_in(client, make_staff(tenant))

    response = client.post("/app/customers/dupont/edit/", form_data(customer, name="Ctl\u0001Name"))

    assert response.status_code == 200
    assert "Remove the invisible character U+0001: it cannot be printed or stored." in html(response)
    customer.refresh_from_db()
    assert customer.name == "Transports Dupont"


# --- Postal address --------------------------------------------------------------------------------


def test_the_postal_address_is_entered_on_the_form_and_shown_on_the_customer_page(
    client: Client, tenant: Tenant, make_staff: StaffMaker, customer_body: dict[str, Any]
) -> None:
    logged_in(client, make_staff(tenant))
    address = {
        "address_line1": "12 rue des Lilas",
        "address_line2": "Bâtiment C",
        "postal_code": "69003",
        "city": "Lyon",
    }

    response = client.post("/app/customers/new/", {**customer_body, **address})

    assert response.status_code == 302
    customer = Customer.objects.get(tenant=tenant, external_id="dupont")
    assert (customer.address_line1, customer.address_line2, customer.postal_code, customer.city) == (
        "12 rue des Lilas",
        "Bâtiment C",
        "69003",
        "Lyon",
    )
    english = html(client.get("/app/customers/dupont/"))
    assert "<dt>Postal address</dt><dd>12 rue des Lilas<br>Bâtiment C<br>69003 Lyon<br>France (FR)</dd>" in english
    french = html(client.get("/app/customers/dupont/", HTTP_ACCEPT_LANGUAGE="fr"))
    assert "<dt>Adresse postale</dt><dd>12 rue des Lilas<br>Bâtiment C<br>69003 Lyon<br>France (FR)</dd>" in french


def test_editing_part_of_the_address_keeps_the_rest_and_is_audited(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    customer = add_customer(
        tenant,
        "dupont",
        "Transports Dupont",
        "compta@dupont.test",
        address_line1="12 rue des Lilas",
        postal_code="69003",
        city="Lyon",
    )
    logged_in(client, make_staff(tenant))
    page = client.get("/app/customers/dupont/edit/")
    assert page.context["form"].initial["postal_code"] == "69003"
    assert 'value="12 rue des Lilas"' in html(page)

    response = client.post(
        "/app/customers/dupont/edit/",
        form_data(customer, address_line1="12 rue des Lilas", postal_code="69007", city="Lyon"),
    )

    assert response.status_code == 302
    customer.refresh_from_db()
    assert (customer.address_line1, customer.postal_code, customer.city) == ("12 rue des Lilas", "69007", "Lyon")
    entry = AuditLogEntry.objects.get(tenant=tenant, action="customer.updated")
    assert (entry.before, entry.after) == ({"postal_code": "69003"}, {"postal_code": "69007"})


def test_a_bad_address_is_shown_on_its_fields(client: Client, tenant: Tenant, make_staff: StaffMaker) -> None:
    customer = add_customer(tenant, "dupont", "Transports Dupont", "compta@dupont.test")
    logged_in(client, make_staff(tenant))

    # a 4-digit postal code in France, and a city without a street line
    response = client.post("/app/customers/dupont/edit/", form_data(customer, postal_code="6900", city="Lyon"))

    assert response.status_code == 200
    form = response.context["form"]
    assert form.errors["postal_code"] == ["A postal code in FR is 5 digits, e.g. 75008."]
    assert form.errors["address_line1"] == ["Address line 1 is required once an address is given."]
    customer.refresh_from_db()
    assert (customer.postal_code, customer.city) == ("", "")


def test_a_customer_without_an_address_says_so(client: Client, tenant: Tenant, make_staff: StaffMaker) -> None:
    add_customer(tenant, "berlin", "Berlin Fleet", "ap@berlin.test", country="DE")
    logged_in(client, make_staff(tenant))

    body = html(client.get("/app/customers/berlin/", HTTP_ACCEPT_LANGUAGE="fr"))

    assert '<dt>Adresse postale</dt><dd><span class="tp-muted">aucune pour l\'instant</span><br>Allemagne (DE)' in body


def test_editing_the_currency_of_a_customer_with_a_balance_is_refused_on_the_form(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    customer = add_customer(tenant, "dupont", "Transports Dupont", "compta@dupont.test")
    Customer.objects.filter(pk=customer.pk).update(balance="30.00")  # 30.00 EUR of credit
    logged_in(client, make_staff(tenant, role=Role.FINANCE_ADMIN, email="fa@acme.test"))

    response = client.post("/app/customers/dupont/edit/", form_data(customer, currency="USD"))

    assert response.status_code == 200
    assert "a credit balance of 30.00 EUR" in html(response)
    customer.refresh_from_db()
    assert customer.currency == "EUR"
