"""Back-office access: a logged-in staff user with a membership in the current tenant and a role
allowed for the page. Roles: owners and finance admins write; finance viewers and support agents read.
Owners also manage the team (invitations, roles, removals) and the tenant's two-factor requirement.

When the tenant requires a second factor, a member whose role can finalize invoices or issue credit
notes (``SECOND_FACTOR_ROLES``) and who has none is sent to enrol one before any page opens."""

import functools
from collections.abc import Callable, Iterable
from typing import Any

from allauth.mfa.models import Authenticator
from allauth.mfa.utils import is_mfa_enabled
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseBase
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from tenancy.actors import Actor
from tenancy.models import Role, Tenant

WRITERS = frozenset({Role.OWNER, Role.FINANCE_ADMIN})
FINANCE = frozenset({Role.OWNER, Role.FINANCE_ADMIN, Role.FINANCE_VIEWER})
EVERYONE = frozenset(Role.values)
OWNERS = frozenset({Role.OWNER})
# The roles that can finalize invoices and issue credit notes (refunds): the writers. A tenant can
# require them to log in with a second factor.
SECOND_FACTOR_ROLES = WRITERS
# What counts as a second factor; recovery codes only stand in for one.
SECOND_FACTORS = [Authenticator.Type.TOTP, Authenticator.Type.WEBAUTHN]

# A page, or a download streamed (a CSV export).
View = Callable[..., HttpResponseBase]


def staff_view(roles: Iterable[str] = EVERYONE) -> Callable[[View], View]:
    allowed = frozenset(roles)

    def decorator(view: View) -> View:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            membership = getattr(request, "membership", None)
            if membership is None:
                return render(request, "backoffice/no_tenant.html", status=403)
            if second_factor_missing(request):
                messages.warning(
                    request,
                    _(
                        "%(tenant)s requires two-factor authentication for your role: set up an "
                        "authenticator app or a passkey to continue."
                    )
                    % {"tenant": membership.tenant.name},
                )
                return redirect("mfa_index")
            if membership.role not in allowed:
                raise PermissionDenied("Your role does not give access to this page.")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def current_tenant(request: HttpRequest) -> Tenant:
    tenant: Tenant = request.tenant  # type: ignore[attr-defined]
    return tenant


def current_actor(request: HttpRequest) -> Actor:
    return Actor.user(request.user)


def can_write(request: HttpRequest) -> bool:
    membership = getattr(request, "membership", None)
    return membership is not None and membership.role in WRITERS


def sees_audit(request: HttpRequest) -> bool:
    """The audit log is for finance roles; support agents see customers, not who changed what."""
    membership = getattr(request, "membership", None)
    return membership is not None and membership.role in FINANCE


def is_owner(request: HttpRequest) -> bool:
    membership = getattr(request, "membership", None)
    return membership is not None and membership.role in OWNERS


def second_factor_missing(request: HttpRequest) -> bool:
    """The tenant requires a second factor of this member's role, and the member has none."""
    membership = getattr(request, "membership", None)
    return (
        membership is not None
        and membership.tenant.two_factor_required
        and membership.role in SECOND_FACTOR_ROLES
        and not is_mfa_enabled(request.user, SECOND_FACTORS)
    )
