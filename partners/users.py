"""Who logs in to the partner dashboard (specs/partners.md, "Model"): partner users, invited by the
tenant's staff (back-office or API) or by their partner's admins, with the roles ``admin`` (also
manages the partner's users) and ``sales``.

- An invitation is e-mailed in the user's language (else the partner's), in the tenant's name and
  answered to the tenant's billing address. Its link, ``/partners/<tenant>/invitation/<token>/``,
  works once, for 7 days (only its SHA-256 is kept), and a newer one voids it.
- One address is one partner user per tenant, whatever its case: it logs in on the tenant's
  partner page and lands in one partner's dashboard.
- Removing a user deactivates them (their row and history stay) and ends their sessions at once.
"""

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import formataddr, parseaddr
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation

from billing_platform.errors import FieldError, InvalidInput, invalid
from billing_platform.validation import validate_language
from customers.models import Partner
from customers.portal import token_hash
from customers.portal_users import public_url, uuid_or_none
from partners.errors import PartnerUserEmailTaken, PartnerUserNotFound, PartnerUserSelfChange
from partners.models import PartnerInvitation, PartnerRole, PartnerSession, PartnerUser
from tenancy.actors import Actor
from tenancy.models import ActorType, Tenant
from tenancy.services import audit_record

logger = logging.getLogger(__name__)

INVITATION_LIFETIME = timedelta(days=7)


# --- reading ----------------------------------------------------------------------------------------


def partner_user_list(*, tenant: Tenant, partner: Partner, is_active: bool | None = None) -> QuerySet[PartnerUser]:
    qs = PartnerUser.objects.filter(tenant=tenant, partner=partner)
    if is_active is not None:
        qs = qs.filter(is_active=is_active)
    return qs.order_by("email")


def partner_user_get(*, tenant: Tenant, partner: Partner, user_id: str) -> PartnerUser:
    """The partner's user ``user_id``; another partner's, or an unknown id, is not found."""
    key = uuid_or_none(user_id)
    user = PartnerUser.objects.filter(tenant=tenant, partner=partner, pk=key).first() if key else None
    if user is None:
        raise PartnerUserNotFound("No user %s for this partner." % user_id)
    user.partner = partner
    return user


def partner_invitation_path(*, tenant: Tenant, token: str) -> str:
    """The dashboard's page that lets an invited user in (``partners.dashboard``)."""
    return reverse("partners:invitation", args=[tenant.slug, token])


def partner_login_path(*, tenant: Tenant) -> str:
    """The tenant's partner login page (``partners.dashboard``)."""
    return reverse("partners:login", args=[tenant.slug])


def _email(value: str) -> str:
    email = (value or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise invalid("email", "invalid_email", "%s is not an e-mail address." % (value or "")) from None
    return email


# --- invitations ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PartnerUserInvited:
    user: PartnerUser
    invitation: PartnerInvitation
    # The link e-mailed; its token is kept nowhere else.
    url: str


def _fields_check(
    *,
    email: str | None = None,
    name: str | None = None,
    role: str | None = None,
    language: str | None = None,
) -> dict[str, str]:
    """The invitation's or change's fields, checked in one pass: every error at once."""
    errors: list[FieldError] = []
    clean: dict[str, str] = {}
    if email is not None:
        try:
            clean["email"] = _email(email)
        except InvalidInput as exc:
            errors += exc.errors
    if name is not None:
        clean["name"] = (name or "").strip()
        if len(clean["name"]) > 200:
            errors.append(FieldError("name", "too_long", "A name has at most 200 characters."))
    if role is not None:
        if role not in PartnerRole.values:
            errors.append(
                FieldError("role", "invalid_choice", "The role must be one of: %s." % ", ".join(PartnerRole.values))
            )
        clean["role"] = role
    if language is not None:
        clean["language"] = (language or "").strip().lower()
        if clean["language"]:
            try:
                validate_language(clean["language"], field="language")
            except InvalidInput as exc:
                errors += exc.errors
    if errors:
        raise InvalidInput("; ".join(e.message for e in errors), errors=errors)
    return clean


def _invitation_make(*, tenant: Tenant, user: PartnerUser, actor: Actor, at: datetime) -> tuple[PartnerInvitation, str]:
    """A new invitation for ``user``, voiding the pending ones: only the newest link works."""
    token = secrets.token_urlsafe(32)
    PartnerInvitation.objects.filter(tenant=tenant, user=user, used_at__isnull=True, voided_at__isnull=True).update(
        voided_at=at
    )
    invitation = PartnerInvitation.objects.create(
        tenant=tenant,
        user=user,
        token_hash=token_hash(token),
        created_by=actor.label[:254],
        created_at=at,
        expires_at=at + INVITATION_LIFETIME,
    )
    return invitation, token


def partner_user_invite(
    *,
    tenant: Tenant,
    partner: Partner,
    email: str,
    name: str,
    role: str,
    actor: Actor,
    at: datetime,
    language: str = "",
    base_url: str = "",
) -> PartnerUserInvited:
    """Make ``email`` a user of ``partner`` with ``role``, and e-mail them their invitation once the
    transaction commits. An address already a partner user of this tenant (of any of its partners,
    in any case) is a conflict. ``language`` blank: the partner's. ``base_url`` is the site's
    address for the link (the request's; blank: TRIPOD_PUBLIC_URL)."""
    clean = _fields_check(email=email, name=name, role=role, language=language)
    if PartnerUser.objects.filter(tenant=tenant, email__iexact=clean["email"]).exists():
        raise _taken(clean["email"])
    try:
        with transaction.atomic():
            user = PartnerUser.objects.create(
                tenant=tenant,
                partner=partner,
                email=clean["email"],
                name=clean["name"],
                role=clean["role"],
                language=clean["language"],
                invited_at=at,
                invited_by=actor.label[:254],
            )
            invitation, token = _invitation_make(tenant=tenant, user=user, actor=actor, at=at)
            audit_record(
                tenant=tenant,
                actor=actor,
                action="partner_user.invited",
                object_type="partner",
                object_id=partner.code,
                at=at,
                after={"email": user.email, "name": user.name, "role": user.role, "language": user.language},
            )
    except IntegrityError:
        raise _taken(clean["email"]) from None
    user.partner = partner
    partner.tenant = tenant
    url = public_url(partner_invitation_path(tenant=tenant, token=token), base_url)
    transaction.on_commit(lambda: partner_invitation_send(user=user, url=url, base_url=base_url))
    return PartnerUserInvited(user=user, invitation=invitation, url=url)


def _taken(email: str) -> PartnerUserEmailTaken:
    return PartnerUserEmailTaken(
        "%s is already a user of this partner or of another partner." % email,
        errors=[FieldError("email", "taken", "This address is already a partner user.")],
    )


def partner_user_invitation_resend(
    *, tenant: Tenant, user: PartnerUser, actor: Actor, at: datetime, base_url: str = ""
) -> PartnerUserInvited:
    """A new invitation link (the previous one stops working), e-mailed again. A deactivated user is
    reactivated first (``partner_user_update``), not invited."""
    if not user.is_active:
        raise invalid("user", "inactive", "This user is deactivated: reactivate them before inviting them again.")
    with transaction.atomic():
        invitation, token = _invitation_make(tenant=tenant, user=user, actor=actor, at=at)
        PartnerUser.objects.filter(pk=user.pk).update(invited_at=at, invited_by=actor.label[:254])
        audit_record(
            tenant=tenant,
            actor=actor,
            action="partner_user.invitation_resent",
            object_type="partner",
            object_id=user.partner.code,
            at=at,
            after={"email": user.email},
        )
    user.invited_at = at
    user.invited_by = actor.label[:254]
    url = public_url(partner_invitation_path(tenant=tenant, token=token), base_url)
    transaction.on_commit(lambda: partner_invitation_send(user=user, url=url, base_url=base_url))
    return PartnerUserInvited(user=user, invitation=invitation, url=url)


def partner_user_language(user: PartnerUser) -> str:
    """The language of the user's e-mails: theirs, else their partner's."""
    return user.language or user.partner.language or settings.LANGUAGE_CODE[:2]


def partner_user_email_send(*, user: PartnerUser, template: str, context: dict[str, Any]) -> None:
    """An e-mail to a partner user in their language, sent in the tenant's name and answered to its
    billing address. ``template`` names ``partners/email/<template>_subject.txt``, ``_body.txt``
    and ``_body.html``."""
    tenant = user.partner.tenant
    sender = formataddr((tenant.name, parseaddr(settings.DEFAULT_FROM_EMAIL)[1]))
    with translation.override(partner_user_language(user)):
        subject = " ".join(render_to_string("partners/email/%s_subject.txt" % template, context).split())
        body = render_to_string("partners/email/%s_body.txt" % template, context).strip() + "\n"
        html = render_to_string("partners/email/%s_body.html" % template, context)
    reply_to = [tenant.billing_email] if tenant.billing_email else None
    message = EmailMultiAlternatives(subject=subject, body=body, from_email=sender, to=[user.email], reply_to=reply_to)
    message.attach_alternative(html, "text/html")
    message.send()


def partner_invitation_send(*, user: PartnerUser, url: str, base_url: str = "") -> None:
    """The invitation e-mail: the link (``url``, holding the token) and, for later, the tenant's
    partner login page."""
    tenant = user.partner.tenant
    context = {
        "tenant": tenant.name,
        "partner": user.partner.name,
        "name": user.name,
        "url": url,
        "login_url": public_url(partner_login_path(tenant=tenant), base_url),
        "days": INVITATION_LIFETIME.days,
    }
    partner_user_email_send(user=user, template="partner_invitation", context=context)
    logger.info("partner invitation e-mailed", extra={"tenant_id": str(tenant.pk), "partner_user_id": str(user.pk)})


# --- changes by staff or a partner admin ---------------------------------------------------------------


def _self_check(user: PartnerUser, actor: Actor) -> None:
    if actor.type == ActorType.PARTNER_USER and actor.id == str(user.pk):
        raise PartnerUserSelfChange("You cannot change your own role or access: ask another admin of your partner.")


def partner_user_sessions_end(*, user: PartnerUser, at: datetime) -> int:
    """Ends every open dashboard session of the user: on removal or deactivation."""
    return PartnerSession.objects.filter(user=user, ended_at__isnull=True).update(ended_at=at)


def partner_user_update(
    *,
    tenant: Tenant,
    user: PartnerUser,
    actor: Actor,
    at: datetime,
    name: str | None = None,
    role: str | None = None,
    language: str | None = None,
    is_active: bool | None = None,
) -> PartnerUser:
    """Change a partner user's name, role, language or access. Deactivating ends their sessions at
    once; they keep their row (and history) and can be reactivated."""
    clean = _fields_check(name=name, role=role, language=language)
    changes: dict[str, Any] = {k: v for k, v in clean.items() if getattr(user, k) != v}
    if is_active is not None and is_active != user.is_active:
        changes["is_active"] = is_active
    if not changes:
        return user
    if "role" in changes or "is_active" in changes:
        _self_check(user, actor)
    with transaction.atomic():
        locked = PartnerUser.objects.select_for_update().get(tenant=tenant, pk=user.pk)
        before = {field: getattr(locked, field) for field in changes}
        for field, value in changes.items():
            setattr(locked, field, value)
        locked.save(update_fields=list(changes))
        if changes.get("is_active") is False:
            action = "partner_user.deactivated"
            partner_user_sessions_end(user=locked, at=at)
        elif changes.get("is_active") is True:
            action = "partner_user.reactivated"
        else:
            action = "partner_user.updated"
        audit_record(
            tenant=tenant,
            actor=actor,
            action=action,
            object_type="partner",
            object_id=user.partner.code,
            at=at,
            before={"email": locked.email, **before},
            after={"email": locked.email, **changes},
        )
    locked.partner = user.partner
    return locked


def partner_user_remove(*, tenant: Tenant, user: PartnerUser, actor: Actor, at: datetime) -> PartnerUser:
    """Remove a partner user's access: deactivated (the row and its history stay), their sessions
    and pending invitations end. Removing a deactivated user changes nothing."""
    _self_check(user, actor)
    with transaction.atomic():
        locked = PartnerUser.objects.select_for_update().get(tenant=tenant, pk=user.pk)
        if not locked.is_active:
            locked.partner = user.partner
            return locked
        locked.is_active = False
        locked.save(update_fields=["is_active"])
        ended = partner_user_sessions_end(user=locked, at=at)
        PartnerInvitation.objects.filter(
            tenant=tenant, user=locked, used_at__isnull=True, voided_at__isnull=True
        ).update(voided_at=at)
        audit_record(
            tenant=tenant,
            actor=actor,
            action="partner_user.removed",
            object_type="partner",
            object_id=user.partner.code,
            at=at,
            before={"email": locked.email, "name": locked.name, "role": locked.role},
            after={"email": locked.email, "is_active": False, "sessions_ended": ended},
        )
    locked.partner = user.partner
    return locked
