"""The portal's doors and its tenant's colours: portal links, logout, the page for a browser with
no session, the brand's style sheet and logo."""

import re

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import cache_control, never_cache
from django.views.decorators.http import require_POST

from customers.portal import portal_link_redeem, portal_session_end
from portal.access import TENANT_COOKIE, login_url, portal_view, session_cookie
from portal.nav import portal_nav
from tenancy.selectors import tenant_for_slug

HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


def session_cookie_set(response: HttpResponseBase, token: str, tenant_slug: str) -> None:
    response.set_cookie(
        settings.PORTAL_SESSION_COOKIE,
        token,
        max_age=12 * 3600,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
        path="/portal/",
    )
    response.set_cookie(
        TENANT_COOKIE,
        tenant_slug,
        max_age=365 * 86400,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
        path="/portal/",
    )


@never_cache
def link_open(request: HttpRequest, token: str) -> HttpResponseBase:
    """A portal link (``POST /api/v1/customers/{id}/portal_sessions``): opens a session once, within
    15 minutes; a used or expired link says so and asks the tenant's app for a new one."""
    opened = portal_link_redeem(token=token, at=timezone.now())
    if opened is None:
        return render(request, "portal/link_expired.html", status=410)
    session = opened.session
    response = redirect("portal:home")
    session_cookie_set(response, opened.token, session.tenant.slug)
    return response


@require_POST
def logout(request: HttpRequest) -> HttpResponseBase:
    portal_session_end(token=session_cookie(request), at=timezone.now())
    response = redirect("portal:signed-out")
    response.delete_cookie(settings.PORTAL_SESSION_COOKIE, path="/portal/")
    return response


def signed_out(request: HttpRequest) -> HttpResponse:
    slug = request.COOKIES.get(TENANT_COOKIE, "")
    tenant = tenant_for_slug(slug=slug) if slug else None
    url = login_url(request)
    return render(
        request,
        "portal/signed_out.html",
        {"login_tenant": tenant, "login_url": url if tenant is not None and url != request.path else ""},
    )


@portal_view()
def home(request: HttpRequest) -> HttpResponseBase:
    entries = portal_nav(request).get("portal_nav") or []
    if not entries:
        raise Http404("This portal has no page yet.")
    return redirect(entries[0]["url"])


@cache_control(max_age=300)
def brand_css(request: HttpRequest, slug: str) -> HttpResponse:
    """The tenant's accent colour as Pico's primary colour: a style sheet, since the
    Content-Security-Policy refuses inline styles."""
    tenant = tenant_for_slug(slug=slug)
    colour = tenant.brand_colour if tenant is not None and HEX_COLOUR.match(tenant.brand_colour) else ""
    css = ""
    if colour:
        css = (
            ":root{--pico-primary:%(c)s;--pico-primary-background:%(c)s;--pico-primary-border:%(c)s;"
            "--pico-primary-hover:%(c)s;--pico-primary-hover-background:%(c)s;--tp-brand:%(c)s}" % {"c": colour}
        )
    return HttpResponse(css, content_type="text/css; charset=utf-8")


@cache_control(max_age=300)
def logo(request: HttpRequest, slug: str) -> HttpResponse:
    tenant = tenant_for_slug(slug=slug)
    if tenant is None or not tenant.logo:
        raise Http404("No logo.")
    response = HttpResponse(bytes(tenant.logo), content_type=tenant.logo_content_type or "image/png")
    # An SVG could carry scripts: served as an image only, never as a page.
    response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
    response["X-Content-Type-Options"] = "nosniff"
    return response
