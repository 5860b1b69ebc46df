"""Settings → Team: owners invite staff by e-mail with a role (a link that works once, for 7 days),
change roles and remove members, never the last owner; every change is in the audit log."""

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client

from tenancy.models import AuditLogEntry, Invitation, Membership, Role, Tenant

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"
NEW_PASSWORD = "blue-staple-orbit-42"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
StaffMaker = Callable[..., Any]


@pytest.fixture
def owner(tenant: Tenant, make_staff: StaffMaker) -> Any:
    return make_staff(tenant, email="owner@acme.test")


@pytest.fixture
def owner_client(client: Client, owner: Any) -> Client:
    client.force_login(owner)
    return client


def invite(client: Client, email: str, role: str) -> str:
    """Invite someone from the team page; returns the link of the e-mail they receive."""
    response = client.post("/app/settings/team/invite/", {"email": email, "role": role})
    assert response.status_code == 302, response.content.decode()[:2000]
    [message] = [m for m in mail.outbox if m.to == [email.lower()]]
    match = re.search(r"http://testserver(/app/invitations/[\w-]+/)", str(message.body))
    assert match, message.body
    return match.group(1)


def audit_actions(tenant: Tenant) -> list[str]:
    return list(AuditLogEntry.objects.filter(tenant=tenant).order_by("at", "id").values_list("action", flat=True))


# --- invitations --------------------------------------------------------------------------------------


def test_an_owner_invites_and_the_invitee_joins_with_a_new_password(owner_client: Client, tenant: Tenant) -> None:
    with time_machine.travel(T0, tick=False):
        link = invite(owner_client, "Ana@Acme.test", Role.FINANCE_ADMIN)

        [message] = mail.outbox
        assert message.to == ["ana@acme.test"]  # addresses are kept lower-case
        assert message.subject == "You are invited to join Acme Telematics on Tripod"
        assert "owner@acme.test invites you to join the team of Acme Telematics" in message.body
        assert "as Finance admin" in message.body
        assert "for 7 days" in message.body
        invitation = Invitation.objects.get()
        assert invitation.token_hash not in message.body  # the link holds the token, the table its hash
        assert link.split("/")[-2] not in str(Invitation.objects.values_list().get())

        team = owner_client.get("/app/settings/team/")
        assert "ana@acme.test" in team.content.decode()  # pending

        # the invitee opens the link, logged out, and chooses a password
        invitee = Client()
        page = invitee.get(link)
        assert page.status_code == 200
        assert page["Cache-Control"].startswith("max-age=0") or "no-store" in page["Cache-Control"]
        assert "Join Acme Telematics" in page.content.decode()
        mismatch = invitee.post(link, {"password1": NEW_PASSWORD, "password2": "something-else-1"})
        assert mismatch.status_code == 422
        weak = invitee.post(link, {"password1": "password", "password2": "password"})
        assert weak.status_code == 422
        assert "too short" in weak.content.decode()
        response = invitee.post(link, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
        assert response.status_code == 302
        assert response["Location"] == "/app/"
        # then: a login with that password, a member with the role, logged in
        user = get_user_model().objects.get(email="ana@acme.test")
        assert user.check_password(NEW_PASSWORD)
        assert Membership.objects.get(user=user, tenant=tenant).role == Role.FINANCE_ADMIN
        home = invitee.get("/app/")
        assert home.status_code == 200
        assert "Welcome to Acme Telematics" in home.content.decode()
        # and the link works once
        again = Client().get(link)
        assert again.status_code == 410
        assert "already used" in again.content.decode()
        assert Client().post(link, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD}).status_code == 410
    assert audit_actions(tenant) == ["invitation.created", "membership.created"]
    created = AuditLogEntry.objects.get(action="membership.created")
    assert created.actor_label == "ana@acme.test"
    assert (created.after or {})["role"] == "finance_admin"


def test_an_invitation_expires_after_7_days(owner_client: Client) -> None:
    with time_machine.travel(T0, tick=False):
        link = invite(owner_client, "ana@acme.test", Role.FINANCE_VIEWER)
    with time_machine.travel(T0 + timedelta(days=6, hours=23), tick=False):
        assert Client().get(link).status_code == 200
    with time_machine.travel(T0 + timedelta(days=7), tick=False):
        response = Client().post(link, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert response.status_code == 410
    assert not get_user_model().objects.filter(email="ana@acme.test").exists()


def test_an_unknown_link_is_not_found(client: Client) -> None:
    response = client.get("/app/invitations/not-a-real-token/")
    assert response.status_code == 404
    assert "not valid" in response.content.decode()


def test_a_new_invitation_replaces_the_pending_one(owner_client: Client, tenant: Tenant) -> None:
    with time_machine.travel(T0, tick=False):
        first = invite(owner_client, "ana@acme.test", Role.FINANCE_VIEWER)
        mail.outbox.clear()
        second = invite(owner_client, "ana@acme.test", Role.SUPPORT_AGENT)
        assert Client().get(first).status_code == 410
        assert Client().get(second).status_code == 200


def test_a_revoked_invitation_no_longer_opens(owner_client: Client, tenant: Tenant) -> None:
    with time_machine.travel(T0, tick=False):
        link = invite(owner_client, "ana@acme.test", Role.FINANCE_VIEWER)
        invitation = Invitation.objects.get()
        response = owner_client.post("/app/settings/team/invitations/%s/revoke/" % invitation.pk)
        assert response.status_code == 302
        assert Client().get(link).status_code == 410
    assert audit_actions(tenant) == ["invitation.created", "invitation.revoked"]


def test_someone_with_a_login_logs_in_then_joins(
    owner_client: Client, tenant: Tenant, other_tenant: Tenant, make_staff: StaffMaker
) -> None:
    # given: bob already works for another tenant
    bob = make_staff(other_tenant, email="bob@globex.test")
    with time_machine.travel(T0, tick=False):
        link = invite(owner_client, "bob@globex.test", Role.SUPPORT_AGENT)
        anonymous = Client()
        page = anonymous.get(link)
        assert "already has a Tripod login" in page.content.decode()
        assert "/app/login/?next=%s" % link in page.content.decode()
        # a logged-in stranger is told the invitation is not theirs
        stranger = Client()
        stranger.force_login(make_staff(other_tenant, email="eve@globex.test"))
        assert stranger.get(link).status_code == 403
        assert stranger.post(link).status_code == 403
        # bob logs in and accepts
        bob_client = Client()
        bob_client.force_login(bob)
        assert bob_client.get(link).status_code == 200
        response = bob_client.post(link)
        assert response["Location"] == "/app/"
        assert bob_client.session["tenant_id"] == str(tenant.pk)  # switched to the team just joined
    assert Membership.objects.get(user=bob, tenant=tenant).role == Role.SUPPORT_AGENT
    assert Membership.objects.filter(user=bob).count() == 2


def test_a_member_cannot_be_invited_again(owner_client: Client, tenant: Tenant, make_staff: StaffMaker) -> None:
    make_staff(tenant, email="ana@acme.test", role=Role.FINANCE_VIEWER)
    response = owner_client.post("/app/settings/team/invite/", {"email": "ana@acme.test", "role": "finance_admin"})
    assert response.status_code == 409
    assert "already a member" in response.content.decode()
    assert mail.outbox == []


def test_a_bad_invitation_form_is_refused(owner_client: Client) -> None:
    response = owner_client.post("/app/settings/team/invite/", {"email": "not-an-address", "role": "emperor"})
    assert response.status_code == 422
    form = response.context["invite_form"]
    assert set(form.errors) == {"email", "role"}
    assert mail.outbox == []


# --- roles and removals --------------------------------------------------------------------------------


def test_an_owner_changes_a_role(owner_client: Client, tenant: Tenant, make_staff: StaffMaker) -> None:
    ana = make_staff(tenant, email="ana@acme.test", role=Role.FINANCE_VIEWER)
    membership = Membership.objects.get(user=ana)
    response = owner_client.post("/app/settings/team/members/%d/role/" % membership.pk, {"role": "finance_admin"})
    assert response.status_code == 302
    membership.refresh_from_db()
    assert membership.role == Role.FINANCE_ADMIN
    entry = AuditLogEntry.objects.get(action="membership.role_changed")
    assert (entry.before, entry.after, entry.actor_label) == (
        {"role": "finance_viewer"},
        {"role": "finance_admin"},
        "owner@acme.test",
    )


def test_the_last_owner_cannot_be_demoted_or_removed(owner_client: Client, owner: Any, tenant: Tenant) -> None:
    membership = Membership.objects.get(user=owner)
    demote = owner_client.post("/app/settings/team/members/%d/role/" % membership.pk, {"role": "finance_admin"})
    assert demote.status_code == 302
    assert "The team needs an owner" in owner_client.get("/app/settings/team/").content.decode()
    remove = owner_client.post("/app/settings/team/members/%d/remove/" % membership.pk)
    assert remove.status_code == 302
    membership.refresh_from_db()
    assert membership.role == Role.OWNER
    assert not AuditLogEntry.objects.filter(object_type="membership").exists()


def test_with_two_owners_one_can_leave(
    owner_client: Client, owner: Any, tenant: Tenant, make_staff: StaffMaker
) -> None:
    make_staff(tenant, email="co-owner@acme.test", role=Role.OWNER)
    mine = Membership.objects.get(user=owner)
    response = owner_client.post("/app/settings/team/members/%d/remove/" % mine.pk)
    assert response["Location"] == "/app/"
    assert not Membership.objects.filter(pk=mine.pk).exists()
    assert owner_client.get("/app/customers/").status_code == 403  # no team left: the no-tenant page
    entry = AuditLogEntry.objects.get(action="membership.removed")
    assert entry.before == {"email": "owner@acme.test", "role": "owner"}


def test_an_owner_removes_a_member(owner_client: Client, tenant: Tenant, make_staff: StaffMaker) -> None:
    ana = make_staff(tenant, email="ana@acme.test", role=Role.SUPPORT_AGENT)
    membership = Membership.objects.get(user=ana)
    assert owner_client.post("/app/settings/team/members/%d/remove/" % membership.pk).status_code == 302
    assert not Membership.objects.filter(user=ana).exists()
    assert get_user_model().objects.filter(pk=ana.pk).exists()  # the login stays
    ana_client = Client()
    ana_client.force_login(ana)
    assert ana_client.get("/app/customers/").status_code == 403


def test_members_of_another_tenant_are_out_of_reach(
    owner_client: Client, other_tenant: Tenant, make_staff: StaffMaker
) -> None:
    stranger = Membership.objects.get(user=make_staff(other_tenant, email="eve@globex.test", role=Role.OWNER))
    owner_client.post("/app/settings/team/members/%d/role/" % stranger.pk, {"role": "support_agent"})
    owner_client.post("/app/settings/team/members/%d/remove/" % stranger.pk)
    stranger.refresh_from_db()
    assert stranger.role == Role.OWNER
    assert owner_client.post("/app/settings/team/members/not-a-number/remove/").status_code == 302


@pytest.mark.parametrize("role", [Role.FINANCE_ADMIN, Role.FINANCE_VIEWER, Role.SUPPORT_AGENT])
def test_only_owners_manage_the_team(
    client: Client, tenant: Tenant, owner: Any, make_staff: StaffMaker, role: str
) -> None:
    client.force_login(make_staff(tenant, email="member@acme.test", role=role))
    owner_membership = Membership.objects.get(user=owner)
    assert client.post("/app/settings/team/invite/", {"email": "x@acme.test", "role": "owner"}).status_code == 403
    assert (
        client.post("/app/settings/team/members/%d/role/" % owner_membership.pk, {"role": "support_agent"}).status_code
        == 403
    )
    assert client.post("/app/settings/team/members/%d/remove/" % owner_membership.pk).status_code == 403
    assert client.post("/app/settings/security/", {"two_factor_required": "on"}).status_code == 403
    page = client.get("/app/settings/team/")
    if role == Role.SUPPORT_AGENT:
        assert page.status_code == 403
    else:  # finance roles read the team
        assert page.status_code == 200
        assert "owner@acme.test" in page.content.decode()
        assert "/app/settings/team/invite/" not in page.content.decode()
    assert mail.outbox == []


def test_the_team_page_lists_members_with_their_second_factor(owner_client: Client, tenant: Tenant) -> None:
    page = owner_client.get("/app/settings/team/")
    body = page.content.decode()
    assert page.status_code == 200
    assert 'aria-current="page"' in body
    assert ">Team</a>" in body
    assert "owner@acme.test" in body
    assert "(only owner)" in body  # no role select nor remove button on the last owner
    assert 'name="email"' in body
    assert 'name="role"' in body


def test_the_team_page_in_french(owner_client: Client) -> None:
    owner_client.post("/i18n/setlang/", {"language": "fr", "next": "/app/settings/team/"})
    body = owner_client.get("/app/settings/team/").content.decode()
    assert "Équipe" in body
    assert "Inviter quelqu’un" in body


# --- the two-factor requirement, on the settings page --------------------------------------------------


def test_an_owner_requires_two_factor_from_the_settings_page(owner_client: Client, tenant: Tenant) -> None:
    page = owner_client.get("/app/settings/")
    assert 'id="security"' in page.content.decode()
    response = owner_client.post("/app/settings/security/", {"two_factor_required": "on"})
    assert response["Location"] == "/app/settings/#security"
    tenant.refresh_from_db()
    assert tenant.two_factor_required is True
    entry = AuditLogEntry.objects.get(action="tenant.two_factor_updated")
    assert (entry.before, entry.after) == ({"two_factor_required": False}, {"two_factor_required": True})
    # the owner has no second factor yet: from now on, the pages send them to enrolment
    assert owner_client.get("/app/customers/")["Location"] == "/app/account/2fa/"
    # even to turn the requirement off again: an owner without a second factor must enrol first
    assert owner_client.post("/app/settings/security/", {})["Location"] == "/app/account/2fa/"
    tenant.refresh_from_db()
    assert tenant.two_factor_required is True
