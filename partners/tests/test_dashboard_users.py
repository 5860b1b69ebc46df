"""A partner's admins invite colleagues, change their role and remove them; sales users do not see
the page; an admin cannot change or remove themself."""

import pytest
from django.core import mail

from customers.models import Partner
from partners.models import PartnerSession, PartnerUser
from partners.tests.dashboard import make_partner, make_partner_user, partner_client
from tenancy.models import AuditLogEntry, Tenant

pytestmark = pytest.mark.django_db


@pytest.fixture
def partner(tenant: Tenant) -> Partner:
    return make_partner(tenant)


def test_an_admin_invites_a_colleague_who_gets_the_link(
    tenant: Tenant, partner: Partner, django_capture_on_commit_callbacks: object
) -> None:
    admin = make_partner_user(partner, email="boss@alpnet.test", role="admin")
    client = partner_client(admin)
    page = client.get("/partners/users/").content.decode()
    assert "boss@alpnet.test" in page
    assert "(you)" in page
    with django_capture_on_commit_callbacks(execute=True):  # type: ignore[operator]
        response = client.post(
            "/partners/users/invite/", {"email": "Paul@AlpNet.test", "name": "Paul", "role": "sales"}
        )
    assert response.status_code == 302
    paul = PartnerUser.objects.get(tenant=tenant, email="paul@alpnet.test")
    assert (paul.partner_id, paul.role) == (partner.pk, "sales")
    [message] = mail.outbox
    assert message.to == ["paul@alpnet.test"]
    assert "/partners/acme/invitation/" in str(message.body)
    invited = AuditLogEntry.objects.get(tenant=tenant, action="partner_user.invited")
    assert invited.actor_label == "boss@alpnet.test"
    # the same address again is refused on the form
    again = client.post("/partners/users/invite/", {"email": "paul@alpnet.test", "name": "", "role": "sales"})
    assert again.status_code == 400
    assert "already has a partner login" in again.content.decode()


def test_an_admin_changes_a_role_and_removes_a_colleague_but_not_themself(partner: Partner) -> None:
    admin = make_partner_user(partner, email="boss@alpnet.test", role="admin")
    paul = make_partner_user(partner, email="paul@alpnet.test", role="sales")
    pauls = partner_client(paul)
    client = partner_client(admin)
    assert client.post("/partners/users/%s/role/" % paul.pk, {"role": "admin"}).status_code == 302
    paul.refresh_from_db()
    assert paul.role == "admin"
    client.post("/partners/users/%s/role/" % admin.pk, {"role": "sales"})
    admin.refresh_from_db()
    assert admin.role == "admin"
    client.post("/partners/users/%s/remove/" % paul.pk)
    paul.refresh_from_db()
    assert not paul.is_active
    assert PartnerSession.objects.filter(user=paul, ended_at__isnull=True).count() == 0
    assert pauls.get("/partners/").status_code == 302


def test_sales_users_do_not_manage_users(partner: Partner) -> None:
    sales = make_partner_user(partner, email="lea@alpnet.test", role="sales")
    client = partner_client(sales)
    assert client.get("/partners/users/").status_code == 403
    assert client.post("/partners/users/invite/", {"email": "x@alpnet.test", "role": "admin"}).status_code == 403
    assert "/partners/users/" not in client.get("/partners/").content.decode()
