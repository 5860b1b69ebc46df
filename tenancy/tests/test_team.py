"""The team services: invitations (a token stored as its SHA-256, valid 7 days and once), role
changes and removals that always leave the tenant an owner."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from billing_platform.errors import InvalidInput
from tenancy.actors import Actor
from tenancy.errors import AlreadyMember, InvitationForAnotherEmail, InvitationNotFound, InvitationNotPending, LastOwner
from tenancy.models import Invitation, Membership, Role, Tenant
from tenancy.team import (
    invitation_accept,
    invitation_create,
    invitation_token_hash,
    membership_remove,
    membership_role_change,
    tenant_two_factor_update,
)

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
OWNER = Actor.system("tests")
StaffMaker = Callable[..., Any]


def test_an_invitation_stores_only_the_hash_of_its_token(tenant: Tenant) -> None:
    invitation, token = invitation_create(
        tenant=tenant, email=" Ana@Acme.TEST ", role=Role.SUPPORT_AGENT, actor=OWNER, at=T0
    )
    assert invitation.email == "ana@acme.test"
    assert invitation.token_hash == invitation_token_hash(token)
    assert len(token) >= 43  # 32 random bytes, base64url
    assert invitation.expires_at == T0 + timedelta(days=7)
    assert token not in str(Invitation.objects.values_list().get())


def test_bad_input_is_reported_field_by_field(tenant: Tenant) -> None:
    with pytest.raises(InvalidInput, match="not an e-mail address") as caught:
        invitation_create(tenant=tenant, email="ana", role="emperor", actor=OWNER, at=T0)
    assert [(e.field, e.code) for e in caught.value.errors] == [("email", "invalid_email"), ("role", "invalid_choice")]


def test_accepting_creates_the_login_once(tenant: Tenant) -> None:
    _, token = invitation_create(tenant=tenant, email="ana@acme.test", role=Role.FINANCE_VIEWER, actor=OWNER, at=T0)
    with pytest.raises(InvalidInput, match="too short") as caught:
        invitation_accept(token=token, at=T0, password="short")
    assert caught.value.errors[0].field == "password"
    accepted = invitation_accept(token=token, at=T0 + timedelta(hours=1), password="blue-staple-orbit-42")
    assert accepted.new_login is True
    assert accepted.membership.role == Role.FINANCE_VIEWER
    with pytest.raises(InvitationNotPending, match="already used"):
        invitation_accept(token=token, at=T0 + timedelta(hours=2), password="blue-staple-orbit-42")
    with pytest.raises(InvitationNotFound, match="not valid"):
        invitation_accept(token=token + "x", at=T0, password="blue-staple-orbit-42")


def test_an_expired_invitation_cannot_be_accepted(tenant: Tenant) -> None:
    _, token = invitation_create(tenant=tenant, email="ana@acme.test", role=Role.FINANCE_VIEWER, actor=OWNER, at=T0)
    with pytest.raises(InvitationNotPending):
        invitation_accept(token=token, at=T0 + timedelta(days=7), password="blue-staple-orbit-42")


def test_an_existing_login_must_accept_as_itself(tenant: Tenant, other_tenant: Tenant, make_staff: StaffMaker) -> None:
    bob = make_staff(other_tenant, email="bob@globex.test")
    eve = make_staff(other_tenant, email="eve@globex.test")
    _, token = invitation_create(tenant=tenant, email="bob@globex.test", role=Role.FINANCE_ADMIN, actor=OWNER, at=T0)
    with pytest.raises(InvitationForAnotherEmail, match="log in to accept"):
        invitation_accept(token=token, at=T0, password="blue-staple-orbit-42")
    with pytest.raises(InvitationForAnotherEmail, match="log in with that address"):
        invitation_accept(token=token, at=T0, user=eve)
    accepted = invitation_accept(token=token, at=T0, user=bob)
    assert (accepted.new_login, accepted.membership.role) == (False, Role.FINANCE_ADMIN)


def test_a_member_is_not_invited_twice(tenant: Tenant, make_staff: StaffMaker) -> None:
    make_staff(tenant, email="ana@acme.test")
    with pytest.raises(AlreadyMember, match="already a member"):
        invitation_create(tenant=tenant, email="ANA@acme.test", role=Role.OWNER, actor=OWNER, at=T0)


def test_the_last_owner_stays(tenant: Tenant, make_staff: StaffMaker) -> None:
    owner = Membership.objects.get(user=make_staff(tenant, email="owner@acme.test"))
    with pytest.raises(LastOwner, match="only owner"):
        membership_role_change(tenant=tenant, membership_id=owner.pk, role=Role.FINANCE_ADMIN, actor=OWNER, at=T0)
    with pytest.raises(LastOwner, match="only owner"):
        membership_remove(tenant=tenant, membership_id=owner.pk, actor=OWNER, at=T0)
    # with a second owner, the first may step down
    make_staff(tenant, email="co-owner@acme.test", role=Role.OWNER)
    membership_role_change(tenant=tenant, membership_id=owner.pk, role=Role.FINANCE_ADMIN, actor=OWNER, at=T0)
    owner.refresh_from_db()
    assert owner.role == Role.FINANCE_ADMIN


def test_the_two_factor_requirement_is_a_boolean(tenant: Tenant) -> None:
    with pytest.raises(InvalidInput, match="true or false"):
        tenant_two_factor_update(tenant=tenant, required="yes", actor=OWNER, at=T0)  # type: ignore[arg-type]
    assert tenant_two_factor_update(tenant=tenant, required=True, actor=OWNER, at=T0).two_factor_required is True
