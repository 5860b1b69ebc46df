"""The customer portal's doors (specs/portal.md, "Who logs in"): portal links that open a session
for a customer, and the sessions themselves.

A token is 32 random bytes in URL-safe base64; only its SHA-256 is stored, so a database dump opens
nothing. Links are single-use and live 15 minutes; sessions live 12 hours and end at logout. Both
tables are read before the tenant is known (the request carries only the token), which is why they
stay outside row-level security; everything a session then reads runs under its tenant."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.db import connection, transaction

from billing_platform.errors import invalid
from billing_platform.model_rows import ModelColumns
from billing_platform.rls import tenant_activate
from customers.models import Customer, PortalLink, PortalSession, PortalUser
from tenancy.actors import Actor
from tenancy.models import Tenant
from tenancy.services import audit_record

LINK_LIFETIME = timedelta(minutes=15)
SESSION_LIFETIME = timedelta(hours=12)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class PortalLinkCreated:
    link: PortalLink
    # Shown once, in the link's address; only its hash is kept.
    token: str


def return_url_check(return_url: str, field: str = "return_url") -> str:
    """An absolute http(s) address, or blank. Anything else (``javascript:``, a relative path) would
    let a link send the customer somewhere the tenant did not mean."""
    value = (return_url or "").strip()
    if not value:
        return ""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise invalid(
            field, "invalid", "Give an absolute http or https address, such as https://app.example.com/account."
        )
    return value


def portal_link_create(
    *, tenant: Tenant, customer: Customer, return_url: str, actor: Actor, at: datetime
) -> PortalLinkCreated:
    """A single-use link that opens the portal for ``customer`` until ``at`` + 15 minutes."""
    return_url = return_url_check(return_url)
    token = _new_token()
    with transaction.atomic():
        link = PortalLink.objects.create(
            tenant=tenant,
            customer=customer,
            token_hash=token_hash(token),
            return_url=return_url,
            created_by=actor.label[:254],
            created_at=at,
            expires_at=at + LINK_LIFETIME,
        )
        audit_record(
            tenant=tenant,
            actor=actor,
            action="portal_link.created",
            object_type="customer",
            object_id=customer.external_id,
            at=at,
            after={"expires_at": link.expires_at.isoformat(), "return_url": return_url},
        )
    return PortalLinkCreated(link=link, token=token)


@dataclass(frozen=True, slots=True)
class PortalSessionOpened:
    session: PortalSession
    # The cookie's value; only its hash is kept.
    token: str


def portal_session_open(
    *, customer: Customer, user: PortalUser | None, at: datetime, return_url: str = "", via: str = "login"
) -> PortalSessionOpened:
    """A new portal session, and its audit entry: every portal login is on the tenant's audit log."""
    token = _new_token()
    with transaction.atomic():
        session = PortalSession.objects.create(
            tenant_id=customer.tenant_id,
            customer=customer,
            user=user,
            key_hash=token_hash(token),
            return_url=return_url,
            created_at=at,
            expires_at=at + SESSION_LIFETIME,
        )
        if user is not None:
            PortalUser.objects.filter(pk=user.pk).update(last_login_at=at)
        actor = Actor.portal_user(user)
        audit_record(
            tenant=customer.tenant,
            actor=actor,
            action="portal.login",
            object_type="customer",
            object_id=customer.external_id,
            at=at,
            after={"via": via},
        )
    return PortalSessionOpened(session=session, token=token)


def portal_link_redeem(*, token: str, at: datetime) -> PortalSessionOpened | None:
    """The session a portal link opens, once: a used, expired or unknown link opens nothing. Two
    clicks racing for the same link: the conditional update lets exactly one through."""
    if not token or len(token) > 100:
        return None
    with transaction.atomic():
        link = PortalLink.objects.filter(token_hash=token_hash(token), used_at__isnull=True, expires_at__gt=at).first()
        if link is None:
            return None
        taken = PortalLink.objects.filter(pk=link.pk, used_at__isnull=True).update(used_at=at)
        if not taken:
            return None
        # Known now: the request reads and writes as this tenant from here on.
        tenant_activate(link.tenant_id)
        customer = Customer.objects.select_related("tenant").get(tenant_id=link.tenant_id, pk=link.customer_id)
        return portal_session_open(customer=customer, user=None, at=at, return_url=link.return_url, via="link")


# A portal request's session and its tenant, in one statement, before the tenant is known (neither
# table is behind row-level security). Not the tenant's logo (its bytes: whether there is one is
# enough) nor its device-cloud secrets (decrypted when read); both are read on access if ever needed.
_SESSION_COLUMNS = ModelColumns(PortalSession, "s")
_TENANT_COLUMNS = ModelColumns(Tenant, "t", skip=("logo", "device_cloud_secrets"))
_SESSION_SQL = (
    f"SELECT {_SESSION_COLUMNS.sql}, {_TENANT_COLUMNS.sql}, octet_length(t.logo) > 0"
    " FROM customers_portalsession s JOIN tenancy_tenant t ON t.id = s.tenant_id"
    " WHERE s.key_hash = %s AND s.ended_at IS NULL AND s.expires_at > %s"
)
# Then, under the tenant, its customer and its user (none for a session a portal link opened), less
# the user's two-factor secret (decrypted when read: the security page reads it when it needs it).
_CUSTOMER_COLUMNS = ModelColumns(Customer, "c")
_USER_COLUMNS = ModelColumns(PortalUser, "u", skip=("totp_secret",))
_CUSTOMER_SQL = (
    f"SELECT {_CUSTOMER_COLUMNS.sql}, {_USER_COLUMNS.sql} FROM customers_customer c"
    " LEFT JOIN customers_portaluser u ON u.tenant_id = c.tenant_id AND u.id = %s"
    " WHERE c.tenant_id = %s AND c.id = %s"
)


def portal_session_resolve(*, token: str, at: datetime) -> PortalSession | None:
    """The live session a cookie names: not ended, not expired, its user (if any) still active.
    Found, it sets the request's tenant (row-level security), as an API key does: what the portal
    reads next is that tenant's, and only through the session's customer. Two statements, written
    by hand: every portal page starts here. The tenant comes with ``has_logo``."""
    if not token or len(token) > 100:
        return None
    with connection.cursor() as cursor:
        cursor.execute(_SESSION_SQL, [token_hash(token), at])
        found = cursor.fetchone()
        if found is None:
            return None
        session = _SESSION_COLUMNS.instance(found)
        tenant = _TENANT_COLUMNS.instance(found, _SESSION_COLUMNS.width)
        tenant.has_logo = bool(found[-1])  # type: ignore[attr-defined]
        session.tenant = tenant
        tenant_activate(session.tenant_id)
        cursor.execute(_CUSTOMER_SQL, [session.user_id, session.tenant_id, session.customer_id])
        row = cursor.fetchone()
    if row is None:
        return None
    session.customer = _CUSTOMER_COLUMNS.instance(row)
    session.customer.tenant = tenant
    if session.user_id is not None:
        if row[_CUSTOMER_COLUMNS.width] is None:  # the user is gone
            return None
        user = _USER_COLUMNS.instance(row, _CUSTOMER_COLUMNS.width)
        if not user.is_active or user.customer_id != session.customer_id:
            return None
        user.customer = session.customer
        session.user = user
    return session


def portal_session_end(*, token: str, at: datetime) -> None:
    if token and len(token) <= 100:
        PortalSession.objects.filter(key_hash=token_hash(token), ended_at__isnull=True).update(ended_at=at)


def portal_user_sessions_end(*, user: PortalUser, at: datetime) -> int:
    """Ends every open session of a portal user: on removal, deactivation or a new password."""
    return PortalSession.objects.filter(user=user, ended_at__isnull=True).update(ended_at=at)
