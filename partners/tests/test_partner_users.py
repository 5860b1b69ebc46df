"""Partner users (partners.users): invitations e-mailed on commit in the user's or partner's
language with a 7-day single-use link, one address per tenant, changes and removal, which end the
user's dashboard sessions; every write audited."""

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.core import mail

from customers.models import Partner
from customers.portal import token_hash
from partners.errors import PartnerUserEmailTaken, PartnerUserNotFound, PartnerUserSelfChange
from partners.models import PartnerInvitation, PartnerSession, PartnerUser
from partners.services import partner_create
from partners.users import (
    partner_user_get,
    partner_user_invitation_resend,
    partner_user_invite,
    partner_user_list,
    partner_user_remove,
    partner_user_update,
)
from tenancy.actors import Actor
from tenancy.models import AuditLogEntry, Tenant

pytestmark = pytest.mark.django_db(transaction=False)

T0 = datetime(2026, 6, 10, 9, 0, tzinfo=UTC)
STAFF = Actor.system("staff@acme.test")


def _partner(tenant: Tenant, code: str = "alpnet", name: str = "AlpNet", language: str = "en") -> Partner:
    return partner_create(tenant=tenant, actor=STAFF, at=T0, code=code, name=name, language=language)


def _invite(tenant: Tenant, partner: Partner, email: str = "Lea.Martin@AlpNet.test", **kw: str) -> PartnerUser:
    args = {"name": "Léa Martin", "role": "admin", **kw}
    return partner_user_invite(
        tenant=tenant, partner=partner, email=email, actor=STAFF, at=T0, base_url="https://billing.test", **args
    ).user


def test_an_invitation_is_e_mailed_on_commit_from_the_tenant_with_a_7_day_link(
    tenant: Tenant, django_capture_on_commit_callbacks: Any
) -> None:
    tenant.billing_email = "billing@acme.test"
    tenant.save(update_fields=["billing_email"])
    partner = _partner(tenant)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        user = _invite(tenant, partner)
    # nothing leaves before the transaction commits
    assert mail.outbox == []
    for callback in callbacks:
        callback()
    assert (user.email, user.name, user.role, user.language, user.is_active) == (
        "lea.martin@alpnet.test",
        "Léa Martin",
        "admin",
        "",
        True,
    )
    [message] = mail.outbox
    assert message.to == ["lea.martin@alpnet.test"]
    assert message.from_email == "Acme Telematics <%s>" % settings.DEFAULT_FROM_EMAIL
    assert message.reply_to == ["billing@acme.test"]
    assert message.subject == "Your access to Acme Telematics's partner dashboard"
    assert "Hello Léa Martin," in message.body
    assert "partner dashboard, for AlpNet" in message.body
    assert "The link works once, for 7 days." in message.body
    assert "https://billing.test/partners/acme/login/" in message.body
    [token] = re.findall(r"https://billing\.test/partners/acme/invitation/([\w-]+)/", str(message.body))
    [(html, mime)] = message.alternatives  # type: ignore[attr-defined]
    assert mime == "text/html"
    assert 'href="https://billing.test/partners/acme/invitation/%s/"' % token in html
    invitation = PartnerInvitation.objects.get()
    # only the token's SHA-256 is kept; it works until 9:00 on 17 June
    assert invitation.token_hash == token_hash(token)
    assert token not in invitation.token_hash
    assert invitation.expires_at == T0 + timedelta(days=7)
    assert invitation.is_pending(T0 + timedelta(days=7, seconds=-1))
    assert not invitation.is_pending(T0 + timedelta(days=7))
    entry = AuditLogEntry.objects.get(tenant=tenant, action="partner_user.invited")
    assert (entry.object_type, entry.object_id, entry.after) == (
        "partner",
        "alpnet",
        {"email": "lea.martin@alpnet.test", "name": "Léa Martin", "role": "admin", "language": ""},
    )


def test_the_e_mail_is_in_the_users_language_else_the_partners(
    tenant: Tenant, django_capture_on_commit_callbacks: Any
) -> None:
    partner = _partner(tenant, language="fr")
    with django_capture_on_commit_callbacks(execute=True):
        _invite(tenant, partner, email="a@alpnet.test", name="Anne")
        _invite(tenant, partner, email="b@alpnet.test", name="Bob", language="en")
    french, english = mail.outbox
    assert french.subject == "Votre accès au tableau de bord partenaire de Acme Telematics"
    assert "Bonjour Anne," in french.body
    assert english.subject == "Your access to Acme Telematics's partner dashboard"


def test_an_address_is_one_partner_user_per_tenant_in_any_case(tenant: Tenant, other_tenant: Tenant) -> None:
    _invite(tenant, _partner(tenant))
    with pytest.raises(PartnerUserEmailTaken):
        _invite(tenant, _partner(tenant, code="geosat", name="Geo Sat"), email="LEA.MARTIN@alpnet.test")
    # another tenant's partner may have the same address
    assert _invite(other_tenant, _partner(other_tenant)).tenant_id == other_tenant.pk


def test_wrong_fields_are_named_together(tenant: Tenant) -> None:
    from billing_platform.errors import InvalidInput

    with pytest.raises(InvalidInput) as raised:
        _invite(tenant, _partner(tenant), email="not-an-address", role="owner", language="de")
    assert [e.field for e in raised.value.errors] == ["email", "role", "language"]


def test_a_resent_invitation_voids_the_older_link(tenant: Tenant, django_capture_on_commit_callbacks: Any) -> None:
    partner = _partner(tenant)
    user = _invite(tenant, partner)
    first = PartnerInvitation.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        again = partner_user_invitation_resend(tenant=tenant, user=user, actor=STAFF, at=T0 + timedelta(days=1))
    first.refresh_from_db()
    assert first.voided_at == T0 + timedelta(days=1)
    assert again.invitation.expires_at == T0 + timedelta(days=8)
    assert len(mail.outbox) == 1
    assert AuditLogEntry.objects.filter(tenant=tenant, action="partner_user.invitation_resent").count() == 1


def test_another_partners_user_is_not_found(tenant: Tenant) -> None:
    alpnet, geosat = _partner(tenant), _partner(tenant, code="geosat", name="Geo Sat")
    user = _invite(tenant, alpnet)
    assert partner_user_get(tenant=tenant, partner=alpnet, user_id=str(user.pk)).pk == user.pk
    with pytest.raises(PartnerUserNotFound):
        partner_user_get(tenant=tenant, partner=geosat, user_id=str(user.pk))
    with pytest.raises(PartnerUserNotFound):
        partner_user_get(tenant=tenant, partner=alpnet, user_id="nope")
    # 32 dashes look like an id to a pattern but are none: not found, like an unknown id
    with pytest.raises(PartnerUserNotFound):
        partner_user_get(tenant=tenant, partner=alpnet, user_id="-" * 32)
    assert list(partner_user_list(tenant=tenant, partner=geosat)) == []


@time_machine.travel(T0, tick=False)
def test_deactivating_or_removing_ends_the_users_sessions(tenant: Tenant) -> None:
    partner = _partner(tenant)
    user = _invite(tenant, partner)
    PartnerSession.objects.create(
        tenant=tenant, user=user, key_hash="a" * 64, created_at=T0, expires_at=T0 + timedelta(hours=8)
    )
    user = partner_user_update(tenant=tenant, user=user, actor=STAFF, at=T0, role="sales", language="fr")
    assert (user.role, user.language) == ("sales", "fr")
    assert PartnerSession.objects.get().ended_at is None
    later = T0 + timedelta(hours=1)
    user = partner_user_remove(tenant=tenant, user=user, actor=STAFF, at=later)
    assert user.is_active is False
    assert PartnerSession.objects.get().ended_at == later
    # the pending invitation no longer works either
    assert PartnerInvitation.objects.get().voided_at == later
    assert list(
        AuditLogEntry.objects.filter(tenant=tenant, action__startswith="partner_user.")
        .order_by("id")
        .values_list("action", flat=True)
    ) == ["partner_user.invited", "partner_user.updated", "partner_user.removed"]
    user = partner_user_update(tenant=tenant, user=user, actor=STAFF, at=later, is_active=True)
    assert user.is_active is True
    assert AuditLogEntry.objects.filter(tenant=tenant, action="partner_user.reactivated").count() == 1


def test_an_admin_cannot_demote_or_remove_themselves(tenant: Tenant) -> None:
    user = _invite(tenant, _partner(tenant))
    with pytest.raises(PartnerUserSelfChange):
        partner_user_update(tenant=tenant, user=user, actor=Actor.partner_user(user), at=T0, role="sales")
    with pytest.raises(PartnerUserSelfChange):
        partner_user_remove(tenant=tenant, user=user, actor=Actor.partner_user(user), at=T0)
    # their own name they may change
    renamed = partner_user_update(tenant=tenant, user=user, actor=Actor.partner_user(user), at=T0, name="Léa M.")
    assert renamed.name == "Léa M."
