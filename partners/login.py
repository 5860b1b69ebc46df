"""How partner users log into the partner dashboard (specs/partners.md, "Model": the same way as
portal users, specs/portal.md "Who logs in").

- A login is an e-mailed 6-digit code (valid 10 minutes, once, 5 wrong tries at most, a new one voids
  the older) or a password; then the authenticator's code when the user has set up TOTP.
- The invitation link (made by ``partners.users``) lets an invited user in the first time, once,
  within 7 days, and lets them choose a password.
- Every refused step is on the tenant's audit log (actor type ``partner_user``), and every login
  (``partners.sessions.partner_session_open``).
- Nothing here tells a caller whether an address has an account: only an active partner user of an
  active partner is ever e-mailed a code, and the page says the same thing either way.
"""

import re
import secrets
from datetime import datetime, timedelta
from typing import Any, NoReturn

from django.contrib.auth import password_validation
from django.contrib.auth.hashers import check_password, make_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils.crypto import constant_time_compare, salted_hmac

from billing_platform.errors import DomainError, FieldError, InvalidInput, invalid
from customers.models import PartnerStatus
from customers.portal import token_hash
from customers.portal_users import totp_verify, uuid_or_none
from partners.models import PartnerInvitation, PartnerLoginCode, PartnerUser
from partners.sessions import partner_user_sessions_end
from partners.users import partner_user_email_send
from tenancy.actors import Actor
from tenancy.models import ActorType, Tenant
from tenancy.services import audit_record

CODE_LIFETIME = timedelta(minutes=10)
CODE_MAX_FAILURES = 5
CODE_DIGITS = 6
REFUSED = "This code or password is not right, or has expired."


class PartnerLoginRefused(DomainError):
    """A login step that did not let the person in. ``reason`` is for the audit log only."""

    status = 403
    code = "partner_login_refused"
    title = "Login refused"

    def __init__(self, detail: str, *, reason: str) -> None:
        super().__init__(detail, extra={"reason": reason})
        self.reason = reason


def partner_user_for_email(*, tenant: Tenant, email: str) -> PartnerUser | None:
    """The tenant's active partner user with this address (any case), of an active partner."""
    email = (email or "").strip()
    if not email or len(email) > 254:
        return None
    return (
        PartnerUser.objects.select_related("partner", "partner__tenant")
        .filter(tenant=tenant, email__iexact=email, is_active=True, partner__status=PartnerStatus.ACTIVE)
        .first()
    )


def _refuse(
    *, tenant: Tenant, email: str, user: PartnerUser | None, reason: str, at: datetime, **extra: Any
) -> NoReturn:
    """Write the refused attempt to the audit log, then raise."""
    actor = Actor.partner_user(user) if user is not None else Actor(ActorType.PARTNER_USER, "", (email or "")[:254])
    audit_record(
        tenant=tenant,
        actor=actor,
        action="partner.login_refused",
        object_type="partner",
        object_id=user.partner.code if user is not None else "",
        at=at,
        after={"email": (email or "")[:254], "reason": reason, **extra},
    )
    raise PartnerLoginRefused(REFUSED, reason=reason)


def _code_hash(user: PartnerUser, code: str) -> str:
    return salted_hmac("tripod.partners.login_code", "%s:%s" % (user.pk, code), algorithm="sha256").hexdigest()


def partner_login_code_send(*, tenant: Tenant, email: str, at: datetime) -> bool:
    """E-mail a new 6-digit code to the tenant's active partner user with this address, voiding the
    older codes. An unknown or inactive address gets nothing (the attempt is on the audit log).
    Returns whether a code was sent, for the caller's logs only."""
    user = partner_user_for_email(tenant=tenant, email=email)
    if user is None:
        audit_record(
            tenant=tenant,
            actor=Actor(ActorType.PARTNER_USER, "", (email or "")[:254]),
            action="partner.login_refused",
            object_type="partner",
            object_id="",
            at=at,
            after={"email": (email or "")[:254], "reason": "unknown_address"},
        )
        return False
    code = "%0*d" % (CODE_DIGITS, secrets.randbelow(10**CODE_DIGITS))
    with transaction.atomic():
        PartnerLoginCode.objects.filter(tenant=tenant, user=user, used_at__isnull=True, voided_at__isnull=True).update(
            voided_at=at
        )
        PartnerLoginCode.objects.create(
            tenant=tenant, user=user, code_hash=_code_hash(user, code), created_at=at, expires_at=at + CODE_LIFETIME
        )
        audit_record(
            tenant=tenant,
            actor=Actor.partner_user(user),
            action="partner.login_code_sent",
            object_type="partner",
            object_id=user.partner.code,
            at=at,
            after={"email": user.email},
        )
    context = {"tenant": tenant.name, "code": code, "minutes": int(CODE_LIFETIME.total_seconds() // 60)}
    partner_user_email_send(user=user, template="login_code", context=context)
    return True


def partner_login_code_check(*, tenant: Tenant, email: str, code: str, at: datetime) -> PartnerUser:
    """The user a code lets in (the code is then used up), or ``PartnerLoginRefused``. Only the
    newest code counts; each wrong try counts against it, and the fifth voids it."""
    user = partner_user_for_email(tenant=tenant, email=email)
    if user is None:
        _refuse(tenant=tenant, email=email, user=None, reason="unknown_address", at=at)
    code = re.sub(r"\s", "", code or "")
    with transaction.atomic():
        login_code = (
            PartnerLoginCode.objects.select_for_update()
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
            PartnerLoginCode.objects.filter(pk=login_code.pk).update(
                failed_attempts=F("failed_attempts") + 1, **({"voided_at": at} if failures >= CODE_MAX_FAILURES else {})
            )
        else:
            PartnerLoginCode.objects.filter(pk=login_code.pk).update(used_at=at)
    if reason:
        extra = {"failed_attempts": failures} if failures else {}
        _refuse(tenant=tenant, email=email, user=user, reason=reason, at=at, **extra)
    return user


# Checked when the address has no password: the same work either way, so the answer's timing does
# not tell which addresses have one.
_NO_PASSWORD = make_password(None)


def partner_login_password_check(*, tenant: Tenant, email: str, password: str, at: datetime) -> PartnerUser:
    user = partner_user_for_email(tenant=tenant, email=email)
    encoded = user.password if user is not None and user.password else _NO_PASSWORD
    matches = check_password(password or "", encoded)
    if user is None:
        _refuse(tenant=tenant, email=email, user=None, reason="unknown_address", at=at)
    if not matches or not user.password:
        _refuse(tenant=tenant, email=email, user=user, reason="wrong_password", at=at)
    return user


def partner_login_totp_check(*, tenant: Tenant, user_id: str, code: str, at: datetime) -> PartnerUser:
    """The second step, once the code or the password was right: the authenticator's code."""
    key = uuid_or_none(user_id)
    user = (
        PartnerUser.objects.select_related("partner", "partner__tenant")
        .filter(tenant=tenant, pk=key, is_active=True, partner__status=PartnerStatus.ACTIVE)
        .first()
        if key
        else None
    )
    if user is None:
        _refuse(tenant=tenant, email="", user=None, reason="unknown_address", at=at)
    if not totp_verify(user.totp_secret, code, at):
        _refuse(tenant=tenant, email=user.email, user=user, reason="wrong_second_factor", at=at)
    return user


# --- invitations ------------------------------------------------------------------------------------


def partner_invitation_get(*, tenant: Tenant, token: str, at: datetime) -> PartnerInvitation | None:
    """The pending invitation of a link, with its active user of an active partner; else None."""
    if not token or len(token) > 100:
        return None
    invitation = (
        PartnerInvitation.objects.select_related("user", "user__partner", "user__partner__tenant")
        .filter(tenant=tenant, token_hash=token_hash(token))
        .first()
    )
    if (
        invitation is None
        or not invitation.is_pending(at)
        or not invitation.user.is_active
        or invitation.user.partner.status != PartnerStatus.ACTIVE
    ):
        return None
    return invitation


def _as_any(user: PartnerUser) -> Any:
    return user


def _password_errors(user: PartnerUser, password: str) -> list[FieldError]:
    try:
        # Django's validators compare a password with the user's e-mail and name, whatever the model.
        password_validation.validate_password(password, user=_as_any(user))
    except ValidationError as exc:
        return [FieldError("password", "weak_password", message) for message in exc.messages]
    return []


def partner_invitation_accept(*, tenant: Tenant, token: str, password: str, at: datetime) -> PartnerUser | None:
    """Use an invitation (once): the person proved they read the mailbox, so they are let in. A
    password, if given, must pass Django's validators (else ``InvalidInput`` on ``password``, and the
    link still works). None: the link is used, voided, expired or unknown."""
    invitation = partner_invitation_get(tenant=tenant, token=token, at=at)
    if invitation is None:
        return None
    user = invitation.user
    if password:
        errors = _password_errors(user, password)
        if errors:
            raise InvalidInput(" ".join(e.message for e in errors), errors=errors)
    with transaction.atomic():
        taken = PartnerInvitation.objects.filter(pk=invitation.pk, used_at__isnull=True, voided_at__isnull=True).update(
            used_at=at
        )
        if not taken:
            return None
        if password:
            user.password = make_password(password)
            user.save(update_fields=["password"])
        audit_record(
            tenant=tenant,
            actor=Actor.partner_user(user),
            action="partner_user.invitation_accepted",
            object_type="partner",
            object_id=user.partner.code,
            at=at,
            after={"email": user.email, "password_set": bool(password)},
        )
    return user


# --- the user's own security ------------------------------------------------------------------------


def partner_user_password_set(
    *, tenant: Tenant, user: PartnerUser, password: str, current_password: str, keep_token: str, at: datetime
) -> PartnerUser:
    """Set or change the user's password (Django's validators). Changing one asks for the current
    one. The user's other sessions end."""
    errors: list[FieldError] = []
    if user.password and not check_password(current_password or "", user.password):
        errors.append(FieldError("current_password", "wrong_password", "The current password is not right."))
    errors += _password_errors(user, password or "")
    if errors:
        raise InvalidInput("; ".join(e.message for e in errors), errors=errors)
    with transaction.atomic():
        changed = bool(user.password)
        user.password = make_password(password)
        user.save(update_fields=["password"])
        ended = partner_user_sessions_end(user=user, at=at, keep_token=keep_token)
        audit_record(
            tenant=tenant,
            actor=Actor.partner_user(user),
            action="partner_user.password_changed" if changed else "partner_user.password_set",
            object_type="partner",
            object_id=user.partner.code,
            at=at,
            after={"email": user.email, "sessions_ended": ended},
        )
    return user


def partner_user_totp_set(
    *, tenant: Tenant, user: PartnerUser, secret: str, code: str, keep_token: str, at: datetime
) -> PartnerUser:
    """Turn the second factor on (``secret``, proved by a current ``code`` of the app) or, with an
    empty ``secret``, off (proved by a current code of the app set up before). The user's other
    sessions end."""
    if secret:
        if not re.fullmatch(r"[A-Z2-7]{16,64}", secret):
            raise invalid("secret", "invalid", "This set-up has expired: start again.")
        proved = totp_verify(secret, code, at)
    else:
        if not user.totp_secret:
            return user
        proved = totp_verify(user.totp_secret, code, at)
    if not proved:
        raise invalid("code", "wrong_code", "This code is not the one your app shows now.")
    with transaction.atomic():
        user.totp_secret = secret
        user.save(update_fields=["totp_secret"])
        ended = partner_user_sessions_end(user=user, at=at, keep_token=keep_token)
        audit_record(
            tenant=tenant,
            actor=Actor.partner_user(user),
            action="partner_user.second_factor_added" if secret else "partner_user.second_factor_removed",
            object_type="partner",
            object_id=user.partner.code,
            at=at,
            after={"email": user.email, "sessions_ended": ended},
        )
    return user
