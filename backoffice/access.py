"""Back-office access: a logged-in staff user with a membership in the current tenant and a role
allowed for the page. Roles: owners and finance admins write; finance viewers and support agents read."""

import functools
from collections.abc import Callable, Iterable
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from tenancy.actors import Actor
from tenancy.models import Role, Tenant

WRITERS = frozenset({Role.OWNER, Role.FINANCE_ADMIN})
FINANCE = frozenset({Role.OWNER, Role.FINANCE_ADMIN, Role.FINANCE_VIEWER})
EVERYONE = frozenset(Role.values)

View = Callable[..., HttpResponse]


def staff_view(roles: Iterable[str] = EVERYONE) -> Callable[[View], View]:
    allowed = frozenset(roles)

    def decorator(view: View) -> View:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            membership = getattr(request, "membership", None)
            if membership is None:
                return render(request, "backoffice/no_tenant.html", status=403)
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
