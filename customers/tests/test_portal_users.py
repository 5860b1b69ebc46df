"""Portal users: invitations (the e-mail and its link), the API (201/409/404/422), role changes,
deactivation and removal, which end the user's sessions (specs/portal.md, "Who logs in")."""

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.conf import settings
from django.core import mail
from django.test import Client
from rest_framework.test import APIClient

from customers.models import PortalInvitation, PortalUser
from customers.portal import portal_session_open, portal_session_resolve
from customers.portal_users import portal_invitation_get
from customers.tests.factories import dupont
from tenancy.models import AuditLogEntry, Tenant

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 6, 10, 9, 0, tzinfo=UTC)
URL = "/api/v1/customers/dupont/portal_users"


def _invite(api: APIClient, **body: str) -> dict:
    response = api.post(
        URL, {"email": "Marie.Curie@Dupont.test", "name": "Marie Curie", "role": "billing", **body}, format="json"
    )
    assert response.status_code == 201, response.content
    return response.json()


@time_machine.travel(T0, tick=False)
def test_an_invitation_is_e_mailed_in_the_customers_language_from_the_tenant_with_a_7_day_link(
    api: APIClient, tenant: Tenant
) -> None:
    # given: Dupont speaks English here
    dupont(tenant, language="en")
    # when
    body = _invite(api)
    # then: the address is kept in lower case, the user is active and has no password yet
    assert (body["customer"], body["email"], body["name"], body["role"]) == (
        "dupont",
        "marie.curie@dupont.test",
        "Marie Curie",
        "billing",
    )
    assert (body["is_active"], body["has_password"], body["two_factor"], body["last_login_at"]) == (
        True,
        False,
        False,
        None,
    )
    assert body["invited_at"] == "2026-06-10T09:00:00Z"
    [message] = mail.outbox
    assert message.to == ["marie.curie@dupont.test"]
    # the tenant's name as the sender's name, on Tripod's address
    assert message.from_email == "Acme Telematics <%s>" % settings.DEFAULT_FROM_EMAIL
    assert message.subject == "Your access to Acme Telematics's customer portal"
    assert "Hello Marie Curie," in message.body
    assert "for the account of Transports Dupont" in message.body
    assert "The link works once, for 7 days." in message.body
    assert "http://testserver/portal/acme/login/?email=marie.curie%40dupont.test" in message.body
    [link] = re.findall(r"http://testserver/portal/acme/invitation/([\w-]+)/", str(message.body))
    invitation = PortalInvitation.objects.get()
    # only the token's hash is kept; it works until 9:00 on 17 June (7 days)
    assert link not in invitation.token_hash
    assert invitation.expires_at == T0 + timedelta(days=7)
    assert portal_invitation_get(tenant=tenant, token=link, at=T0 + timedelta(days=7, seconds=-1)) is not None
    assert portal_invitation_get(tenant=tenant, token=link, at=T0 + timedelta(days=7)) is None
    entry = AuditLogEntry.objects.get(tenant=tenant, action="portal_user.invited")
    assert (entry.object_id, entry.after) == (
        "dupont",
        {"email": "marie.curie@dupont.test", "name": "Marie Curie", "role": "billing"},
    )


def test_a_french_customer_is_invited_in_french(api: APIClient, tenant: Tenant) -> None:
    dupont(tenant, language="fr")
    _invite(api)
    [message] = mail.outbox
    assert message.subject == "Votre accès au portail client de Acme Telematics"
    assert "Bonjour Marie Curie," in message.body
    assert "Le lien fonctionne une fois, pendant 7 jours." in message.body


def test_an_address_already_a_portal_user_of_the_tenant_is_a_409(api: APIClient, tenant: Tenant) -> None:
    dupont(tenant)
    dupont(tenant, external_id="martin", name="Martin SA", email="billing@martin.test")
    _invite(api)
    # the same address, in other letters, for another customer of the same tenant
    response = api.post(
        "/api/v1/customers/martin/portal_users", {"email": "MARIE.curie@dupont.test", "role": "viewer"}, format="json"
    )
    assert response.status_code == 409
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "portal_user_email_taken"
    assert problem["detail"] == (
        "marie.curie@dupont.test is already a portal user of this account or of another customer's."
    )
    assert PortalUser.objects.count() == 1
    assert len(mail.outbox) == 1


def test_bad_input_is_a_422_naming_every_field(api: APIClient, tenant: Tenant) -> None:
    dupont(tenant)
    response = api.post(URL, {"email": "not-an-address", "role": "owner"}, format="json")
    assert response.status_code == 422
    fields = {(e["field"], e["code"]) for e in response.json()["errors"]}
    assert ("role", "invalid_choice") in fields
    response = api.post(URL, {"email": "not-an-address"}, format="json")
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "email", "code": "invalid_email", "message": "not-an-address is not an e-mail address."}
    ]
    assert PortalUser.objects.count() == 0
    assert mail.outbox == []


def test_an_unknown_customer_or_user_is_a_404(api: APIClient, tenant: Tenant, other_tenant: Tenant) -> None:
    dupont(tenant)
    assert api.post("/api/v1/customers/nobody/portal_users", {"email": "a@b.test"}, format="json").status_code == 404
    assert api.patch(URL + "/not-a-uuid", {"role": "viewer"}, format="json").status_code == 404
    dashes = api.patch(URL + "/" + "-" * 32, {"role": "viewer"}, format="json")  # no id, though 32 long
    assert dashes.status_code == 404
    assert dashes["Content-Type"] == "application/problem+json"
    assert api.delete(URL + "/1b4e28ba-2fa1-11d2-883f-0016d3cca427").status_code == 404
    # another customer's portal user, through this customer's address
    dupont(tenant, external_id="martin", name="Martin SA", email="billing@martin.test")
    other = api.post("/api/v1/customers/martin/portal_users", {"email": "x@martin.test"}, format="json").json()
    response = api.patch(URL + "/" + other["id"], {"role": "viewer"}, format="json")
    assert response.status_code == 404
    assert response.json()["code"] == "portal_user_not_found"


def test_the_list_the_role_change_and_the_removal(api: APIClient, tenant: Tenant) -> None:
    dupont(tenant)
    first = _invite(api)
    _invite(api, email="anne@dupont.test", name="Anne", role="viewer")
    listed = api.get(URL).json()
    assert [(u["email"], u["role"]) for u in listed["results"]] == [
        ("anne@dupont.test", "viewer"),
        ("marie.curie@dupont.test", "billing"),
    ]
    assert listed["next"] is None
    changed = api.patch(URL + "/" + first["id"], {"role": "admin", "name": "Marie S. Curie"}, format="json")
    assert changed.status_code == 200
    assert (changed.json()["role"], changed.json()["name"]) == ("admin", "Marie S. Curie")
    entry = AuditLogEntry.objects.get(tenant=tenant, action="portal_user.updated")
    assert (entry.before, entry.after) == (
        {"email": "marie.curie@dupont.test", "name": "Marie Curie", "role": "billing"},
        {"email": "marie.curie@dupont.test", "name": "Marie S. Curie", "role": "admin"},
    )
    bad = api.patch(URL + "/" + first["id"], {"role": "king"}, format="json")
    assert bad.status_code == 422
    assert api.delete(URL + "/" + first["id"]).status_code == 204
    assert [u["email"] for u in api.get(URL).json()["results"]] == ["anne@dupont.test"]
    assert AuditLogEntry.objects.filter(tenant=tenant, action="portal_user.removed").count() == 1
    # removed, the address may be invited again
    _invite(api)


def test_a_deactivated_users_session_stops_working(api: APIClient, tenant: Tenant) -> None:
    customer = dupont(tenant)
    body = _invite(api)
    user = PortalUser.objects.get(pk=body["id"])
    opened = portal_session_open(customer=customer, user=user, at=T0)
    browser = Client()
    browser.cookies[settings.PORTAL_SESSION_COOKIE] = opened.token
    assert portal_session_resolve(token=opened.token, at=T0 + timedelta(minutes=1)) is not None
    # when
    response = api.patch(URL + "/" + body["id"], {"is_active": False}, format="json")
    # then: the session is over, and its cookie opens nothing
    assert response.status_code == 200
    assert response.json()["is_active"] is False
    assert portal_session_resolve(token=opened.token, at=T0 + timedelta(minutes=1)) is None
    assert browser.get("/portal/security/").status_code == 302
    assert AuditLogEntry.objects.filter(tenant=tenant, action="portal_user.deactivated").count() == 1
    # reactivated, the user logs in again (the old session stays over)
    assert api.patch(URL + "/" + body["id"], {"is_active": True}, format="json").json()["is_active"] is True
    assert portal_session_resolve(token=opened.token, at=T0 + timedelta(minutes=2)) is None
