"""Who is in the portal: the session named by the ``tripod_portal`` cookie (customers/portal.py),
never the staff login. Each portal view is wrapped by ``portal_view``, which finds the session, sets
the database's row-level security to its tenant, speaks the user's language and checks the role;
``request.portal`` then says whose account this is. A view looks every object up with
``customer=request.portal.customer``: another customer's object is a 404, like an unknown one."""

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseBase
from django.shortcuts import redirect
from django.urls import NoReverseMatch, reverse
from django.utils import timezone, translation

from billing_platform.rls import tenant_activate
from customers.models import Customer, PortalRole, PortalUser
from customers.portal import portal_session_resolve
from tenancy.actors import Actor
from tenancy.models import Tenant

EVERYONE = frozenset(PortalRole.values)
# Paying, changing the plan, buying, managing payment methods and the profile.
BILLING = frozenset({PortalRole.ADMIN, PortalRole.BILLING})
ADMINS = frozenset({PortalRole.ADMIN})

# The last tenant whose portal this browser used, so that an expired session is sent back to that
# tenant's login page. It names a tenant, not a person: it opens nothing.
TENANT_COOKIE = "tripod_portal_tenant"

View = Callable[..., HttpResponseBase]


@dataclass(frozen=True, slots=True)
class PortalContext:
    tenant: Tenant
    customer: Customer
    # None: a session opened by a portal link, with the rights of an admin.
    user: PortalUser | None
    role: str
    # Where a portal link's session goes back to (the tenant's own app); blank otherwise.
    return_url: str
    # Whether the tenant has a logo to show in the header (its bytes are not read for that).
    has_logo: bool = False

    @property
    def can_pay(self) -> bool:
        return self.role in BILLING

    @property
    def is_admin(self) -> bool:
        return self.role in ADMINS


def session_cookie(request: HttpRequest) -> str:
    return request.COOKIES.get(settings.PORTAL_SESSION_COOKIE, "")


def portal_context(request: HttpRequest) -> PortalContext | None:
    session = portal_session_resolve(token=session_cookie(request), at=timezone.now())
    if session is None:
        return None
    return PortalContext(
        tenant=session.tenant,
        customer=session.customer,
        user=session.user,
        role=session.user.role if session.user is not None else PortalRole.ADMIN,
        return_url=session.return_url,
        has_logo=bool(session.tenant.has_logo),  # type: ignore[attr-defined]  # see portal_session_resolve
    )


def login_url(request: HttpRequest) -> str:
    slug = request.COOKIES.get(TENANT_COOKIE, "")
    if slug:
        try:
            return reverse("portal:login", args=[slug])
        except NoReverseMatch:
            pass
    return reverse("portal:signed-out")


def portal_view(roles: Iterable[str] = EVERYONE) -> Callable[[View], View]:
    allowed = frozenset(roles)

    def decorator(view: View) -> View:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            context = portal_context(request)
            if context is None:
                return redirect(login_url(request))
            tenant_activate(context.tenant.pk)
            request.portal = context  # type: ignore[attr-defined]
            request.tenant = context.tenant  # type: ignore[attr-defined]
            if settings.LANGUAGE_COOKIE_NAME not in request.COOKIES:
                language = (context.user.language if context.user else "") or context.customer.language
                translation.activate(language)
                request.LANGUAGE_CODE = language
            if context.role not in allowed:
                raise PermissionDenied("Your role does not allow this: ask an admin of your account.")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def current_portal(request: HttpRequest) -> PortalContext:
    found: PortalContext = request.portal  # type: ignore[attr-defined]
    return found


def portal_actor(request: HttpRequest) -> Actor:
    return Actor.portal_user(current_portal(request).user)
