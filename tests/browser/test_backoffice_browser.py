"""The back-office in a real browser (Debian's Chromium driven by Playwright): log in, then the
price calculator updates live (htmx) as finance staff type; the pages' scripts (static/tripod.js)
and the API reference (Swagger UI) work under the Content-Security-Policy, which the browser
enforces: any violation, or any error on the console, fails the test."""

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

from tests.browser.conftest import CHROMIUM_MISSING, assert_no_violation, log_in

pytestmark = [pytest.mark.django_db(transaction=True), CHROMIUM_MISSING]


def test_login_then_the_calculator_updates_live(live_server: Any, page: Any) -> None:
    call_command("seed_demo", stdout=StringIO())
    log_in(page, live_server.url)
    assert "Smart Fleet Telematics" in page.content()

    page.goto(live_server.url + "/app/catalog/calculator/")
    page.select_option("select[name=plan]", label="Smart Fleet (smart-fleet)")
    page.select_option("select[name=region]", "FR")
    page.fill("input[name=devices]", "3")
    quantity = page.locator("input[name$=quantity]").first
    quantity.fill("14000")
    quantity.press("Tab")
    # htmx posts the form and swaps in the result: 60.00 + 75.00 + 104.64 = 239.64, VAT 47.93
    page.wait_for_function("() => document.body.innerText.includes('287.57')", timeout=10000)
    text = page.inner_text("body")
    assert "104.64" in text
    assert "239.64" in text
    page.wait_for_load_state("networkidle")  # let the last live update finish before the server stops
    assert_no_violation(page)


def test_page_scripts_and_the_api_reference_work_under_the_policy(live_server: Any, page: Any) -> None:
    call_command("seed_demo", stdout=StringIO())
    log_in(page, live_server.url)
    assert_no_violation(page)

    # the language menu submits itself when a language is chosen (data-autosubmit, static/tripod.js)
    with page.expect_navigation():
        page.select_option("select[name=language]", "fr")
    assert page.locator("html").get_attribute("lang") == "fr"
    with page.expect_navigation():
        page.select_option("select[name=language]", "en")

    # a form with data-confirm asks first: dismissed, nothing happens; accepted, the key is revoked
    page.goto(live_server.url + "/app/api-keys/")
    page.click("summary")
    page.fill("input[name=name]", "Browser test key")
    page.click("form button[type=submit] >> text=Create key")
    page.wait_for_selector("#new-key")
    answers = iter(["dismiss", "accept"])
    page.on("dialog", lambda dialog: getattr(dialog, next(answers))())
    revoke = page.locator("tr", has_text="Browser test key").locator("button", has_text="Revoke")
    revoke.click()
    page.wait_for_timeout(300)
    assert page.locator("tr", has_text="Browser test key").locator("text=Active").count() == 1
    with page.expect_navigation():
        revoke.click()
    assert "Key Browser test key revoked." in page.content()
    assert_no_violation(page)

    # the API reference: Swagger UI renders the operations from the schema
    page.goto(live_server.url + "/api/v1/docs/")
    page.wait_for_selector(".opblock", timeout=15000)
    # Swagger UI renders a long schema as a virtual list: only the operations near the viewport are
    # in the page, the first tags' at first.
    assert page.locator(".opblock").count() >= 5
    page.wait_for_load_state("networkidle")
    assert_no_violation(page)


def _revenue_history() -> None:
    """A contract on a demo subscription that has none: a tracker (240.00 on 10 January 2026) and a
    year of service (300.00 from 10 January), January to March recognized, 540.00 invoiced."""
    from datetime import date
    from decimal import Decimal

    from django.utils import timezone

    from revrec.models import Contract, JournalEntry, JournalLine, PerformanceObligation
    from revrec.runs import recognition_run
    from subscriptions.models import Subscription

    # One the demo's own recognition left without a contract (its USD customer: no USD SSP).
    subscription = (
        Subscription.objects.filter(tenant__slug="smart-fleet", revenue_contract__isnull=True)
        .order_by("external_id")
        .first()
    )
    assert subscription is not None
    tenant_id, now = subscription.tenant_id, timezone.now()
    contract = Contract.objects.create(
        tenant_id=tenant_id,
        subscription=subscription,
        currency="EUR",
        transaction_price=Decimal("540.00"),
        created_at=now,
        plan_id=subscription.plan_id,
    )
    common = {"tenant_id": tenant_id, "contract": contract, "device_id": "X", "currency": "EUR"}
    PerformanceObligation.objects.create(
        **common,
        kind="hardware",
        product_code="tracker",
        allocated=Decimal("240.00"),
        pattern="point_in_time",
        recognized_on=date(2026, 1, 10),
    )
    PerformanceObligation.objects.create(
        **common,
        kind="service",
        product_code="platform",
        allocated=Decimal("300.00"),
        pattern="ratable",
        starts_on=date(2026, 1, 10),
        ends_on=date(2027, 1, 10),
    )
    for month in (1, 2, 3):
        recognition_run(tenant_id=tenant_id, month=date(2026, month, 1), at=now)
    entry = JournalEntry.objects.create(
        tenant_id=tenant_id,
        period=date(2026, 1, 1),
        date=date(2026, 1, 10),
        source_type="invoice",
        source_id="F-1",
        contract=contract,
        currency="EUR",
        created_at=now,
    )
    JournalLine.objects.bulk_create(
        [
            JournalLine(tenant_id=tenant_id, entry=entry, account=account, currency="EUR", debit=debit, credit=credit)
            for account, debit, credit in [
                ("receivable", Decimal("648.00"), Decimal(0)),
                ("tax_payable", Decimal(0), Decimal("108.00")),
                ("contract_balance", Decimal(0), Decimal("540.00")),
            ]
        ]
    )


def test_the_revenue_pages_on_a_phone(live_server: Any, page: Any) -> None:
    call_command("seed_demo", stdout=StringIO())
    _revenue_history()
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, live_server.url)

    page.goto(live_server.url + "/app/revenue/?start=2026-01&end=2026-06")
    # both charts of the currency drawn by static/revenue.js under the Content-Security-Policy
    page.wait_for_function(
        "() => window.Chart && [...document.querySelectorAll('canvas[data-revenue-chart]')]"
        ".filter(c => window.Chart.getChart(c)).length === 2",
        timeout=10000,
    )
    # 390 px: the page itself never scrolls sideways; wide tables scroll in their own region,
    # which the keyboard can focus
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    regions = page.locator(".tp-scroll[tabindex='0']")
    assert regions.count() == 4
    regions.first.focus()
    page.keyboard.press("ArrowRight")
    # the range picker answers the keyboard: a month typed, Enter shows the months
    start = page.locator("input[name=start]")
    start.focus()
    start.fill("2026-02")
    with page.expect_navigation():
        start.press("Enter")
    assert "Feb 2026 – Jun 2026" in page.inner_text("body")

    page.goto(live_server.url + "/app/revenue/journal/?period=2026-01")
    assert "Balanced" in page.inner_text("body")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert_no_violation(page)
