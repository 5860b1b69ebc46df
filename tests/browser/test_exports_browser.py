"""Exports in a real browser: a list's "Download CSV" follows the filter typed after the page loaded
(HTMX replaced the rows, static/tripod.js reads the form when the link is clicked), and the lists
with their buttons and the Exports page fit a phone."""

from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from tests.browser.conftest import CHROMIUM_MISSING, assert_no_violation, log_in

pytestmark = [pytest.mark.django_db(transaction=True), CHROMIUM_MISSING]


def test_download_csv_follows_the_filter_typed_after_the_page_loaded(live_server: Any, page: Any) -> None:  # noqa: F811
    call_command("seed_demo", stdout=StringIO())
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, live_server.url)

    page.goto(live_server.url + "/app/customers/")
    with page.expect_response(lambda r: "/app/customers/?q=dupont" in r.url):
        page.fill("#customer-search input[name=q]", "dupont")
    with page.expect_download() as download:
        page.click("text=Download CSV")
    lines = Path(download.value.path()).read_text().splitlines()
    # the header, then the one customer the search shows
    assert lines[0].startswith("external_id,name,email,")
    assert [line.split(",")[0] for line in lines[1:]] == ["dupont"]
    # the buttons wrap within the page's header on a phone (the lists' own tables scroll on their own)
    for path in ("/app/customers/", "/app/subscriptions/", "/app/billing/invoices/", "/app/payments/", "/app/usage/"):
        page.goto(live_server.url + path)
        right = page.evaluate(
            "Math.max(...[...document.querySelectorAll('.tp-head a')].map(a => a.getBoundingClientRect().right))"
        )
        assert right <= 390, path
    for path in ("/app/exports/", "/app/audit-log/"):
        page.goto(live_server.url + path)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, path
    assert_no_violation(page)
