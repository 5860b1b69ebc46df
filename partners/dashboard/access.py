"""Who is in the partner dashboard: the session named by the ``tripod_partner`` cookie
(``partners.sessions``), never the staff login nor a portal session. Each page is wrapped by
``partner_view``, which finds the session, sets the database's row-level security to its tenant,
speaks the user's language (else the partner's) and checks the role; ``request.partner`` then says
whose dashboard this is. A page looks every object up through ``request.partner.partner``: another
partner's object, or a direct customer's, is a 404 like an unknown one."""

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone, translation
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from customers.models import Partner
from partners.models import PartnerRole, PartnerUser
from partners.sessions import COOKIE_PATH, SESSION_LIFETIME, partner_session_resolve
from tenancy.actors import Actor
from tenancy.models import Tenant

EVERYONE = frozenset(PartnerRole.values)
ADMINS = frozenset({PartnerRole.ADMIN})

# The last tenant whose dashboard this browser used, so that an expired session is sent back to
# that tenant's login page. It names a tenant, not a person: it opens nothing.
TENANT_COOKIE = "tripod_partner_tenant"

View = Callable[..., HttpResponseBase]


@dataclass(frozen=True, slots=True)
class PartnerContext:
    tenant: Tenant
    partner: Partner
    user: PartnerUser
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role in ADMINS

    @property
    def actor(self) -> Actor:
        return Actor.partner_user(self.user)


def session_cookie(request: HttpRequest) -> str:
    return request.COOKIES.get(settings.PARTNER_SESSION_COOKIE, "")


def session_cookie_set(response: HttpResponseBase, token: str, tenant_slug: str) -> None:
    secure = settings.SESSION_COOKIE_SECURE
    max_age = int(SESSION_LIFETIME.total_seconds())
    response.set_cookie(
        settings.PARTNER_SESSION_COOKIE,
        token,
        max_age=max_age,
        secure=secure,
        httponly=True,
        samesite="Lax",
        path=COOKIE_PATH,
    )
    response.set_cookie(
        TENANT_COOKIE, tenant_slug, max_age=365 * 86400, secure=secure, httponly=True, samesite="Lax", path=COOKIE_PATH
    )


def partner_context(request: HttpRequest) -> PartnerContext | None:
    session = partner_session_resolve(token=session_cookie(request), at=timezone.now())
    if session is None:
        return None
    user = session.user
    return PartnerContext(tenant=session.tenant, partner=user.partner, user=user, role=user.role)


def login_url(request: HttpRequest) -> str:
    slug = request.COOKIES.get(TENANT_COOKIE, "")
    if slug:
        try:
            return reverse("partners:login", args=[slug])
        except NoReverseMatch:
            pass
    return reverse("partners:signed-out")


def partner_view(roles: Iterable[str] = EVERYONE) -> Callable[[View], View]:
    allowed = frozenset(roles)

    def decorator(view: View) -> View:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            context = partner_context(request)
            if context is None:
                return redirect(login_url(request))
            # partner_session_resolve has set the tenant (row-level security) already.
            request.partner = context  # type: ignore[attr-defined]
            request.tenant = context.tenant  # type: ignore[attr-defined]
            if settings.LANGUAGE_COOKIE_NAME not in request.COOKIES:
                language = context.user.language or context.partner.language or "en"
                translation.activate(language)
                request.LANGUAGE_CODE = language
            if context.role not in allowed:
                raise PermissionDenied("Your role does not allow this: ask an admin of your partner account.")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def current_partner(request: HttpRequest) -> PartnerContext:
    found: PartnerContext = request.partner  # type: ignore[attr-defined]
    return found


# The menu: (url name, label, roles allowed or None for everyone).
ENTRIES: list[tuple[str, Promise, frozenset[str] | None]] = [
    ("home", _("Customers"), None),
    ("usage", _("Usage"), None),
    ("commissions", _("Commissions"), None),
    ("users", _("Users"), ADMINS),
]
# Pages under a menu entry: (url name prefix, entry).
SECTIONS = {"customer": "home", "usage": "usage", "commissions": "commissions", "statement": "commissions"}


def partner_nav(request: HttpRequest) -> list[dict[str, Any]]:
    partner = current_partner(request)
    current = getattr(getattr(request, "resolver_match", None), "url_name", "") or ""
    section = next((entry for prefix, entry in SECTIONS.items() if current.startswith(prefix)), current)
    entries = []
    for name, label, roles in ENTRIES:
        if roles is not None and partner.role not in roles:
            continue
        try:
            url = reverse("partners:" + name)
        except NoReverseMatch:
            continue
        entries.append({"url": url, "label": label, "current": section == name})
    return entries


def partner_render(
    request: HttpRequest, template: str, context: dict[str, Any] | None = None, status: int = 200
) -> HttpResponse:
    """A dashboard page: its context, and the dashboard's own (whose it is, the menu)."""
    page = {"dashboard": current_partner(request), "dashboard_nav": partner_nav(request)}
    page.update(context or {})
    return render(request, template, page, status=status)
