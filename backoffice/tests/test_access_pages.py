"""Back-office (/app/) through Django's test client: login, roles, API keys, tenant switcher and
the French translation."""

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from customers.models import Customer
from customers.services import customer_create
from tenancy.actors import Actor
from tenancy.keys import hash_api_key
from tenancy.models import ApiKey, ApiKeyScope, AuditLogEntry, Role, Tenant

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"
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


# --- Login -------------------------------------------------------------------------------------


def test_login_page_renders_with_password_field(client: Client) -> None:
    response = client.get("/app/login/")

    assert response.status_code == 200
    body = html(response)
    assert 'type="password"' in body
    assert 'name="password"' in body
    assert 'name="login"' in body
    assert "Log in" in body


def test_login_with_email_and_password_redirects_to_home(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    user = make_staff(tenant, email="owner@acme.test")

    response = client.post("/app/login/", {"login": "owner@acme.test", "password": PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == "/app/"
    assert int(client.session["_auth_user_id"]) == user.pk
    home = client.get("/app/")
    assert home.status_code == 200
    assert "Acme Telematics" in html(home)


def test_login_with_wrong_password_stays_on_page_with_error(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    make_staff(tenant, email="owner@acme.test")

    response = client.post("/app/login/", {"login": "owner@acme.test", "password": "wrong-password-123"})

    assert response.status_code == 200
    assert response.context["form"].errors["__all__"]
    assert 'role="alert"' in html(response)
    assert "Please enter a correct" in html(response)
    assert "_auth_user_id" not in client.session


def test_anonymous_is_redirected_to_login(client: Client) -> None:
    response = client.get("/app/customers/")

    assert response.status_code == 302
    assert response["Location"] == "/app/login/?next=/app/customers/"


# --- Roles -------------------------------------------------------------------------------------


def test_finance_viewer_is_read_only(client: Client, tenant: Tenant, make_staff: StaffMaker) -> None:
    add_customer(tenant, "dupont", "Transports Dupont", "compta@dupont.test")
    logged_in(client, make_staff(tenant, role=Role.FINANCE_VIEWER, email="viewer@acme.test"))

    assert client.get("/app/customers/new/").status_code == 403
    assert client.post("/app/customers/new/", {"external_id": "x", "name": "X"}).status_code == 403
    assert client.get("/app/api-keys/").status_code == 403
    assert client.post("/app/api-keys/", {"name": "sneaky", "scope": "full"}).status_code == 403
    assert client.get("/app/customers/dupont/edit/").status_code == 403
    assert not ApiKey.objects.filter(name="sneaky").exists()
    assert Customer.objects.count() == 1

    listing = client.get("/app/customers/")
    assert listing.status_code == 200
    assert "/app/customers/new/" not in html(listing)
    assert "/app/api-keys/" not in html(listing)
    audit = client.get("/app/audit-log/")
    assert audit.status_code == 200
    assert "customer.created" in html(audit)


def test_support_agent_cannot_see_audit_log(client: Client, tenant: Tenant, make_staff: StaffMaker) -> None:
    logged_in(client, make_staff(tenant, role=Role.SUPPORT_AGENT, email="support@acme.test"))

    assert client.get("/app/audit-log/").status_code == 403
    assert client.get("/app/api-keys/").status_code == 403
    listing = client.get("/app/customers/")
    assert listing.status_code == 200
    assert "/app/audit-log/" not in html(listing)


# --- API keys ----------------------------------------------------------------------------------


def test_api_key_lifecycle(client: Client, tenant: Tenant, make_staff: StaffMaker) -> None:
    user = make_staff(tenant, email="owner@acme.test")
    logged_in(client, user)
    add_customer(tenant, "dupont", "Transports Dupont", "compta@dupont.test")

    response = client.post("/app/api-keys/", {"name": "Device cloud prod", "scope": ApiKeyScope.READ})

    assert response.status_code == 200
    key = response.context["new_key"]
    assert key.startswith("tpk_")
    assert re.fullmatch(r"tpk_[0-9a-f]{8}_[A-Za-z0-9_-]{43}", key)
    assert f'<p class="tp-secret" id="new-key">{key}</p>' in html(response)
    # shown once: neither the browser nor a proxy may keep the page
    assert "no-store" in response["Cache-Control"].split(", ")
    assert "private" in response["Cache-Control"].split(", ")

    row = ApiKey.objects.get(tenant=tenant, name="Device cloud prod")
    assert row.key_hash == hash_api_key(key)
    assert row.scope == "read"
    assert row.created_by == user
    assert row.revoked_at is None
    assert key.startswith(row.prefix)
    stored = ApiKey.objects.filter(pk=row.pk).values().get()
    assert all(key not in str(value) for value in stored.values())
    created = AuditLogEntry.objects.get(tenant=tenant, action="api_key.created")
    assert key not in str(created.after)

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    listed = api.get("/api/v1/customers")
    assert listed.status_code == 200
    assert [c["external_id"] for c in listed.json()["results"]] == ["dupont"]

    again = client.get("/app/api-keys/")
    assert again.status_code == 200
    assert again.context["new_key"] is None
    assert key not in html(again)
    assert row.prefix in html(again)
    assert 'id="new-key"' not in html(again)

    revoked = client.post(f"/app/api-keys/{row.pk}/revoke/")
    assert revoked.status_code == 302
    assert revoked["Location"] == "/app/api-keys/"
    row.refresh_from_db()
    assert row.revoked_at is not None
    assert AuditLogEntry.objects.filter(tenant=tenant, action="api_key.revoked", object_id=str(row.pk)).count() == 1
    assert "Key Device cloud prod revoked." in html(client.get("/app/api-keys/"))

    rejected = api.get("/api/v1/customers")
    assert rejected.status_code == 401
    assert rejected.json()["code"] == "unauthenticated"


def test_api_key_revoke_other_tenant_or_garbage_id(
    client: Client,
    tenant: Tenant,
    other_tenant: Tenant,
    make_staff: StaffMaker,
    make_client: Callable[..., Any],
) -> None:
    logged_in(client, make_staff(tenant))
    make_client(other_tenant)
    foreign = ApiKey.objects.get(tenant=other_tenant)

    response = client.post(f"/app/api-keys/{foreign.pk}/revoke/", follow=True)
    assert response.status_code == 200
    assert "No such API key." in html(response)
    foreign.refresh_from_db()
    assert foreign.revoked_at is None

    garbage = client.post("/app/api-keys/not-a-uuid/revoke/", follow=True)
    assert garbage.status_code == 200
    assert "No such API key." in html(garbage)


# --- Tenant switcher / no tenant ---------------------------------------------------------------


def test_tenant_switcher(client: Client, tenant: Tenant, other_tenant: Tenant, make_staff: StaffMaker) -> None:
    add_customer(tenant, "dupont", "Transports Dupont", "compta@dupont.test")
    add_customer(other_tenant, "globex-1", "Globex Customer One", "ap@globex1.test")
    user = make_staff(tenant, email="multi@example.test")
    make_staff(other_tenant, role=Role.FINANCE_VIEWER, email="multi@example.test")
    logged_in(client, user)

    before = client.get("/app/customers/")
    body = html(before)
    assert '<select id="tenant-switch" name="tenant_id"' in body
    assert f'<option value="{tenant.pk}" selected>Acme Telematics</option>' in body
    assert f'<option value="{other_tenant.pk}" >Globex Devices</option>' in body
    assert "Transports Dupont" in body
    assert "Globex Customer One" not in body

    switched = client.post("/app/tenant/switch/", {"tenant_id": str(other_tenant.pk)})
    assert switched.status_code == 302
    assert switched["Location"] == "/app/"
    assert client.session["tenant_id"] == str(other_tenant.pk)

    after = client.get("/app/customers/")
    body = html(after)
    assert "Globex Customer One" in body
    assert "Transports Dupont" not in body
    assert "Switched to Globex Devices." in body
    assert after.context["current_membership"].role == Role.FINANCE_VIEWER
    assert client.get("/app/customers/new/").status_code == 403


def test_tenant_switch_to_non_member_tenant_is_refused(
    client: Client, tenant: Tenant, make_tenant: Callable[..., Tenant], make_staff: StaffMaker
) -> None:
    second = make_tenant("initech", name="Initech")
    stranger = make_tenant("umbrella", name="Umbrella Corp")
    add_customer(tenant, "dupont", "Transports Dupont", "compta@dupont.test")
    add_customer(stranger, "umbrella-1", "Umbrella Customer", "ap@umbrella.test")
    user = make_staff(tenant, email="multi@example.test")
    make_staff(second, email="multi@example.test")
    logged_in(client, user)
    client.get("/app/")

    refused = client.post("/app/tenant/switch/", {"tenant_id": str(stranger.pk)}, follow=True)

    assert refused.status_code == 200
    assert "You are not a member of that tenant." in html(refused)
    assert client.session["tenant_id"] == str(tenant.pk)
    listing = html(client.get("/app/customers/"))
    assert "Transports Dupont" in listing
    assert "Umbrella Customer" not in listing

    for garbage in ("not-a-uuid", "", "1; DROP TABLE tenancy_tenant"):
        response = client.post("/app/tenant/switch/", {"tenant_id": garbage})
        assert response.status_code == 302
        assert response["Location"] == "/app/"
        assert client.session["tenant_id"] == str(tenant.pk)


def test_tenant_switch_requires_login(client: Client, tenant: Tenant) -> None:
    response = client.post("/app/tenant/switch/", {"tenant_id": str(tenant.pk)})

    assert response.status_code == 302
    assert response["Location"] == "/app/login/"


def test_user_without_membership_gets_no_tenant_page(client: Client, tenant: Tenant) -> None:
    user = get_user_model().objects.create_user(username="lonely@example.test", email="lonely@example.test")
    logged_in(client, user)

    for url in ("/app/", "/app/customers/", "/app/audit-log/"):
        response = client.get(url)
        assert response.status_code == 403
        assert response.templates[0].name == "backoffice/no_tenant.html"
        assert "Your login is not a member of any tenant yet." in html(response)


# --- French ------------------------------------------------------------------------------------


def test_set_language_to_french_translates_the_back_office(
    client: Client, tenant: Tenant, make_staff: StaffMaker
) -> None:
    add_customer(tenant, "dupont", "Transports Dupont", "compta@dupont.test", billing_day=5)
    logged_in(client, make_staff(tenant))
    assert "<h1>Customers</h1>" in html(client.get("/app/customers/"))

    switched = client.post("/i18n/setlang/", {"language": "fr", "next": "/app/customers/"})
    assert switched.status_code == 302
    assert switched["Location"] == "/app/customers/"

    response = client.get("/app/customers/")
    body = html(response)
    assert '<html lang="fr"' in body
    assert "<h1>Clients</h1>" in body
    assert "Jour de facturation" in body
    assert "Nouveau client" in body
    assert "Journal d'audit" in body
    assert "Clés d'API" in body
    assert "Se déconnecter" in body
    assert "Propriétaire" in body
    assert "<h1>Customers</h1>" not in body

    detail = html(client.get("/app/customers/dupont/"))
    assert "N° de TVA intracommunautaire" in detail


def test_accept_language_french(client: Client, tenant: Tenant, make_staff: StaffMaker) -> None:
    logged_in(client, make_staff(tenant))

    body = html(client.get("/app/customers/", HTTP_ACCEPT_LANGUAGE="fr"))
    assert "<h1>Clients</h1>" in body
    assert "Aucun client pour l'instant." in body

    login = html(Client().get("/app/login/", HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9"))
    assert "Se connecter" in login
    assert "Adresse e-mail" in login
    assert "Mot de passe" in login


def test_french_revoke_confirmation_is_an_escaped_attribute(
    client: Client, tenant: Tenant, make_staff: StaffMaker, make_client: Callable[..., Any]
) -> None:
    logged_in(client, make_staff(tenant))
    make_client(tenant)

    body = html(client.get("/app/api-keys/", HTTP_ACCEPT_LANGUAGE="fr"))

    # static/tripod.js asks the form's data-confirm (no inline handler: the Content-Security-Policy
    # refuses them). The French apostrophe is HTML-escaped, so it cannot end the attribute.
    match = re.search(r'<form [^>]*data-confirm="([^"]*)"', body)
    assert match is not None
    assert match.group(1) == "Révoquer cette clé\u00a0? Les systèmes qui l&#x27;utilisent cesseront de fonctionner."


@pytest.mark.parametrize("role", [Role.OWNER, Role.FINANCE_ADMIN, Role.FINANCE_VIEWER, Role.SUPPORT_AGENT])
def test_every_role_opens_a_customer_page_and_the_search(
    client: Client, tenant: Tenant, other_tenant: Tenant, make_staff: StaffMaker, role: str
) -> None:
    add_customer(tenant, "dupont", "Transports Dupont", "compta@dupont.test")
    add_customer(other_tenant, "globex-1", "Globex Client", "ap@globex.test")
    logged_in(client, make_staff(tenant, role=role))

    assert client.get("/app/customers/dupont/").status_code == 200
    assert client.get("/app/search/", {"q": "dup", "exact": "0"}).status_code == 200
    # another tenant's customer: no page, and the search does not find it
    assert client.get("/app/customers/globex-1/").status_code == 404
    assert "Globex Client" not in html(client.get("/app/search/", {"q": "globex"}))
    assert Client().get("/app/search/?q=dup")["Location"] == "/app/login/?next=/app/search/%3Fq%3Ddup"
