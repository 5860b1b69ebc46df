"""The customer page and the global search in a real browser (Debian's Chromium), on a phone:
the page never scrolls sideways, its sections are reached from the anchors, and "/" focuses the
header's search box, whose exact hit opens the customer."""

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

from tests.browser.conftest import CHROMIUM_MISSING, assert_no_violation, log_in

pytestmark = [pytest.mark.django_db(transaction=True), CHROMIUM_MISSING]


def test_the_customer_page_and_the_search_on_a_phone(live_server: Any, page: Any) -> None:  # noqa: F811
    call_command("seed_demo", stdout=StringIO())
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, live_server.url)

    page.goto(live_server.url + "/app/customers/dupont/")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    for section in ("overview", "subscriptions", "usage", "invoices", "timeline"):
        assert page.locator("#%s" % section).count() == 1
    page.click("nav.tp-sections a[href='#invoices']")
    assert page.evaluate("location.hash") == "#invoices"

    # "/" outside a field focuses the search box; an exact external ID opens its customer
    page.locator("h1").click()
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "global-search"
    page.keyboard.type("nordlog")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url == live_server.url + "/app/customers/nordlog/"
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    page.goto(live_server.url + "/app/search/?q=o&exact=0")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert_no_violation(page)
