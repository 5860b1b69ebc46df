"""The back-office in a real browser (Debian's Chromium driven by Playwright): log in, then the
price calculator updates live (htmx) as finance staff type."""

import os
import shutil
from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed (.ci/run installs it)"),
]
# Playwright's sync API runs an event loop in this thread; the ORM calls of the fixtures are safe here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def page() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
            ],
        )
        page = browser.new_page()
        yield page
        browser.close()


def test_login_then_the_calculator_updates_live(live_server: Any, page: Any) -> None:
    call_command("seed_demo", stdout=StringIO())
    page.goto(live_server.url + "/app/login/")
    page.fill("input[name=login]", "demo@smartfleet.test")
    page.fill("input[name=password]", "smartfleet-demo")
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/app/")
    assert "Smart Fleet Telematics" in page.content()

    page.goto(live_server.url + "/app/catalog/calculator/")
    page.select_option("select[name=plan]", label="Smart Fleet (smart-fleet)")
    page.fill("input[name=region]", "FR")
    page.fill("input[name=devices]", "3")
    quantity = page.locator("input[name$=quantity]").first
    quantity.fill("14000")
    quantity.press("Tab")
    # htmx posts the form and swaps in the result: 60.00 + 75.00 + 104.64 = 239.64, VAT 47.93
    page.wait_for_function("document.body.innerText.includes('287.57')", timeout=10000)
    text = page.inner_text("body")
    assert "104.64" in text
    assert "239.64" in text
    page.wait_for_load_state("networkidle")  # let the last live update finish before the server stops
