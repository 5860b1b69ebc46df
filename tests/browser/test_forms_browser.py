"""The forms in a real browser, on a phone (390 px): the price change's rows and its past-date
confirmation with the preview, and the customer form's error summary taking the focus, with no
sideways scroll of the page and nothing refused by the Content-Security-Policy."""

import os
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

from tests.browser.conftest import CHROMIUM_MISSING, assert_no_violation, log_in

pytestmark = [pytest.mark.django_db(transaction=True), CHROMIUM_MISSING]
SHOTS = os.environ.get("TRIPOD_SCREENSHOTS", "")
# What sticks out of the page, to say why it scrolls sideways.
WIDEST = (
    "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)"
    ".slice(0, 5).map(e => e.tagName + '.' + e.className + '#' + e.id + ' '"
    " + Math.round(e.getBoundingClientRect().right))"
)


def _login(live_server: Any, page: Any) -> None:  # noqa: F811
    log_in(page, live_server.url)


def _fits(page: Any) -> bool:  # noqa: F811
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def test_a_past_price_change_on_a_phone(live_server: Any, page: Any) -> None:  # noqa: F811
    call_command("seed_demo", stdout=StringIO())
    page.set_viewport_size({"width": 390, "height": 844})
    _login(live_server, page)
    page.goto(live_server.url + "/app/catalog/plans/")
    page.locator("table a[href*='/app/catalog/plans/']").first.click()
    page.click("summary:has-text('Schedule a price change')")
    assert page.locator("textarea[name=components]").count() == 0
    page.fill("input[name=effective_from]", "2026-01-01T00:00")
    with page.expect_navigation():
        page.click("button:has-text('Schedule the price change')")

    body = page.inner_text("body")
    assert "in the past" in body
    assert "Who is affected" in body
    assert page.locator("input[name=confirm_past]").count() == 1
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, "price-change-past-390.png"), full_page=True)
    assert _fits(page), page.evaluate(WIDEST)
    assert_no_violation(page)


def test_the_customer_forms_errors_take_the_focus(live_server: Any, page: Any) -> None:  # noqa: F811
    call_command("seed_demo", stdout=StringIO())
    page.set_viewport_size({"width": 390, "height": 844})
    _login(live_server, page)
    page.goto(live_server.url + "/app/customers/new/")
    page.fill("input[name=external_id]", "has space")
    page.fill("input[name=email]", "not-an-email")
    with page.expect_navigation():
        page.click("button:has-text('Create customer')")

    page.wait_for_function("document.activeElement && document.activeElement.hasAttribute('data-error-summary')")
    assert page.locator("[data-error-summary] li").count() >= 3  # external ID, name, e-mail
    assert page.input_value("input[name=email]") == "not-an-email"
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, "customer-form-errors-390.png"), full_page=True)
    assert _fits(page), page.evaluate(WIDEST)
    assert_no_violation(page)
