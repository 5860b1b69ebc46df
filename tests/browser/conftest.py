"""The browser of the back-office tests: Debian's Chromium driven by Playwright (sync API), with what
goes wrong in a page collected as it happens.

``page.problems`` lists what the browser refused under the Content-Security-Policy (its console
messages), script errors and answers in error (status >= 400). A page made with ``strict=True``
(``strict_page``) also counts every console error and every request that failed outright."""

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_MISSING = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed (.ci/run installs it)"
)
# Playwright's sync API runs an event loop in this thread; the ORM calls of the fixtures are safe here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
DEMO_LOGIN = ("demo@smartfleet.test", "smartfleet-demo")


def watch(page: Any, *, strict: bool = False) -> list[str]:
    """Start collecting the page's problems in ``page.problems`` (and return that list).

    Not strict, other console errors are not counted: htmx logs the requests it cancels (hx-sync)
    when a test types faster than the server answers."""
    page.add_init_script(
        "window.__cspViolations = [];"
        "document.addEventListener('securitypolicyviolation', e => window.__cspViolations.push("
        "e.violatedDirective + ' ' + (e.blockedURI || 'inline') + ' ' + e.sourceFile + ':' + e.lineNumber));"
    )
    problems: list[str] = []

    def console(message: Any) -> None:
        if "Content Security Policy" in message.text or (strict and message.type == "error"):
            problems.append("console %s: %s" % (message.type, message.text))

    page.on("console", console)
    page.on("pageerror", lambda error: problems.append("page error: %s" % error))
    page.on("response", lambda r: problems.append("%d %s" % (r.status, r.url)) if r.status >= 400 else None)
    if strict:
        page.on(
            "requestfailed",
            lambda request: problems.append("request failed: %s %s" % (request.url, request.failure)),
        )
    page.problems = problems
    return problems


# A Chromium per test, closed at its end: Playwright's sync API keeps an event loop in this thread
# while it is open, and pytest-django runs the transactional tests (every browser test, and others
# elsewhere that start their own Playwright) together at the end, in an order that mixes packages.
# Each test gets its page in a new browser context (``browser.new_page``).
@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    page = browser.new_page()
    watch(page)
    yield page
    page.context.close()


@pytest.fixture
def strict_page(browser: Any) -> Iterator[Any]:
    page = browser.new_page()
    watch(page, strict=True)
    yield page
    page.context.close()


def log_in(page: Any, base_url: str, login: tuple[str, str] = DEMO_LOGIN) -> None:
    page.goto(base_url + "/app/login/")
    page.fill("input[name=login]", login[0])
    page.fill("input[name=password]", login[1])
    page.click("button[type=submit]")
    page.wait_for_url(base_url + "/app/")


def assert_no_violation(page: Any) -> None:
    assert page.evaluate("window.__cspViolations") == []
    assert page.problems == [], "\n".join(page.problems)
