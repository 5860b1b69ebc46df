"""Every back-office page, walked in a real browser at a laptop's width (1,366 px) and a phone's
(390 px), logged in to the seeded demo tenant.

The pages are found, not listed: the sidebar's links, then every link of the pages reached, one page
per URL name (one customer, one invoice, one bill run …), so a page added to the sidebar or linked
from a list is walked too. On each page the test fails on any console error, script error or failed
request, on a page wider than the window (it would scroll sideways: wide tables scroll in their own
box), and on any violation of impact serious or critical found by axe-core (vendored in
``tests/browser/vendor/``, run through the DevTools protocol, so the page's Content-Security-Policy
stays as strict as in production). A page that fails is photographed (full page, in the test's
temporary directory); with ``$TRIPOD_SCREENSHOTS`` set, every page is, in that directory."""

import os
import re
from io import StringIO
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.core.management import call_command
from django.urls import Resolver404, resolve

from tests.browser.conftest import CHROMIUM_MISSING, log_in

pytestmark = [pytest.mark.django_db(transaction=True), CHROMIUM_MISSING]

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
WIDTHS = {"desktop": (1366, 800), "phone": (390, 844)}
# Links that download a file instead of showing a page (CSV, PDF, an export's file).
DOWNLOADS = re.compile(r"\.(csv|pdf|xml|json|zip)$|/(pdf|download|file)/?$")
# One page of each kind at least: the walk fails when it stops finding them.
EXPECTED = {
    "home",
    "customers",
    "customer-new",
    "customer-detail",
    "customer-edit",
    "partners",
    "partner-new",
    "partner-detail",
    "partner-edit",
    "commission-statements",
    "commission-report",
    "subscription-list",
    "subscription-new",
    "subscription-detail",
    "webhook-list",
    "webhook-detail",
    "bill-runs",
    "bill-run-detail",
    "invoices",
    "invoice-detail",
    "payments",
    "payment-new",
    "payment-detail",
    "receivables",
    "dunning",
    "revenue",
    "revenue-journal",
    "revenue-runs",
    "revenue-run-detail",
    "erp-export",
    "analytics-mrr",
    "analytics-usage",
    "analytics-rates",
    "usage-explorer",
    "usage-rejected",
    "catalog-products",
    "catalog-product-new",
    "catalog-product-edit",
    "catalog-meters",
    "catalog-meter-edit",
    "catalog-plans",
    "catalog-plan-detail",
    "catalog-tax-rates",
    "catalog-calculator",
    "settings",
    "team",
    "api-keys",
    "audit-log",
    "endpoints",
    "endpoint-new",
    "endpoint-detail",
}
# The elements wider than the window, to say what made a page scroll sideways.
OVERFLOW = """() => {
  const width = window.innerWidth, found = [];
  for (const el of document.querySelectorAll('body *')) {
    const box = el.getBoundingClientRect();
    if (box.right > width + 1 && !el.closest('.tp-scroll, .tp-explorer, #change-preview')) {
      found.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
        (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\\s+/).join('.') : '') +
        ' ' + Math.round(box.right) + 'px');
    }
  }
  return found.slice(0, 6);
}"""
AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations
    .filter(v => v.impact === 'serious' || v.impact === 'critical')
    .map(v => ({id: v.id, impact: v.impact, help: v.help,
                targets: v.nodes.slice(0, 5).map(n => n.target.join(' ')),
                why: (v.nodes[0].failureSummary || '').split('\\n').slice(1).join(' ').trim()}));
}"""


def _endpoint() -> None:
    """An outbound webhook endpoint, so that the endpoints' pages have one to show."""
    from tenancy.keys import generate_webhook_secret
    from tenancy.models import Tenant
    from webhooks.models import WebhookEndpoint

    WebhookEndpoint.objects.create(
        tenant=Tenant.objects.get(slug="smart-fleet"),
        url="https://erp.smartfleet.test/tripod-events",
        events=["invoice.finalized", "invoice.paid"],
        description="ERP",
        signing_secret=generate_webhook_secret(),
    )


def _page_name(path: str) -> str | None:
    """The URL name of a back-office page, or None for what is not one (another site, a download)."""
    if not path.startswith("/app/") or DOWNLOADS.search(path):
        return None
    try:
        match = resolve(path)
    except Resolver404:
        return None
    return match.url_name if match.namespace == "backoffice" else None


def _links(page: Any, selector: str) -> list[str]:
    return page.eval_on_selector_all(selector, "els => els.map(a => a.getAttribute('href'))")


class Walk:
    def __init__(self, page: Any, base: str, shots: Path, *, every_screenshot: bool) -> None:
        self.page, self.base, self.shots = page, base, shots
        self.every_screenshot = every_screenshot
        self.failures: list[str] = []
        self.axe_source = AXE.read_text()
        # Into every document the page loads from now on, sent to the browser once (through the
        # DevTools protocol too): evaluating its 500 kB on each page cost about 40 ms a page.
        page.add_init_script(script=self.axe_source)

    def visit(self, path: str, width: str) -> bool:
        page = self.page
        try:
            page.goto(self.base + path, wait_until="load")
        except Exception as exc:  # a link that turns out to be a download, or a page that never loads
            if "Download is starting" not in str(exc):
                self.failures.append("%s %s: not shown (%s)" % (width, path, str(exc).splitlines()[0]))
            return False
        self.check(path, width)
        return True

    def check(self, path: str, width: str) -> None:
        """The page the browser shows now, reached at ``path`` (by a link, or a form's answer)."""
        page = self.page
        # What htmx loads with the page (hx-trigger="load"), in. Looked at once first: waiting for a
        # function costs about 30 ms a page even when it holds at once.
        if page.evaluate("!!document.querySelector('.htmx-request')"):
            try:
                page.wait_for_function("() => !document.querySelector('.htmx-request')", timeout=5000)
            except Exception:  # a page that polls (a run in progress) is checked as it is
                pass
        where = "%s %s" % (width, path)
        failures = len(self.failures)
        if page.evaluate("document.documentElement.scrollWidth > window.innerWidth"):
            self.failures.append(
                "%s: the page scrolls sideways (%d px wide in %d px): %s"
                % (
                    where,
                    page.evaluate("document.documentElement.scrollWidth"),
                    page.evaluate("window.innerWidth"),
                    ", ".join(page.evaluate(OVERFLOW)),
                )
            )
        if not page.evaluate("typeof window.axe !== 'undefined'"):
            page.evaluate(self.axe_source)
        for v in page.evaluate(AXE_RUN):
            self.failures.append(
                "%s: axe %s (%s) %s: %s (%s)"
                % (where, v["id"], v["impact"], v["help"], " | ".join(v["targets"]), v["why"])
            )
        # What went wrong since the last page was checked (an answer late for it counts here).
        self.failures.extend("%s: %s" % (where, problem) for problem in page.problems)
        page.problems.clear()
        # A full-page screenshot costs more than the checks above: taken of every page when asked
        # for ($TRIPOD_SCREENSHOTS), else of the pages that failed a check, to show what went wrong.
        if self.every_screenshot or len(self.failures) > failures:
            name = _page_name(path) or re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-")
            page.screenshot(path=str(self.shots / ("%s-%s.png" % (width, name))), full_page=True)

    def forms(self, width: str) -> None:
        """The pages a form leads to rather than a link: the global search's results, and the
        confirmation of finalizing the drafts in bulk (not confirmed: the demo keeps its draft)."""
        self.visit("/app/search/?q=fleet&exact=0", width)
        if self.visit("/app/billing/invoices/?status=draft", width):
            self.page.locator("#invoice-bulk input[name=invoice]").first.check()
            self.page.locator("#invoice-bulk button[value=finalize]").click()
            self.page.wait_for_load_state("load")
            self.check("/app/billing/invoices/bulk/", width)


def test_every_back_office_page_at_1366_and_390_px(live_server: Any, strict_page: Any, tmp_path: Path) -> None:
    call_command("seed_demo", stdout=StringIO())
    _endpoint()
    shots = Path(os.environ.get("TRIPOD_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    page = strict_page
    page.set_viewport_size({"width": 1366, "height": 800})
    log_in(page, live_server.url)
    walk = Walk(page, live_server.url, shots, every_screenshot=bool(os.environ.get("TRIPOD_SCREENSHOTS")))

    # At 1,366 px: the sidebar's pages, then whatever they link to, one page per URL name.
    seen: dict[str, str] = {}
    queue = ["/app/"]
    for href in _links(page, "nav#tp-nav a[href]"):
        queue.append(urlsplit(href).path)
    while queue:
        path = queue.pop(0)
        name = _page_name(path)
        if name is None or name in seen:
            continue
        seen[name] = path
        if walk.visit(path, "desktop"):
            for href in _links(page, "main a[href]"):
                parts = urlsplit(href)
                if parts.path and not parts.netloc:
                    queue.append(parts.path)

    walk.forms("desktop")
    missing = EXPECTED - set(seen)
    if missing:
        walk.failures.append("the walk found no page named %s" % ", ".join(sorted(missing)))

    # At 390 px: the same pages; the menu is folded under its button, which opens it.
    page.set_viewport_size({"width": 390, "height": 844})
    for path in seen.values():
        walk.visit(path, "phone")
    walk.forms("phone")
    page.goto(live_server.url + "/app/")
    toggle = page.locator("button.tp-nav-toggle")
    assert page.locator("nav#tp-nav").is_hidden()
    toggle.focus()
    page.keyboard.press("Enter")
    assert page.locator("nav#tp-nav").is_visible()
    assert toggle.get_attribute("aria-expanded") == "true"

    assert not walk.failures, "%d problems on %d pages (screenshots in %s):\n%s" % (
        len(walk.failures),
        len(seen),
        shots,
        "\n".join(walk.failures),
    )


def test_the_skip_link_comes_first_and_shows_when_focused(live_server: Any, strict_page: Any) -> None:
    call_command("seed_demo", stdout=StringIO())
    page = strict_page
    log_in(page, live_server.url)
    page.goto(live_server.url + "/app/customers/")
    skip = page.locator("a.tp-skip")
    assert skip.bounding_box()["y"] < 0  # out of sight until focused
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Skip to content"
    assert skip.bounding_box()["y"] >= 0
    # a ring of at least 2 px around the focused link
    assert page.evaluate("parseFloat(getComputedStyle(document.activeElement).outlineWidth)") >= 2
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "content"
    assert page.problems == []
