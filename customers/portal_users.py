"""Who logs in to the customer portal (specs/portal.md, "Who logs in"): portal users, their
invitations, the e-mailed one-time codes, passwords and the optional second factor (TOTP).

- Staff (back-office or API) or a customer's portal admin invite a portal user: the e-mail, in the
  customer's language and signed with the tenant's name, holds a link to the tenant's portal that
  works once, for 7 days (only its SHA-256 is kept). Following it lets the person in, and choose a
  password if they want one.
- A login is an e-mailed 6-digit code (valid 10 minutes, once, 5 wrong tries at most, a new one voids
  the older) or a password; then the authenticator's code when the user has set up TOTP. Every
  refused step is on the tenant's audit log, and every login (``portal_session_open``).
- Nothing here tells a caller whether an address has an account: the login page says the same
  thing either way, and only an active portal user is ever e-mailed a code.
"""

import logging
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import formataddr, parseaddr
from typing import Any, NoReturn
from urllib.parse import urlencode

import pyotp
from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.hashers import check_password, make_password
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import F, QuerySet
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.crypto import constant_time_compare, salted_hmac

from billing_platform.errors import FieldError, InvalidInput, invalid
from customers.errors import PortalLoginRefused, PortalUserEmailTaken, PortalUserNotFound, PortalUserSelfChange
from customers.models import Customer, PortalInvitation, PortalLoginCode, PortalRole, PortalSession, PortalUser
from customers.portal import portal_user_sessions_end, token_hash
from tenancy.actors import Actor
from tenancy.models import ActorType, Tenant
from tenancy.services import audit_record

logger = logging.getLogger(__name__)

INVITATION_LIFETIME = timedelta(days=7)
CODE_LIFETIME = timedelta(minutes=10)
CODE_MAX_FAILURES = 5
CODE_DIGITS = 6
# Refused logins all read the same on the page, whatever the reason the audit log keeps.
REFUSED = "This code or password is not right, or has expired."


# --- reading ----------------------------------------------------------------------------------------


def uuid_or_none(value: object) -> uuid.UUID | None:
    """``value`` as a UUID, or None when it is not one (an id from a path: unknown, so not found)."""
    try:
        return uuid.UUID(str(value or ""))
    except ValueError:
        return None


def portal_user_list(*, tenant: Tenant, customer: Customer) -> QuerySet[PortalUser]:
    return PortalUser.objects.filter(tenant=tenant, customer=customer).order_by("email")


def portal_user_get(*, tenant: Tenant, customer: Customer, user_id: str) -> PortalUser:
    """The customer's portal user ``user_id``; another customer's, or an unknown id, is not found."""
    key = uuid_or_none(user_id)
    user = PortalUser.objects.filter(tenant=tenant, customer=customer, pk=key).first() if key else None
    if user is None:
        raise PortalUserNotFound("No portal user %s for this customer." % user_id)
    return user


def portal_user_for_email(*, tenant: Tenant, email: str) -> PortalUser | None:
    """The tenant's active portal user with this address (any case), if any."""
    email = (email or "").strip()
    if not email or len(email) > 254:
        return None
    return (
        PortalUser.objects.select_related("customer", "customer__tenant")
        .filter(tenant=tenant, email__iexact=email, is_active=True)
        .first()
    )


# --- invitations ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PortalUserInvited:
    user: PortalUser
    invitation: PortalInvitation
    # The link e-mailed; its token is kept nowhere else.
    url: str


def _email(value: str) -> str:
    email = (value or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise invalid("email", "invalid_email", "%s is not an e-mail address." % (value or "")) from None
    return email


def _fields_check(*, email: str | None = None, name: str | None = None, role: str | None = None) -> dict[str, str]:
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
        if role not in PortalRole.values:
            errors.append(
                FieldError("role", "invalid_choice", "The role must be one of: %s." % ", ".join(PortalRole.values))
            )
        clean["role"] = role
    if errors:
        raise InvalidInput("; ".join(e.message for e in errors), errors=errors)
    return clean


def public_url(path: str, base_url: str = "") -> str:
    base = (base_url or settings.TRIPOD_PUBLIC_URL).rstrip("/")
    return base + path


def _invitation_make(*, tenant: Tenant, user: PortalUser, actor: Actor, at: datetime) -> tuple[PortalInvitation, str]:
    """A new invitation for ``user``, voiding the pending ones: only the newest link works."""
    token = secrets.token_urlsafe(32)
    PortalInvitation.objects.filter(tenant=tenant, user=user, used_at__isnull=True, voided_at__isnull=True).update(
        voided_at=at
    )
    invitation = PortalInvitation.objects.create(
        tenant=tenant,
        user=user,
        token_hash=token_hash(token),
        created_by=actor.label[:254],
        created_at=at,
        expires_at=at + INVITATION_LIFETIME,
    )
    return invitation, token


def portal_user_invite(
    *,
    tenant: Tenant,
    customer: Customer,
    email: str,
    name: str,
    role: str,
    actor: Actor,
    at: datetime,
    base_url: str = "",
) -> PortalUserInvited:
    """Make ``email`` a portal user of ``customer`` with ``role``, and e-mail them their invitation.
    An address already a portal user of this tenant (of any of its customers) is a conflict.
    ``base_url`` is the site's address for the link (the request's; blank: TRIPOD_PUBLIC_URL)."""
    clean = _fields_check(email=email, name=name, role=role)
    try:
        with transaction.atomic():
            user = PortalUser.objects.create(
                tenant=tenant,
                customer=customer,
                email=clean["email"],
                name=clean["name"],
                role=clean["role"],
                invited_at=at,
                invited_by=actor.label[:254],
            )
            invitation, token = _invitation_make(tenant=tenant, user=user, actor=actor, at=at)
            audit_record(
                tenant=tenant,
                actor=actor,
                action="portal_user.invited",
                object_type="customer",
                object_id=customer.external_id,
                at=at,
                after={"email": user.email, "name": user.name, "role": user.role},
            )
    except IntegrityError:
        raise PortalUserEmailTaken(
            "%s is already a portal user of this account or of another customer's." % clean["email"]
        ) from None
    user.customer = customer
    customer.tenant = tenant
    url = public_url(reverse("portal:invitation", args=[tenant.slug, token]), base_url)
    portal_invitation_send(user=user, url=url, base_url=base_url)
    return PortalUserInvited(user=user, invitation=invitation, url=url)


def portal_user_invitation_resend(
    *, tenant: Tenant, user: PortalUser, actor: Actor, at: datetime, base_url: str = ""
) -> PortalUserInvited:
    """A new invitation link (the previous one stops working), e-mailed again."""
    with transaction.atomic():
        invitation, token = _invitation_make(tenant=tenant, user=user, actor=actor, at=at)
        PortalUser.objects.filter(pk=user.pk).update(invited_at=at, invited_by=actor.label[:254])
        audit_record(
            tenant=tenant,
            actor=actor,
            action="portal_user.invitation_resent",
            object_type="customer",
            object_id=user.customer.external_id,
            at=at,
            after={"email": user.email},
        )
    url = public_url(reverse("portal:invitation", args=[tenant.slug, token]), base_url)
    portal_invitation_send(user=user, url=url, base_url=base_url)
    return PortalUserInvited(user=user, invitation=invitation, url=url)


def _language(user: PortalUser) -> str:
    return user.language or user.customer.language or settings.LANGUAGE_CODE[:2]


def _send(*, user: PortalUser, template: str, context: dict[str, Any]) -> None:
    """An e-mail to a portal user in their language, sent in the tenant's name."""
    tenant = user.customer.tenant
    sender = formataddr((tenant.name, parseaddr(settings.DEFAULT_FROM_EMAIL)[1]))
    with translation.override(_language(user)):
        subject = " ".join(render_to_string("customers/email/%s_subject.txt" % template, context).split())
        body = render_to_string("customers/email/%s_body.txt" % template, context).strip() + "\n"
    reply_to = [tenant.billing_email] if tenant.billing_email else None
    EmailMessage(subject=subject, body=body, from_email=sender, to=[user.email], reply_to=reply_to).send()


def portal_invitation_send(*, user: PortalUser, url: str, base_url: str = "") -> None:
    """The invitation e-mail: the link (``url``, holding the token) and, for later, the tenant's
    portal login page with the address filled in."""
    tenant = user.customer.tenant
    login_path = reverse("portal:login", args=[tenant.slug]) + "?" + urlencode({"email": user.email})
    context = {
        "tenant": tenant.name,
        "customer": user.customer.name,
        "name": user.name,
        "url": url,
        "login_url": public_url(login_path, base_url),
        "days": INVITATION_LIFETIME.days,
    }
    _send(user=user, template="portal_invitation", context=context)
    logger.info("portal invitation e-mailed", extra={"tenant_id": str(tenant.pk), "portal_user_id": str(user.pk)})


def portal_invitation_get(*, tenant: Tenant, token: str, at: datetime) -> PortalInvitation | None:
    """The pending invitation of a link, with its active user; None for anything else."""
    if not token or len(token) > 100:
        return None
    invitation = (
        PortalInvitation.objects.select_related("user", "user__customer")
        .filter(tenant=tenant, token_hash=token_hash(token))
        .first()
    )
    if invitation is None or not invitation.is_pending(at) or not invitation.user.is_active:
        return None
    return invitation


def _attributes(user: PortalUser) -> Any:
    """The user as Django's password validators see it (they compare a password with its e-mail and
    name, whatever the model)."""
    return user


def portal_invitation_accept(*, tenant: Tenant, token: str, password: str, at: datetime) -> PortalUser | None:
    """Use an invitation (once): the person proved they read the mailbox, so they are let in. A
    password, if given, must pass Django's validators (else ``InvalidInput`` on ``password``, and the
    link still works). None: the link is used, voided, expired or unknown."""
    invitation = portal_invitation_get(tenant=tenant, token=token, at=at)
    if invitation is None:
        return None
    user = invitation.user
    if password:
        try:
            password_validation.validate_password(password, user=_attributes(user))
        except ValidationError as exc:
            raise InvalidInput(
                " ".join(exc.messages),
                errors=[FieldError("password", "weak_password", message) for message in exc.messages],
            ) from None
    with transaction.atomic():
        taken = PortalInvitation.objects.filter(pk=invitation.pk, used_at__isnull=True, voided_at__isnull=True).update(
            used_at=at
        )
        if not taken:
            return None
        if password:
            user.password = make_password(password)
            user.save(update_fields=["password"])
        audit_record(
            tenant=tenant,
            actor=Actor.portal_user(user),
            action="portal_user.invitation_accepted",
            object_type="customer",
            object_id=user.customer.external_id,
            at=at,
            after={"email": user.email, "password_set": bool(password)},
        )
    return user


# --- changes by staff or a portal admin ---------------------------------------------------------------


def _self_check(user: PortalUser, actor: Actor) -> None:
    if actor.type == ActorType.PORTAL_USER and actor.id == str(user.pk):
        raise PortalUserSelfChange("You cannot change your own role or access: ask another admin of your account.")


def portal_user_update(
    *,
    tenant: Tenant,
    user: PortalUser,
    actor: Actor,
    at: datetime,
    name: str | None = None,
    role: str | None = None,
    is_active: bool | None = None,
) -> PortalUser:
    """Change a portal user's name, role or access. Deactivating ends their sessions at once; they
    keep their row (and history) and can be reactivated."""
    clean = _fields_check(name=name, role=role)
    changes: dict[str, Any] = {k: v for k, v in clean.items() if getattr(user, k) != v}
    if is_active is not None and is_active != user.is_active:
        changes["is_active"] = is_active
    if not changes:
        return user
    if "role" in changes or "is_active" in changes:
        _self_check(user, actor)
    with transaction.atomic():
        locked = PortalUser.objects.select_for_update().get(tenant=tenant, pk=user.pk)
        before = {field: getattr(locked, field) for field in changes}
        for field, value in changes.items():
            setattr(locked, field, value)
        locked.save(update_fields=list(changes))
        if changes.get("is_active") is False:
            action = "portal_user.deactivated"
            portal_user_sessions_end(user=locked, at=at)
        elif changes.get("is_active") is True:
            action = "portal_user.reactivated"
        else:
            action = "portal_user.updated"
        audit_record(
            tenant=tenant,
            actor=actor,
            action=action,
            object_type="customer",
            object_id=user.customer.external_id,
            at=at,
            before={"email": locked.email, **before},
            after={"email": locked.email, **changes},
        )
    locked.customer = user.customer
    return locked


def portal_user_remove(*, tenant: Tenant, user: PortalUser, actor: Actor, at: datetime) -> None:
    """Remove a portal user: their sessions end and the address can be invited again."""
    _self_check(user, actor)
    with transaction.atomic():
        portal_user_sessions_end(user=user, at=at)
        audit_record(
            tenant=tenant,
            actor=actor,
            action="portal_user.removed",
            object_type="customer",
            object_id=user.customer.external_id,
            at=at,
            before={"email": user.email, "name": user.name, "role": user.role},
        )
        PortalUser.objects.filter(tenant=tenant, pk=user.pk).delete()


# --- logging in -------------------------------------------------------------------------------------------


def _refuse(
    *, tenant: Tenant, email: str, user: PortalUser | None, reason: str, at: datetime, **extra: Any
) -> NoReturn:
    """Write the refused attempt to the audit log (in its own transaction: it must stay), then raise."""
    actor = Actor.portal_user(user) if user is not None else Actor(ActorType.PORTAL_USER, "", (email or "")[:254])
    audit_record(
        tenant=tenant,
        actor=actor,
        action="portal.login_refused",
        object_type="customer",
        object_id=user.customer.external_id if user is not None else "",
        at=at,
        after={"email": (email or "")[:254], "reason": reason, **extra},
    )
    raise PortalLoginRefused(REFUSED, reason=reason)


def _code_hash(user: PortalUser, code: str) -> str:
    return salted_hmac("tripod.portal.login_code", "%s:%s" % (user.pk, code), algorithm="sha256").hexdigest()


def portal_login_code_send(*, tenant: Tenant, email: str, at: datetime) -> bool:
    """E-mail a new 6-digit code to the tenant's active portal user with this address, voiding the
    older codes. An unknown or inactive address gets nothing (and the caller says the same thing):
    the attempt is on the audit log. Returns whether a code was sent, for the caller's logs only."""
    user = portal_user_for_email(tenant=tenant, email=email)
    if user is None:
        audit_record(
            tenant=tenant,
            actor=Actor(ActorType.PORTAL_USER, "", (email or "")[:254]),
            action="portal.login_refused",
            object_type="customer",
            object_id="",
            at=at,
            after={"email": (email or "")[:254], "reason": "unknown_address"},
        )
        return False
    code = "%0*d" % (CODE_DIGITS, secrets.randbelow(10**CODE_DIGITS))
    with transaction.atomic():
        PortalLoginCode.objects.filter(tenant=tenant, user=user, used_at__isnull=True, voided_at__isnull=True).update(
            voided_at=at
        )
        PortalLoginCode.objects.create(
            tenant=tenant, user=user, code_hash=_code_hash(user, code), created_at=at, expires_at=at + CODE_LIFETIME
        )
        audit_record(
            tenant=tenant,
            actor=Actor.portal_user(user),
            action="portal.login_code_sent",
            object_type="customer",
            object_id=user.customer.external_id,
            at=at,
            after={"email": user.email},
        )
    context = {"tenant": tenant.name, "code": code, "minutes": int(CODE_LIFETIME.total_seconds() // 60)}
    _send(user=user, template="portal_login_code", context=context)
    return True


def portal_login_code_check(*, tenant: Tenant, email: str, code: str, at: datetime) -> PortalUser:
    """The user a code lets in (the code is then used up), or ``PortalLoginRefused``. Only the newest
    code counts; each wrong try counts against it, and the fifth voids it."""
    user = portal_user_for_email(tenant=tenant, email=email)
    if user is None:
        _refuse(tenant=tenant, email=email, user=None, reason="unknown_address", at=at)
    code = re.sub(r"\s", "", code or "")
    with transaction.atomic():
        login_code = (
            PortalLoginCode.objects.select_for_update()
            .filter(tenant=tenant, user=user, used_at__isnull=True, voided_at__isnull=True)
            .order_by("-created_at")
            .first()
        )
        reason, failures = "", 0
        if login_code is None:
            reason = "no_code"
        elif login_code.expires_at <= at:
            reason = "code_expired"
        elif not constant_time_compare(login_code.code_hash, _code_hash(user, code)):
            reason, failures = "wrong_code", login_code.failed_attempts + 1
            # The fifth wrong try voids the code: a new one must be asked for.
            PortalLoginCode.objects.filter(pk=login_code.pk).update(
                failed_attempts=F("failed_attempts") + 1, **({"voided_at": at} if failures >= CODE_MAX_FAILURES else {})
            )
        else:
            PortalLoginCode.objects.filter(pk=login_code.pk).update(used_at=at)
    if reason:
        extra = {"failed_attempts": failures} if failures else {}
        _refuse(tenant=tenant, email=email, user=user, reason=reason, at=at, **extra)
    return user


# A hash to check a password against when the address has none: the same work either way, so the
# answer's timing does not tell which addresses have a password.
_NO_PASSWORD = make_password(None)


def portal_login_password_check(*, tenant: Tenant, email: str, password: str, at: datetime) -> PortalUser:
    user = portal_user_for_email(tenant=tenant, email=email)
    encoded = user.password if user is not None and user.password else _NO_PASSWORD
    matches = check_password(password or "", encoded)
    if user is None:
        _refuse(tenant=tenant, email=email, user=None, reason="unknown_address", at=at)
    if not matches or not user.password:
        _refuse(tenant=tenant, email=email, user=user, reason="wrong_password", at=at)
    return user


def totp_verify(secret: str, code: str, at: datetime) -> bool:
    """A TOTP code of ``secret`` at ``at``, or of the 30 seconds before or after (clocks drift)."""
    code = re.sub(r"\s", "", code or "")
    if not secret or not re.fullmatch(r"\d{6}", code):
        return False
    return pyotp.TOTP(secret).verify(code, for_time=at, valid_window=1)


def portal_login_totp_check(*, tenant: Tenant, user_id: str, code: str, at: datetime) -> PortalUser:
    """The second step, once the code or the password was right: the authenticator's code."""
    key = uuid_or_none(user_id)
    user = (
        PortalUser.objects.select_related("customer", "customer__tenant")
        .filter(tenant=tenant, pk=key, is_active=True)
        .first()
        if key
        else None
    )
    if user is None:
        _refuse(tenant=tenant, email="", user=None, reason="unknown_address", at=at)
    if not totp_verify(user.totp_secret, code, at):
        _refuse(tenant=tenant, email=user.email, user=user, reason="wrong_second_factor", at=at)
    return user


# --- the user's own security ------------------------------------------------------------------------------


def _other_sessions_end(*, user: PortalUser, keep_token: str, at: datetime) -> int:
    """Every other session of the user ends: whoever else holds one must log in again."""
    return (
        PortalSession.objects.filter(user=user, ended_at__isnull=True)
        .exclude(key_hash=token_hash(keep_token or ""))
        .update(ended_at=at)
    )


def portal_user_password_set(
    *, tenant: Tenant, user: PortalUser, password: str, current_password: str, keep_token: str, at: datetime
) -> PortalUser:
    """Set or change the user's password (Django's validators). Changing one asks for the current
    one. The user's other sessions end."""
    errors: list[FieldError] = []
    if user.password and not check_password(current_password or "", user.password):
        errors.append(FieldError("current_password", "wrong_password", "The current password is not right."))
    try:
        password_validation.validate_password(password or "", user=_attributes(user))
    except ValidationError as exc:
        errors += [FieldError("password", "weak_password", message) for message in exc.messages]
    if errors:
        raise InvalidInput("; ".join(e.message for e in errors), errors=errors)
    with transaction.atomic():
        changed = bool(user.password)
        user.password = make_password(password)
        user.save(update_fields=["password"])
        ended = _other_sessions_end(user=user, keep_token=keep_token, at=at)
        audit_record(
            tenant=tenant,
            actor=Actor.portal_user(user),
            action="portal_user.password_changed" if changed else "portal_user.password_set",
            object_type="customer",
            object_id=user.customer.external_id,
            at=at,
            after={"email": user.email, "sessions_ended": ended},
        )
    return user


def totp_secret_new() -> str:
    return pyotp.random_base32()


def totp_provisioning_uri(*, user: PortalUser, secret: str) -> str:
    """What the QR code holds: authenticator apps read the account and issuer from it."""
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=user.customer.tenant.name)


def portal_user_totp_enable(
    *, tenant: Tenant, user: PortalUser, secret: str, code: str, keep_token: str, at: datetime
) -> PortalUser:
    """Turn on the second factor once the user proves their app has ``secret`` (a current code)."""
    if not re.fullmatch(r"[A-Z2-7]{16,64}", secret or ""):
        raise invalid("secret", "invalid", "This set-up has expired: start again.")
    if not totp_verify(secret, code, at):
        raise invalid("code", "wrong_code", "This code is not the one your app shows now.")
    with transaction.atomic():
        user.totp_secret = secret
        user.save(update_fields=["totp_secret"])
        ended = _other_sessions_end(user=user, keep_token=keep_token, at=at)
        audit_record(
            tenant=tenant,
            actor=Actor.portal_user(user),
            action="portal_user.second_factor_added",
            object_type="customer",
            object_id=user.customer.external_id,
            at=at,
            after={"email": user.email, "sessions_ended": ended},
        )
    return user


def portal_user_totp_disable(
    *, tenant: Tenant, user: PortalUser, code: str, keep_token: str, at: datetime
) -> PortalUser:
    """Turn the second factor off, on a current code of the app (whoever borrowed the session for a
    minute cannot)."""
    if not user.totp_secret:
        return user
    if not totp_verify(user.totp_secret, code, at):
        raise invalid("code", "wrong_code", "This code is not the one your app shows now.")
    with transaction.atomic():
        user.totp_secret = ""
        user.save(update_fields=["totp_secret"])
        ended = _other_sessions_end(user=user, keep_token=keep_token, at=at)
        audit_record(
            tenant=tenant,
            actor=Actor.portal_user(user),
            action="portal_user.second_factor_removed",
            object_type="customer",
            object_id=user.customer.external_id,
            at=at,
            after={"email": user.email, "sessions_ended": ended},
        )
    return user
