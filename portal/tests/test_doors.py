"""Portal links, portal sessions and their separation from staff logins (specs/portal.md, "Who
logs in")."""

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.test import Client
from rest_framework.test import APIClient

from customers.models import PortalLink, PortalSession
from customers.portal import portal_session_resolve
from customers.tests.factories import dupont
from tenancy.models import AuditLogEntry, Tenant

pytestmark = pytest.mark.django_db

T0 = "2026-06-10T09:00:00Z"


def _link(api: APIClient, return_url: str = "https://app.acme.test/account") -> dict[str, Any]:
    response = api.post("/api/v1/customers/dupont/portal_sessions", {"return_url": return_url}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


@time_machine.travel(T0, tick=False)
def test_a_portal_link_opens_one_session_once_within_15_minutes(api: APIClient, tenant: Tenant) -> None:
    customer = dupont(tenant)
    body = _link(api)
    assert body["customer"] == "dupont"
    assert body["return_url"] == "https://app.acme.test/account"
    # 09:00 + 15 minutes
    assert body["expires_at"] == "2026-06-10T09:15:00Z"
    path = body["url"].removeprefix("http://testserver")
    assert path.startswith("/portal/link/")
    browser = Client()
    response = browser.get(path)
    assert response.status_code == 302
    assert response["Location"] == "/portal/"
    token = response.cookies[settings.PORTAL_SESSION_COOKIE].value
    assert response.cookies[settings.PORTAL_SESSION_COOKIE]["httponly"]
    session = portal_session_resolve(token=token, at=PortalLink.objects.get().created_at + timedelta(hours=11))
    assert session is not None
    assert (session.customer_id, session.user_id, session.return_url) == (
        customer.pk,
        None,
        "https://app.acme.test/account",
    )
    # the session lives 12 hours: at 21:00 it is over
    assert portal_session_resolve(token=token, at=session.created_at + timedelta(hours=12)) is None
    # single use: the same address again opens nothing
    again = Client().get(path)
    assert again.status_code == 410
    assert settings.PORTAL_SESSION_COOKIE not in again.cookies
    assert PortalSession.objects.count() == 1
    entry = AuditLogEntry.objects.get(tenant=tenant, action="portal.login")
    assert (entry.actor_type, entry.actor_label, entry.after) == ("portal_user", "portal link", {"via": "link"})
    assert AuditLogEntry.objects.filter(tenant=tenant, action="portal_link.created", object_id="dupont").count() == 1


def test_a_link_followed_after_15_minutes_opens_nothing(api: APIClient, tenant: Tenant) -> None:
    dupont(tenant)
    with time_machine.travel(T0, tick=False):
        path = _link(api)["url"].removeprefix("http://testserver")
    with time_machine.travel("2026-06-10T09:15:00Z", tick=False):
        assert Client().get(path).status_code == 410
    with time_machine.travel("2026-06-10T09:14:59Z", tick=False):
        assert Client().get(path).status_code == 302


def test_portal_sessions_refuse_a_return_url_that_is_not_an_http_address(api: APIClient, tenant: Tenant) -> None:
    dupont(tenant)
    for bad in ("javascript:alert(1)", "/relative/path", "ftp://files.acme.test/x"):
        response = api.post("/api/v1/customers/dupont/portal_sessions", {"return_url": bad}, format="json")
        assert response.status_code == 422, bad
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["errors"][0]["field"] == "return_url"
    response = api.post("/api/v1/customers/nobody/portal_sessions", {}, format="json")
    assert response.status_code == 404
    assert PortalLink.objects.count() == 0


def test_a_staff_login_grants_nothing_in_the_portal_and_a_portal_session_nothing_in_the_back_office(
    tenant: Tenant, make_staff: Any, portal_client: Any
) -> None:
    customer = dupont(tenant)
    staff = Client()
    staff.force_login(make_staff(tenant))
    response = staff.get("/portal/")
    assert response.status_code == 302
    assert response["Location"] == "/portal/signed-out/"
    portal = portal_client(customer)
    response = portal.get("/app/")
    assert response.status_code == 302
    assert response["Location"].startswith("/app/login/")
    assert portal.get("/api/v1/customers").status_code == 401


def test_logout_ends_the_session_and_forgets_the_cookie(tenant: Tenant, portal_client: Any) -> None:
    customer = dupont(tenant)
    portal = portal_client(customer)
    token = portal.cookies[settings.PORTAL_SESSION_COOKIE].value
    response = portal.post("/portal/logout/")
    assert response.status_code == 302
    assert response["Location"] == "/portal/signed-out/"
    assert PortalSession.objects.get().ended_at is not None
    browser = Client()
    browser.cookies[settings.PORTAL_SESSION_COOKIE] = token
    assert browser.get("/portal/")["Location"] == "/portal/signed-out/"


def test_the_brand_style_sheet_carries_the_tenants_colour_and_nothing_else(tenant: Tenant) -> None:
    tenant.brand_colour = "#0b7285"
    tenant.save(update_fields=["brand_colour"])
    css = Client().get("/portal/brand/acme.css").content.decode()
    assert "--pico-primary:#0b7285;" in css
    tenant.brand_colour = "red;}b{"
    tenant.save(update_fields=["brand_colour"])
    assert Client().get("/portal/brand/acme.css").content == b""
    assert Client().get("/portal/brand/acme/logo").status_code == 404
