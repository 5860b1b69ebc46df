"""Daily work in a real browser (Debian's Chromium): finalize and send drafts in bulk from the
invoices list with the keyboard, at 1,366 px and at 390 px, then save and apply a filter; no
Content-Security-Policy violation, script error or failed request."""

from typing import Any

import pytest

from backoffice.tests.test_invoicing_pages import run_bill_run
from invoicing.models import Invoice
from subscriptions.tests.factories import monthly_fee_customers
from tenancy.models import SavedFilter, Tenant
from tests.browser.conftest import CHROMIUM_MISSING, assert_no_violation

pytestmark = [pytest.mark.django_db(transaction=True), CHROMIUM_MISSING]


@pytest.mark.parametrize("width", [1366, 390])
def test_bulk_finalize_and_a_saved_filter_with_the_keyboard(
    live_server: Any, page: Any, tenant: Tenant, make_staff: Any, width: int
) -> None:
    # given: three drafts of 24.00
    monthly_fee_customers(tenant, 3)
    run_bill_run(tenant)
    make_staff(tenant, email="admin@acme.test")
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(live_server.url + "/app/login/")
    page.fill("input[name=login]", "admin@acme.test")
    page.fill("input[name=password]", "correct-horse-battery")
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/app/")

    # when: the list filtered on drafts; the head's checkbox ticks the page (static/tripod.js)
    page.goto(live_server.url + "/app/billing/invoices/?status=draft")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    select_all = page.locator("input[data-check-all]")
    select_all.focus()
    page.keyboard.press("Space")
    assert page.locator("input[name=invoice]:checked").count() == 3
    finalize = page.get_by_role("button", name="Finalize and send…")
    finalize.focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")

    # then: the confirmation names the count and the total, 3 x 24.00 = 72.00
    assert "Finalize and send 3 invoices totalling €72.00?" in page.inner_text("h1")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path="/tmp/shots/confirm-%d.png" % width, full_page=True)
    confirm = page.get_by_role("button", name="Finalize and send 3 invoices")
    confirm.focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "3 invoices finalized and sent" in page.inner_text("h1")
    assert sorted(Invoice.objects.filter(tenant=tenant).values_list("number", flat=True)) == [
        "INV-2026-000001",
        "INV-2026-000002",
        "INV-2026-000003",
    ]

    # a filter typed in the list (HTMX, the address bar only) is saved and applied again
    page.goto(live_server.url + "/app/billing/invoices/")
    with page.expect_response(lambda r: "status=finalized" in r.url):
        page.select_option("select[name=status]", "finalized")
    page.wait_for_function("() => location.search.includes('status=finalized')")
    page.fill("input[name=name]", "Finalized")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert SavedFilter.objects.get(tenant=tenant).query == "status=finalized"
    page.goto(live_server.url + "/app/billing/invoices/")
    page.locator(".tp-saved-menu summary").focus()
    page.keyboard.press("Enter")
    page.get_by_role("link", name="Finalized", exact=True).focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.endswith("/app/billing/invoices/?status=finalized")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path="/tmp/shots/list-%d.png" % width, full_page=True)
    assert_no_violation(page)
