"""The back-office side of the portal: the customer page's portal users (invite, change a role,
deactivate, send the invitation again) and the portal's branding in the settings."""

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from customers.models import Customer, PortalUser
from customers.tests.factories import dupont
from tenancy.models import AuditLogEntry, Role, Tenant

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 100
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><rect width="10" height="10"/></svg>'


def client_for(tenant: Tenant, make_staff: object, role: str = Role.OWNER) -> Client:
    client = Client()
    client.force_login(make_staff(tenant, role, "%s@acme.test" % role))  # type: ignore[operator]
    return client


@pytest.fixture
def customer(tenant: Tenant) -> Customer:
    return dupont(tenant, language="en")


def test_staff_invite_a_portal_user_from_the_customer_page(
    customer: Customer, tenant: Tenant, make_staff: object
) -> None:
    staff = client_for(tenant, make_staff)
    page = staff.get("/app/customers/dupont/").content.decode()
    assert 'id="portal-users"' in page
    assert "Nobody logs in to the portal for this customer yet." in page
    response = staff.post(
        "/app/customers/dupont/portal-users/invite/", {"email": "marie@dupont.test", "name": "Marie", "role": "billing"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/app/customers/dupont/#portal-users"
    user = PortalUser.objects.get()
    assert (user.email, user.name, user.role, user.invited_by) == (
        "marie@dupont.test",
        "Marie",
        "billing",
        "owner@acme.test",
    )
    [message] = mail.outbox
    assert "http://testserver/portal/acme/invitation/" in message.body
    page = staff.get("/app/customers/dupont/").content.decode()
    assert 'data-portal-user="marie@dupont.test"' in page
    assert "never" in page
    # the same address again: the form says so, on the customer page
    again = staff.post("/app/customers/dupont/portal-users/invite/", {"email": "MARIE@dupont.test", "role": "viewer"})
    assert again.status_code == 400
    assert "This address is already a portal user (of this customer or another one)." in again.content.decode()
    bad = staff.post("/app/customers/dupont/portal-users/invite/", {"email": "nope", "role": "viewer"})
    assert bad.status_code == 400
    assert PortalUser.objects.count() == 1


def test_staff_change_a_role_deactivate_reactivate_and_resend(
    customer: Customer, tenant: Tenant, make_staff: object
) -> None:
    staff = client_for(tenant, make_staff)
    staff.post("/app/customers/dupont/portal-users/invite/", {"email": "marie@dupont.test", "role": "billing"})
    user = PortalUser.objects.get()
    base = "/app/customers/dupont/portal-users/%s/" % user.pk
    assert staff.post(base, {"role": "viewer"}).status_code == 302
    user.refresh_from_db()
    assert user.role == "viewer"
    staff.post(base, {"active": "0"})
    user.refresh_from_db()
    assert user.is_active is False
    assert "Deactivated" in staff.get("/app/customers/dupont/").content.decode()
    staff.post(base, {"active": "1"})
    user.refresh_from_db()
    assert user.is_active is True
    assert staff.post(base + "resend/").status_code == 302
    assert len(mail.outbox) == 2
    assert list(
        AuditLogEntry.objects.filter(tenant=tenant, action__startswith="portal_user.")
        .order_by("id")
        .values_list("action", flat=True)
    ) == [
        "portal_user.invited",
        "portal_user.updated",
        "portal_user.deactivated",
        "portal_user.reactivated",
        "portal_user.invitation_resent",
    ]
    # another customer's user, through this customer's address: 404
    martin = dupont(tenant, external_id="martin", name="Martin SA", email="billing@martin.test")
    stranger = PortalUser.objects.create(tenant=tenant, customer=martin, email="x@martin.test")
    assert staff.post("/app/customers/dupont/portal-users/%s/" % stranger.pk, {"active": "0"}).status_code == 404
    # 32 dashes are no id: not found, not a server error
    assert staff.post("/app/customers/dupont/portal-users/%s/" % ("-" * 32), {"active": "0"}).status_code == 404
    assert staff.post("/app/customers/dupont/portal-users/%s/resend/" % ("-" * 32)).status_code == 404


def test_readers_see_portal_users_but_cannot_invite(customer: Customer, tenant: Tenant, make_staff: object) -> None:
    agent = client_for(tenant, make_staff, Role.SUPPORT_AGENT)
    page = agent.get("/app/customers/dupont/").content.decode()
    assert 'id="portal-users"' in page
    assert "Invite to the portal" not in page
    response = agent.post("/app/customers/dupont/portal-users/invite/", {"email": "a@b.test", "role": "viewer"})
    assert response.status_code == 403
    assert PortalUser.objects.count() == 0


# --- branding ---------------------------------------------------------------------------------------------


def test_the_brand_colour_and_logo_are_saved_and_shown_on_the_portal(tenant: Tenant, make_staff: object) -> None:
    staff = client_for(tenant, make_staff)
    page = staff.get("/app/settings/portal/").content.decode()
    assert "http://testserver/portal/acme/login/" in page
    response = staff.post(
        "/app/settings/portal/",
        {"brand_colour": "#C2410C", "logo": SimpleUploadedFile("logo.svg", SVG, "image/svg+xml")},
    )
    assert response.status_code == 302
    tenant.refresh_from_db()
    assert (tenant.brand_colour, bytes(tenant.logo), tenant.logo_content_type) == ("#c2410c", SVG, "image/svg+xml")
    assert "--pico-primary:#c2410c" in Client().get("/portal/brand/acme.css").content.decode()
    logo = Client().get("/portal/brand/acme/logo")
    assert (logo.status_code, logo["Content-Type"]) == (200, "image/svg+xml")
    entry = AuditLogEntry.objects.get(tenant=tenant, action="tenant.branding_updated")
    assert entry.before == {"brand_colour": "", "logo": ""}
    after = entry.after or {}
    assert after["brand_colour"] == "#c2410c"
    # the logo's fingerprint: the first 12 hex digits of its SHA-256
    assert len(after["logo"]) == 12
    # removed
    staff.post("/app/settings/portal/", {"brand_colour": "#c2410c", "remove_logo": "on"})
    tenant.refresh_from_db()
    assert (bytes(tenant.logo), tenant.logo_content_type) == (b"", "")


def test_a_bad_colour_and_a_too_big_or_false_logo_are_refused(tenant: Tenant, make_staff: object) -> None:
    staff = client_for(tenant, make_staff)
    # 200 KB = 204,800 bytes: one more is too many
    big = SimpleUploadedFile("logo.png", PNG + b"\0" * (204_800 - len(PNG) + 1), "image/png")
    response = staff.post("/app/settings/portal/", {"brand_colour": "red", "logo": big})
    page = response.content.decode()
    assert response.status_code == 400
    assert "A colour is # and 6 hexadecimal digits, e.g. #0b7285." in page
    assert "A logo is at most 200 KB." in page
    fake = SimpleUploadedFile("logo.png", b"GIF89a" + b"\0" * 10, "image/png")
    response = staff.post("/app/settings/portal/", {"brand_colour": "#0b7285", "logo": fake})
    assert "A logo is a PNG, JPEG or SVG image." in response.content.decode()
    tenant.refresh_from_db()
    assert (tenant.brand_colour, bytes(tenant.logo)) == ("", b"")
    # exactly 200 KB is accepted
    exact = SimpleUploadedFile("logo.png", PNG + b"\0" * (204_800 - len(PNG)), "image/png")
    assert staff.post("/app/settings/portal/", {"brand_colour": "", "logo": exact}).status_code == 302
    tenant.refresh_from_db()
    assert (len(bytes(tenant.logo)), tenant.logo_content_type) == (204_800, "image/png")


def test_only_writers_change_the_branding(tenant: Tenant, make_staff: object) -> None:
    viewer = client_for(tenant, make_staff, Role.FINANCE_VIEWER)
    page = viewer.get("/app/settings/portal/").content.decode()
    assert "Save branding" not in page
    assert viewer.post("/app/settings/portal/", {"brand_colour": "#000000"}).status_code == 403
    tenant.refresh_from_db()
    assert tenant.brand_colour == ""
    assert client_for(tenant, make_staff, Role.SUPPORT_AGENT).get("/app/settings/portal/").status_code == 403
