"""Every customer-portal page, walked in a real browser at 1,366 px and 390 px, logged in as a portal
user of the seeded demo tenant (an admin, who sees every page), as the back-office walk does for staff pages
(tests/browser/test_backoffice_walk.py: screenshots of the failing pages, or of all with
``$TRIPOD_SCREENSHOTS``, no console or script error, no failed request,
no sideways scrolling, no axe-core violation of impact serious or critical)."""

import os
import re
from io import StringIO
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.core.management import call_command
from django.urls import Resolver404, resolve
from django.utils import timezone

from customers.models import PortalUser
from customers.portal import portal_session_open
from tests.browser.conftest import CHROMIUM_MISSING
from tests.browser.test_backoffice_walk import AXE, AXE_RUN, OVERFLOW

pytestmark = [pytest.mark.django_db(transaction=True), CHROMIUM_MISSING]

# Links that download a file: the usage CSV, an invoice's PDF and Factur-X, a support attachment.
DOWNLOADS = re.compile(r"\.(csv|pdf|xml|json|zip)$|/(pdf|facturx|download|file)/?$|/support/files/")
# One page of each kind at least: the walk fails when it stops finding them.
EXPECTED = {
    "overview",
    "devices",
    "usage",
    "invoices",
    "invoice",
    "invoice-pay",
    "payment-methods",
    "plan",
    "shop",
    "support",
    "support-case",
    "profile",
    "security",
    "users",
}


def portal_session(email: str = "claire.martin@transports-dupont.test") -> str:
    """A portal session's cookie for a demo portal user (an admin of Transports Dupont), as its login
    opens one; the portal link's session is walked in tests/browser/test_portal_journeys.py."""
    from billing_platform.rls import tenant_context
    from tenancy.models import Tenant

    tenant = Tenant.objects.get(slug="smart-fleet")
    with tenant_context(tenant):
        user = PortalUser.objects.get(tenant=tenant, email=email)
        return portal_session_open(customer=user.customer, user=user, at=timezone.now()).token


def _page_name(path: str) -> str | None:
    if not path.startswith("/portal/") or DOWNLOADS.search(path):
        return None
    try:
        match = resolve(path)
    except Resolver404:
        return None
    return match.url_name if match.namespace == "portal" else None


def test_every_portal_page_at_1366_and_390_px(live_server: Any, strict_page: Any, tmp_path: Path) -> None:
    call_command("seed_demo", stdout=StringIO())
    shots = Path(os.environ.get("TRIPOD_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    page = strict_page
    page.set_viewport_size({"width": 1366, "height": 800})
    page.context.add_cookies(
        [{"name": settings.PORTAL_SESSION_COOKIE, "value": portal_session(), "url": live_server.url}]
    )
    page.goto(live_server.url + "/portal/")
    page.wait_for_url(re.compile(r"/portal/[a-z-]+/$"))
    axe_source = AXE.read_text()
    failures: list[str] = []

    every_screenshot = bool(os.environ.get("TRIPOD_SCREENSHOTS"))

    def check(path: str, width: str) -> None:
        where = "%s %s" % (width, path)
        before = len(failures)
        if page.evaluate("document.documentElement.scrollWidth > window.innerWidth"):
            failures.append("%s: the page scrolls sideways: %s" % (where, ", ".join(page.evaluate(OVERFLOW))))
        if not page.evaluate("typeof window.axe !== 'undefined'"):
            page.evaluate(axe_source)
        for v in page.evaluate(AXE_RUN):
            failures.append(
                "%s: axe %s (%s) %s: %s" % (where, v["id"], v["impact"], v["help"], " | ".join(v["targets"]))
            )
        failures.extend("%s: %s" % (where, problem) for problem in page.problems)
        page.problems.clear()
        # As in the back-office walk: every page photographed when asked for, else those that failed.
        if every_screenshot or len(failures) > before:
            name = _page_name(path) or re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-")
            page.screenshot(path=str(shots / ("portal-%s-%s.png" % (width, name))), full_page=True)

    def visit(path: str, width: str) -> bool:
        try:
            page.goto(live_server.url + path, wait_until="load")
        except Exception as exc:  # a download
            if "Download is starting" not in str(exc):
                failures.append("%s %s: not shown (%s)" % (width, path, str(exc).splitlines()[0]))
            return False
        check(path, width)
        return True

    seen: dict[str, str] = {}
    queue = [
        urlsplit(href).path
        for href in page.eval_on_selector_all("header a[href]", "els => els.map(a => a.getAttribute('href'))")
    ]
    while queue:
        path = queue.pop(0)
        name = _page_name(path)
        if name is None or name in seen:
            continue
        seen[name] = path
        if visit(path, "desktop"):
            for href in page.eval_on_selector_all("main a[href]", "els => els.map(a => a.getAttribute('href'))"):
                parts = urlsplit(href)
                if parts.path and not parts.netloc:
                    queue.append(parts.path)
    missing = EXPECTED - set(seen)
    if missing:
        failures.append("the walk found no page named %s" % ", ".join(sorted(missing)))

    page.set_viewport_size({"width": 390, "height": 844})
    for path in seen.values():
        visit(path, "phone")
    page.goto(live_server.url + seen.get("overview", "/portal/"))
    toggle = page.locator("button.tp-nav-toggle")
    assert page.locator("nav#pt-nav").is_hidden()
    toggle.focus()
    page.keyboard.press("Enter")
    assert page.locator("nav#pt-nav").is_visible()

    assert not failures, "%d problems on %d pages (screenshots in %s):\n%s" % (
        len(failures),
        len(seen),
        shots,
        "\n".join(failures),
    )
