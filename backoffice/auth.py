"""How staff log in: the allauth adapter of the back-office, and what django-axes counts failed
logins by (the account's e-mail address and the client's address).

allauth serves the login, the second factor and the password reset; django-axes refuses a login
while the account or the address is locked out (``settings``: ``AXES_*``)."""

import logging
import math
from datetime import timedelta
from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.mfa.adapter import DefaultMFAAdapter
from allauth.mfa.models import Authenticator
from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.db import transaction
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

from billing_platform.encryption import decrypt, encrypt, rotate, secrets_rotate

logger = logging.getLogger("backoffice.login")

# The secrets allauth keeps in an authenticator's JSON data, by authenticator type.
_MFA_SECRETS = {Authenticator.Type.TOTP: ("secret",), Authenticator.Type.RECOVERY_CODES: ("seed",)}


class StaffMFAAdapter(DefaultMFAAdapter):
    """Second-factor secrets (the TOTP key, the recovery codes' seed) are encrypted at rest with the
    keys of TRIPOD_ENCRYPTION_KEYS, like every other secret Tripod must read back."""

    def encrypt(self, text: str) -> str:
        return encrypt(text)

    def decrypt(self, encrypted_text: str) -> str:
        return decrypt(encrypted_text)


@receiver(secrets_rotate)
def mfa_secrets_rotate(sender: Any, **kwargs: Any) -> dict[str, int]:
    """``manage.py encryption_rotate``: the second-factor secrets, encrypted again under the newest key."""
    done = 0
    with transaction.atomic():
        for authenticator in Authenticator.objects.select_for_update().filter(type__in=list(_MFA_SECRETS)):
            data = dict(authenticator.data)
            for key in _MFA_SECRETS[Authenticator.Type(authenticator.type)]:
                if key in data:
                    data[key] = rotate(data[key])
            if "migrated_codes" in data:
                data["migrated_codes"] = [rotate(code) for code in data["migrated_codes"]]
            authenticator.data = data
            authenticator.save(update_fields=["data"])
            done += 1
    return {"mfa_authenticator.data": done}


class StaffAccountAdapter(DefaultAccountAdapter):
    """Nobody signs up: owners invite their staff (``tenancy.team``). Password logins are throttled
    by django-axes, which counts them in the database per account and per address; allauth's own
    cache-based count of failed logins is left to second-factor codes."""

    error_messages = {
        **DefaultAccountAdapter.error_messages,
        "email_password_mismatch": _("Please enter a correct email and password. Both fields may be case-sensitive."),
    }

    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return False

    def pre_authenticate(self, request: HttpRequest, **credentials: Any) -> None:
        return None


def login_username(request: HttpRequest, credentials: dict[str, Any] | None) -> str | None:
    """The account a login attempt is for, as axes records it: the e-mail address typed, lower-cased
    (allauth passes it as ``email``; its login form names the field ``login``)."""
    credentials = credentials or {}
    value = credentials.get("email") or credentials.get("username") or request.POST.get("login")
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip().lower()[:255]


def client_ip(request: HttpRequest) -> str | None:
    """The client's address: ``REMOTE_ADDR``, or behind ``STAFF_LOGIN_TRUSTED_PROXIES`` reverse
    proxies that each append to ``X-Forwarded-For``, the address the outermost of them saw (the
    entries further left are written by the client and prove nothing)."""
    proxies = settings.STAFF_LOGIN_TRUSTED_PROXIES
    if proxies > 0:
        forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if a.strip()]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    address = request.META.get("REMOTE_ADDR")
    return str(address) if address else None


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None, credentials: dict[str, Any] | None
) -> HttpResponse:
    """The page of a refused login while the account or the address is locked out: 429, with
    ``Retry-After`` the cool-off (which starts again at each further failure)."""
    cooloff: timedelta = settings.AXES_COOLOFF_TIME
    minutes = max(1, math.ceil(cooloff.total_seconds() / 60))
    context = {"failure_limit": settings.AXES_FAILURE_LIMIT, "minutes": minutes}
    response = render(request, "backoffice/locked_out.html", context, status=429)
    response["Retry-After"] = str(int(cooloff.total_seconds()))
    return response


@receiver(user_login_failed, dispatch_uid="backoffice.login.failed")
def log_failed_login(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    """One structured line per failed login (axes also keeps each attempt in its tables)."""
    if request is None:
        return
    logger.warning(
        "staff login failed",
        extra={
            "login": login_username(request, credentials),
            "client_ip": client_ip(request),
            "path": request.path,
            "locked_out": bool(getattr(request, "axes_locked_out", False)),
        },
    )


@receiver(user_locked_out, dispatch_uid="backoffice.login.locked_out")
def log_lockout(sender: Any, request: HttpRequest, username: str | None, ip_address: str | None, **kwargs: Any) -> None:
    logger.warning("staff login locked out", extra={"login": username, "client_ip": ip_address, "path": request.path})
