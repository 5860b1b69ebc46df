"""The invitation link, the user's security page (password, second factor) and the portal users page
of a customer's admins."""

import re
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
import time_machine
from django.conf import settings
from django.contrib.auth.hashers import check_password
from django.core import mail
from django.test import Client

from customers.models import Customer, PortalSession, PortalUser
from customers.portal import portal_session_open, portal_session_resolve
from customers.portal_users import portal_user_invite
from customers.tests.factories import dupont
from portal.tests.conftest import PortalClientMaker, PortalUserMaker
from tenancy.actors import Actor
from tenancy.models import AuditLogEntry, Tenant

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 6, 10, 9, 0, tzinfo=UTC)
PASSWORD = "a long and quiet river"


@pytest.fixture
def customer(tenant: Tenant) -> Customer:
    return dupont(tenant, language="en")


def _invitation_path(customer: Customer) -> str:
    portal_user_invite(
        tenant=customer.tenant,
        customer=customer,
        email="marie@dupont.test",
        name="Marie",
        role="billing",
        actor=Actor.system("tests"),
        at=T0,
    )
    [url] = re.findall(r"(http://\S+/portal/acme/invitation/\S+/)", str(mail.outbox[-1].body))
    assert url.startswith(settings.TRIPOD_PUBLIC_URL + "/portal/acme/invitation/")
    return url.removeprefix(settings.TRIPOD_PUBLIC_URL)


# --- invitations ---------------------------------------------------------------------------------------


@time_machine.travel(T0 + timedelta(days=1), tick=False)
def test_an_invitation_lets_the_person_in_once_and_sets_their_password(customer: Customer, tenant: Tenant) -> None:
    path = _invitation_path(customer)
    browser = Client()
    # a GET (an e-mail scanner's too) uses nothing
    page = browser.get(path)
    assert page.status_code == 200
    assert "Acme Telematics opened the portal of Transports Dupont's account to you" in page.content.decode()
    # a weak password is refused, and the link still works
    weak = browser.post(path, {"password": "short", "password2": "short"})
    assert weak.status_code == 400
    assert "This password is too short." in weak.content.decode()
    differ = browser.post(path, {"password": PASSWORD, "password2": PASSWORD + "!"})
    assert "The two passwords differ." in differ.content.decode()
    response = browser.post(path, {"password": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/portal/"
    user = PortalUser.objects.get()
    assert check_password(PASSWORD, user.password)
    assert AuditLogEntry.objects.get(tenant=tenant, action="portal.login").after == {"via": "invitation"}
    assert AuditLogEntry.objects.get(tenant=tenant, action="portal_user.invitation_accepted").after == {
        "email": "marie@dupont.test",
        "password_set": True,
    }
    # once only
    assert Client().get(path).status_code == 410
    assert Client().post(path, {}).status_code == 410


def test_an_invitation_expires_after_7_days_and_a_new_one_voids_it(customer: Customer) -> None:
    path = _invitation_path(customer)
    with time_machine.travel(T0 + timedelta(days=7), tick=False):
        response = Client().get(path)
    assert response.status_code == 410
    assert "An invitation link works once, for 7 days" in response.content.decode()
    with time_machine.travel(T0 + timedelta(days=8), tick=False):
        from customers.portal_users import portal_user_invitation_resend

        user = PortalUser.objects.get()
        user.customer = customer
        fresh = portal_user_invitation_resend(tenant=customer.tenant, user=user, actor=Actor.system("t"), at=T0)
    assert Client().get(path).status_code == 410
    with time_machine.travel(T0 + timedelta(days=1), tick=False):
        assert Client().get(fresh.url.removeprefix(settings.TRIPOD_PUBLIC_URL)).status_code == 200


# --- the security page -----------------------------------------------------------------------------------


def test_setting_then_changing_the_password_ends_the_other_sessions(
    customer: Customer, portal_client: PortalClientMaker, tenant: Tenant
) -> None:
    browser = portal_client(customer)
    user = browser.portal_user  # type: ignore[attr-defined]
    other = portal_session_open(customer=customer, user=user, at=datetime.now(tz=UTC))
    page = browser.get("/portal/security/").content.decode()
    assert "You log in with a code sent by e-mail." in page
    assert "Current password" not in page
    response = browser.post("/portal/security/", {"action": "password", "password": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 302
    user.refresh_from_db()
    assert check_password(PASSWORD, user.password)
    now = datetime.now(tz=UTC)
    # the other session is over; this one goes on
    assert portal_session_resolve(token=other.token, at=now) is None
    assert browser.get("/portal/security/").status_code == 200
    # changing it asks for the current one
    wrong = browser.post(
        "/portal/security/",
        {"action": "password", "current_password": "nope", "password": PASSWORD + "2", "password2": PASSWORD + "2"},
    )
    assert wrong.status_code == 400
    assert "The current password is not right." in wrong.content.decode()
    done = browser.post(
        "/portal/security/",
        {"action": "password", "current_password": PASSWORD, "password": PASSWORD + "2", "password2": PASSWORD + "2"},
    )
    assert done.status_code == 302
    actions = list(
        AuditLogEntry.objects.filter(tenant=tenant, action__startswith="portal_user.password")
        .order_by("id")
        .values_list("action", "after__sessions_ended")
    )
    assert actions == [("portal_user.password_set", 1), ("portal_user.password_changed", 0)]


def test_setting_up_and_turning_off_the_second_factor(
    customer: Customer, portal_client: PortalClientMaker, tenant: Tenant
) -> None:
    browser = portal_client(customer)
    user = browser.portal_user  # type: ignore[attr-defined]
    other = portal_session_open(customer=customer, user=user, at=datetime.now(tz=UTC))
    page = browser.get("/portal/security/?setup=totp").content.decode()
    # the QR code inline (SVG, no script or style), and the key for typing it
    assert '<svg width="' in page
    assert "<script" not in page.split("<svg", 1)[1].split("</svg>", 1)[0]
    [secret] = re.findall(r"<code data-totp-secret>([A-Z2-7]+)</code>", page)
    [setup] = re.findall(r'name="setup" value="([^"]+)"', page)
    wrong = browser.post("/portal/security/", {"action": "totp-enable", "setup": setup, "code": "000000"})
    if pyotp.TOTP(secret).now() != "000000":
        assert wrong.status_code == 400
        assert "This code is not the one your app shows now." in wrong.content.decode()
    # a key of one's own choosing is not accepted: the set-up is signed
    forged = browser.post("/portal/security/", {"action": "totp-enable", "setup": "JBSWY3DPEHPK3PXP", "code": "123456"})
    assert "This set-up has expired: start again." in forged.content.decode()
    response = browser.post(
        "/portal/security/", {"action": "totp-enable", "setup": setup, "code": pyotp.TOTP(secret).now()}
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.totp_secret == secret
    assert portal_session_resolve(token=other.token, at=datetime.now(tz=UTC)) is None
    assert 'data-totp="on"' in browser.get("/portal/security/").content.decode()
    # off, with a current code
    assert browser.post("/portal/security/", {"action": "totp-disable", "code": "12"}).status_code == 400
    off = browser.post("/portal/security/", {"action": "totp-disable", "code": pyotp.TOTP(secret).now()})
    assert off.status_code == 302
    user.refresh_from_db()
    assert user.totp_secret == ""
    assert list(
        AuditLogEntry.objects.filter(tenant=tenant, action__startswith="portal_user.second_factor")
        .order_by("id")
        .values_list("action", flat=True)
    ) == ["portal_user.second_factor_added", "portal_user.second_factor_removed"]


def test_the_layout_links_to_the_security_page(customer: Customer, portal_client: PortalClientMaker) -> None:
    page = portal_client(customer, role="viewer").get("/portal/security/").content.decode()
    assert 'href="/portal/security/"' in page


# --- the portal users page ---------------------------------------------------------------------------------


def test_only_admins_see_the_portal_users_page(customer: Customer, portal_client: PortalClientMaker) -> None:
    assert portal_client(customer, role="viewer").get("/portal/users/").status_code == 403
    assert portal_client(customer, role="billing").get("/portal/users/").status_code == 403
    page = portal_client(customer, role="admin").get("/portal/users/").content.decode()
    assert 'href="/portal/users/" aria-current="page"' in page


def test_an_admin_invites_a_colleague_changes_a_role_and_removes_someone(
    customer: Customer, portal_client: PortalClientMaker, make_portal_user: PortalUserMaker, tenant: Tenant
) -> None:
    admin = portal_client(customer, role="admin")
    me = admin.portal_user  # type: ignore[attr-defined]
    response = admin.post("/portal/users/invite/", {"email": "Anne@Dupont.test", "name": "Anne", "role": "viewer"})
    assert response.status_code == 302
    anne = PortalUser.objects.get(email="anne@dupont.test")
    assert (anne.customer_id, anne.role) == (customer.pk, "viewer")
    [message] = mail.outbox
    assert message.to == ["anne@dupont.test"]
    assert "http://testserver/portal/acme/invitation/" in message.body
    entry = AuditLogEntry.objects.get(tenant=tenant, action="portal_user.invited")
    assert (entry.actor_type, entry.actor_id) == ("portal_user", str(me.pk))
    # the same address again
    again = admin.post("/portal/users/invite/", {"email": "anne@dupont.test", "role": "viewer"})
    assert again.status_code == 400
    assert "This address already has a portal login with us." in again.content.decode()
    # role
    assert admin.post("/portal/users/%s/role/" % anne.pk, {"role": "billing"}).status_code == 302
    anne.refresh_from_db()
    assert anne.role == "billing"
    # not one's own role, nor oneself
    admin.post("/portal/users/%s/role/" % me.pk, {"role": "viewer"})
    admin.post("/portal/users/%s/remove/" % me.pk)
    me.refresh_from_db()
    assert me.role == "admin"
    # removal ends the user's sessions (the row goes)
    session = portal_session_open(customer=customer, user=anne, at=datetime.now(tz=UTC))
    assert admin.post("/portal/users/%s/remove/" % anne.pk).status_code == 302
    assert not PortalUser.objects.filter(pk=anne.pk).exists()
    assert portal_session_resolve(token=session.token, at=datetime.now(tz=UTC)) is None


def test_another_customers_portal_user_is_a_404(
    customer: Customer, tenant: Tenant, portal_client: PortalClientMaker, make_portal_user: PortalUserMaker
) -> None:
    martin = dupont(tenant, external_id="martin", name="Martin SA", email="billing@martin.test")
    stranger = make_portal_user(martin, email="x@martin.test")
    admin = portal_client(customer, role="admin")
    assert admin.post("/portal/users/%s/role/" % stranger.pk, {"role": "viewer"}).status_code == 404
    assert admin.post("/portal/users/%s/remove/" % stranger.pk).status_code == 404
    # 32 dashes are no user id: not found, not a server error
    assert admin.post("/portal/users/%s/role/" % ("-" * 32), {"role": "viewer"}).status_code == 404
    assert admin.post("/portal/users/%s/remove/" % ("-" * 32)).status_code == 404
    assert PortalUser.objects.filter(pk=stranger.pk, role="admin").exists()
    assert "x@martin.test" not in admin.get("/portal/users/").content.decode()
    assert PortalSession.objects.filter(user=stranger).count() == 0


def test_a_portal_link_session_has_no_login_to_secure_but_manages_users_as_an_admin(customer: Customer) -> None:
    opened = portal_session_open(customer=customer, user=None, at=datetime.now(tz=UTC), via="link")
    browser = Client()
    browser.cookies[settings.PORTAL_SESSION_COOKIE] = opened.token
    page = browser.get("/portal/security/").content.decode()
    assert "there is no portal login to secure" in page
    # and the layout offers no security link to such a session
    assert 'href="/portal/security/"' not in page
    assert browser.get("/portal/users/").status_code == 200
    assert browser.post("/portal/users/invite/", {"email": "anne@dupont.test", "role": "viewer"}).status_code == 302
    entry = AuditLogEntry.objects.get(tenant=customer.tenant, action="portal_user.invited")
    assert (entry.actor_type, entry.actor_label) == ("portal_user", "portal link")


def test_the_users_entry_of_the_menu_is_for_admins_only(customer: Customer, portal_client: PortalClientMaker) -> None:
    admin_page = portal_client(customer, role="admin").get("/portal/security/").content.decode()
    viewer_page = portal_client(customer, role="viewer").get("/portal/security/").content.decode()
    assert 'href="/portal/users/"' in admin_page
    assert 'href="/portal/users/"' not in viewer_page
