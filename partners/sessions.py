"""The partner dashboard's sessions (specs/partners.md, "Model": partner users log in the same way
portal users do, with their own sessions).

The cookie (``settings.PARTNER_SESSION_COOKIE``) holds 32 random bytes in URL-safe base64; only
their SHA-256 is stored, so a database dump opens nothing. A session lives 12 hours and ends at
logout, when its user is removed or deactivated, or when the user changes a password or second
factor (their other sessions). The table is read before the tenant is known (the request carries
only the token), which is why it stays outside row-level security; everything a session then reads
runs under its tenant."""

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction

from billing_platform.rls import tenant_activate
from customers.models import PartnerStatus
from customers.portal import token_hash
from partners.models import PartnerSession, PartnerUser
from tenancy.actors import Actor
from tenancy.services import audit_record

SESSION_LIFETIME = timedelta(hours=12)
# The cookie's path: the dashboard only. Neither the back-office, the portal nor the API see it.
COOKIE_PATH = "/partners/"


@dataclass(frozen=True, slots=True)
class PartnerSessionOpened:
    session: PartnerSession
    # The cookie's value; only its hash is kept.
    token: str


def partner_session_open(*, user: PartnerUser, at: datetime, via: str = "code") -> PartnerSessionOpened:
    """A new dashboard session for ``user``, and its audit entry: every login is on the tenant's
    audit log, under the partner's code."""
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        session = PartnerSession.objects.create(
            tenant_id=user.tenant_id,
            user=user,
            key_hash=token_hash(token),
            created_at=at,
            expires_at=at + SESSION_LIFETIME,
        )
        PartnerUser.objects.filter(pk=user.pk).update(last_login_at=at)
        audit_record(
            tenant=user.partner.tenant,
            actor=Actor.partner_user(user),
            action="partner.login",
            object_type="partner",
            object_id=user.partner.code,
            at=at,
            after={"via": via, "email": user.email},
        )
    return PartnerSessionOpened(session=session, token=token)


def partner_session_resolve(*, token: str, at: datetime) -> PartnerSession | None:
    """The live session a cookie names: not ended, not expired, its user active and its partner
    active. Found, it sets the request's tenant (row-level security): what the dashboard reads next
    is that tenant's, and only through the session's partner."""
    if not token or len(token) > 100:
        return None
    session = (
        PartnerSession.objects.select_related("tenant")
        .filter(key_hash=token_hash(token), ended_at__isnull=True, expires_at__gt=at)
        .first()
    )
    if session is None:
        return None
    tenant_activate(session.tenant_id)
    # The user and their partner in one statement: an inactive partner closes the session too.
    user = (
        PartnerUser.objects.select_related("partner")
        .filter(
            tenant_id=session.tenant_id,
            pk=session.user_id,
            is_active=True,
            partner__tenant_id=session.tenant_id,
            partner__status=PartnerStatus.ACTIVE,
        )
        .first()
    )
    if user is None:
        return None
    partner = user.partner
    partner.tenant = session.tenant
    user.partner = partner
    user.tenant = session.tenant
    session.user = user
    return session


def partner_session_end(*, token: str, at: datetime) -> None:
    if token and len(token) <= 100:
        PartnerSession.objects.filter(key_hash=token_hash(token), ended_at__isnull=True).update(ended_at=at)


def partner_user_sessions_end(*, user: PartnerUser, at: datetime, keep_token: str = "") -> int:
    """Ends the open sessions of a partner user (but the one named by ``keep_token``): on removal,
    deactivation, or a change of password or second factor."""
    sessions = PartnerSession.objects.filter(user=user, ended_at__isnull=True)
    if keep_token:
        sessions = sessions.exclude(key_hash=token_hash(keep_token))
    return sessions.update(ended_at=at)
