"""A tenant's team: owners invite staff by e-mail with a role, change roles and remove members; the
tenant's two-factor requirement; and the audit entries of a staff member's own security changes.

An invitation is a link with a random token (only its SHA-256 is stored, like API keys), valid
``STAFF_INVITATION_MAX_AGE`` and once. Accepting it creates the login (the invitee chooses a
password) or adds an existing login to the tenant. A tenant always keeps an owner: the last one can
be neither demoted nor removed. Every change is written to the tenant's audit log.
"""

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import QuerySet
from django.template.loader import render_to_string
from django.utils import translation

from billing_platform.errors import FieldError, InvalidInput, invalid
from billing_platform.rls import tenant_context
from tenancy.actors import Actor
from tenancy.errors import (
    AlreadyMember,
    InvitationForAnotherEmail,
    InvitationNotFound,
    InvitationNotPending,
    LastOwner,
    MembershipNotFound,
)
from tenancy.models import AuditLogEntry, Invitation, Membership, Role, Tenant
from tenancy.services import audit_entry, audit_record, audited_update

logger = logging.getLogger(__name__)

# 256 bits of randomness in the link: a fast hash is right, as for API keys.
INVITATION_TOKEN_BYTES = 32


def invitation_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _email(value: str) -> str:
    email = (value or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise invalid("email", "invalid_email", "%s is not an e-mail address." % (value or "")) from None
    return email


def _role(value: str) -> str:
    if value not in Role.values:
        raise invalid("role", "invalid_choice", "The role must be one of: %s." % ", ".join(Role.values))
    return value


def _user_by_email(email: str) -> Any:
    return get_user_model().objects.filter(email__iexact=email).order_by("pk").first()


def login_exists(*, email: str) -> bool:
    """Whether someone already logs in to Tripod with this e-mail address (in any tenant)."""
    return get_user_model().objects.filter(email__iexact=(email or "").strip()).exists()


# What the team page lists as its history: members, invitations, and members' own security changes.
TEAM_OBJECT_TYPES = ("membership", "invitation", "user")


def team_history(*, tenant: Tenant) -> QuerySet[AuditLogEntry]:
    return AuditLogEntry.objects.filter(tenant=tenant, object_type__in=TEAM_OBJECT_TYPES).order_by("-at", "-id")


# --- invitations ----------------------------------------------------------------------------------


def invitation_list_pending(*, tenant: Tenant, at: datetime) -> QuerySet[Invitation]:
    return (
        Invitation.objects.filter(tenant=tenant, accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=at)
        .select_related("invited_by")
        .order_by("-created_at")
    )


def invitation_create(
    *, tenant: Tenant, email: str, role: str, actor: Actor, at: datetime, invited_by: Any = None
) -> tuple[Invitation, str]:
    """Invite ``email`` to the tenant's team with ``role``. Returns the invitation and its token,
    which is never stored: put it in the link of the e-mail (``invitation_send``) and forget it.

    A pending invitation to the same address is revoked: only the newest link works."""
    errors: list[FieldError] = []
    try:
        email = _email(email)
    except InvalidInput as exc:
        errors += exc.errors
    try:
        role = _role(role)
    except InvalidInput as exc:
        errors += exc.errors
    if errors:
        raise InvalidInput("; ".join(e.message for e in errors), errors=errors)
    token = secrets.token_urlsafe(INVITATION_TOKEN_BYTES)
    with transaction.atomic():
        if Membership.objects.filter(tenant=tenant, user__email__iexact=email).exists():
            raise AlreadyMember("%s is already a member of this team." % email)
        replaced = list(invitation_list_pending(tenant=tenant, at=at).filter(email=email).values_list("pk", flat=True))
        Invitation.objects.filter(pk__in=replaced).update(revoked_at=at)
        invitation = Invitation.objects.create(
            tenant=tenant,
            email=email,
            role=role,
            token_hash=invitation_token_hash(token),
            invited_by=invited_by,
            created_at=at,
            expires_at=at + settings.STAFF_INVITATION_MAX_AGE,
        )
        audit_record(
            tenant=tenant,
            actor=actor,
            action="invitation.created",
            object_type="invitation",
            object_id=str(invitation.pk),
            at=at,
            after={
                "email": email,
                "role": role,
                "expires_at": invitation.expires_at.isoformat(),
                **({"replaces": [str(pk) for pk in replaced]} if replaced else {}),
            },
        )
    logger.info("invitation created", extra={"tenant_id": str(tenant.pk), "invitation_id": str(invitation.pk)})
    return invitation, token


def invitation_send(*, invitation: Invitation, accept_url: str, inviter: str, language: str) -> None:
    """E-mail the invitation's link (``accept_url`` holds the token) in ``language``."""
    context: dict[str, Any] = {
        "tenant": invitation.tenant.name,
        "inviter": inviter,
        "accept_url": accept_url,
        "expires_at": invitation.expires_at,
        "days": settings.STAFF_INVITATION_MAX_AGE.days,
    }
    with translation.override(language):
        context["role"] = str(invitation.get_role_display())
        subject = " ".join(render_to_string("tenancy/email/invitation_subject.txt", context).split())
        body = render_to_string("tenancy/email/invitation_body.txt", context).strip() + "\n"
    EmailMessage(subject=subject, body=body, from_email=settings.DEFAULT_FROM_EMAIL, to=[invitation.email]).send()
    logger.info(
        "invitation e-mailed",
        extra={"tenant_id": str(invitation.tenant_id), "invitation_id": str(invitation.pk)},
    )


def invitation_revoke(*, tenant: Tenant, invitation_id: str, actor: Actor, at: datetime) -> Invitation:
    with transaction.atomic():
        invitation = Invitation.objects.select_for_update().filter(tenant=tenant, pk=invitation_id).first()
        if invitation is None:
            raise InvitationNotFound("No such invitation.")
        if not invitation.is_pending(at):
            raise InvitationNotPending("This invitation was already used, revoked or has expired.")
        invitation.revoked_at = at
        invitation.save(update_fields=["revoked_at"])
        audit_record(
            tenant=tenant,
            actor=actor,
            action="invitation.revoked",
            object_type="invitation",
            object_id=str(invitation.pk),
            at=at,
            before={"email": invitation.email, "role": invitation.role},
        )
    return invitation


def invitation_for_token(*, token: str, at: datetime) -> Invitation:
    """The pending invitation of a link's token; ``InvitationNotFound`` for an unknown token and
    ``InvitationNotPending`` for one used, revoked or expired."""
    invitation = (
        Invitation.objects.select_related("tenant").filter(token_hash=invitation_token_hash(token or "")).first()
    )
    if invitation is None:
        raise InvitationNotFound("This invitation link is not valid.")
    if not invitation.is_pending(at):
        raise InvitationNotPending("This invitation was already used, revoked or has expired.")
    return invitation


@dataclass(frozen=True)
class InvitationAccepted:
    membership: Membership
    user: Any
    new_login: bool


def invitation_accept(*, token: str, at: datetime, user: Any = None, password: str = "") -> InvitationAccepted:
    """Join the team an invitation is for, once.

    ``user`` is the login accepting it (already logged in: its e-mail must be the invitation's); without
    one, a login is created for the invited address with ``password`` (checked by the password
    validators), unless the address has a login already, which must then log in first."""
    with transaction.atomic():
        found = invitation_for_token(token=token, at=at)
        invitation = Invitation.objects.select_for_update().select_related("tenant").get(pk=found.pk)
        if not invitation.is_pending(at):  # accepted by a concurrent request meanwhile
            raise InvitationNotPending("This invitation was already used, revoked or has expired.")
        new_login = False
        if user is not None:
            if (user.email or "").lower() != invitation.email:
                raise InvitationForAnotherEmail(
                    "This invitation is for %s: log in with that address to accept it." % invitation.email
                )
        else:
            if _user_by_email(invitation.email) is not None:
                raise InvitationForAnotherEmail(
                    "%s already has a login: log in to accept the invitation." % invitation.email
                )
            user_model = get_user_model()
            candidate = user_model(username=invitation.email, email=invitation.email)
            try:
                password_validation.validate_password(password, user=candidate)
            except ValidationError as exc:
                raise InvalidInput(
                    " ".join(exc.messages),
                    errors=[FieldError("password", "invalid_password", m) for m in exc.messages],
                ) from None
            user = user_model.objects.create_user(username=invitation.email, email=invitation.email, password=password)
            new_login = True
        if Membership.objects.filter(tenant=invitation.tenant, user=user).exists():
            raise AlreadyMember("%s is already a member of this team." % invitation.email)
        membership = Membership.objects.create(tenant=invitation.tenant, user=user, role=invitation.role)
        invitation.accepted_at = at
        invitation.accepted_by = user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
        with tenant_context(invitation.tenant):  # opened before any tenant: the audit log is the tenant's
            audit_record(
                tenant=invitation.tenant,
                actor=Actor.user(user),
                action="membership.created",
                object_type="membership",
                object_id=str(membership.pk),
                at=at,
                after={
                    "email": invitation.email,
                    "role": invitation.role,
                    "invitation": str(invitation.pk),
                    "new_login": new_login,
                },
            )
    logger.info(
        "invitation accepted",
        extra={"tenant_id": str(invitation.tenant_id), "invitation_id": str(invitation.pk)},
    )
    return InvitationAccepted(membership=membership, user=user, new_login=new_login)


# --- members ----------------------------------------------------------------------------------------


def membership_list(*, tenant: Tenant) -> QuerySet[Membership]:
    return Membership.objects.filter(tenant=tenant).select_related("user").order_by("user__email", "pk")


def _locked_membership(tenant: Tenant, membership_id: Any) -> Membership:
    """The membership, with the tenant row locked first: two owners demoting each other at once
    cannot both pass the last-owner check."""
    Tenant.objects.select_for_update().get(pk=tenant.pk)
    try:
        membership = Membership.objects.select_related("user").filter(tenant=tenant, pk=int(membership_id)).first()
    except (TypeError, ValueError):
        membership = None
    if membership is None:
        raise MembershipNotFound("No such member.")
    return membership


def _other_owners(membership: Membership) -> int:
    return Membership.objects.filter(tenant_id=membership.tenant_id, role=Role.OWNER).exclude(pk=membership.pk).count()


def membership_role_change(*, tenant: Tenant, membership_id: Any, role: str, actor: Actor, at: datetime) -> Membership:
    role = _role(role)
    with transaction.atomic():
        membership = _locked_membership(tenant, membership_id)
        if membership.role == Role.OWNER and role != Role.OWNER and _other_owners(membership) == 0:
            raise LastOwner("%s is the team's only owner: make another member owner first." % membership.user.email)
        audited_update(
            obj=membership,
            changes={"role": role},
            actor=actor,
            at=at,
            action="membership.role_changed",
            object_type="membership",
            object_id=str(membership.pk),
        )
    return membership


def membership_remove(*, tenant: Tenant, membership_id: Any, actor: Actor, at: datetime) -> Membership:
    """Remove a member from the team; their login stays (it may belong to other teams)."""
    with transaction.atomic():
        membership = _locked_membership(tenant, membership_id)
        if membership.role == Role.OWNER and _other_owners(membership) == 0:
            raise LastOwner("%s is the team's only owner: make another member owner first." % membership.user.email)
        before = {"email": membership.user.email, "role": membership.role}
        object_id = str(membership.pk)
        membership.delete()
        audit_record(
            tenant=tenant,
            actor=actor,
            action="membership.removed",
            object_type="membership",
            object_id=object_id,
            at=at,
            before=before,
        )
    logger.info("member removed", extra={"tenant_id": str(tenant.pk)})
    return membership


# --- the tenant's security settings and a staff member's own ----------------------------------------


def tenant_two_factor_update(*, tenant: Tenant, required: bool, actor: Actor, at: datetime) -> Tenant:
    """Require (or stop requiring) a second factor of the roles that can finalize or refund."""
    if not isinstance(required, bool):
        raise invalid("two_factor_required", "invalid_type", "two_factor_required must be true or false.")
    with transaction.atomic():
        locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
        audited_update(
            obj=locked,
            changes={"two_factor_required": required},
            actor=actor,
            at=at,
            action="tenant.two_factor_updated",
            object_type="tenant",
            object_id=locked.slug,
        )
    return locked


def staff_security_record(*, user: Any, action: str, at: datetime, after: dict[str, Any] | None = None) -> int:
    """Record a staff member's change to their own login (a second factor added or removed, a
    password reset) in the audit log of every tenant they belong to; returns how many entries."""
    actor = Actor.user(user)
    tenants = list(Tenant.objects.filter(memberships__user=user).order_by("pk"))
    for tenant in tenants:
        with tenant_context(tenant):  # each tenant's audit log behind its own row-level security
            audit_entry(
                tenant=tenant,
                actor=actor,
                action=action,
                object_type="user",
                object_id=str(user.pk),
                at=at,
                after=after,
            ).save()
    return len(tenants)
