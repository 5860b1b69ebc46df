"""The customer portal's journeys in a real browser (Debian's Chromium), each as a customer lives it
(issue "The customer portal", Done when): a portal link opening a session and the overview's
projected total equal to ``current_usage``'s; two devices added with the preview's lines and found
on the next invoice; a support case opened from an invoice and the staff's answer arriving. Paying
an invoice through Checkout is tests/browser/test_portal_pay_browser.py, buying in the shop
tests/browser/test_portal_shop_browser.py, every page's screenshots and axe-core
tests/browser/test_portal_walk.py."""

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from django.utils import timezone
from rest_framework.test import APIClient

from customers.models import PortalRole
from invoicing.models import BillRun, Invoice
from invoicing.services import bill_run_chunk, bill_run_plan, invoice_finalize
from invoicing.tests.factories import issue, line
from portal.tests.scenario import NOW, portal_customer, send_usage
from subscriptions.tests.factories import monthly_fee_customers
from support.models import SupportCase
from tenancy.actors import Actor
from tenancy.models import Tenant
from tests.browser.conftest import CHROMIUM_MISSING, assert_no_violation, log_in
from usage.partitions import forget_known_partitions

pytestmark = [pytest.mark.django_db(transaction=True), CHROMIUM_MISSING]
PARIS = ZoneInfo("Europe/Paris")


def paris(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=PARIS)


def _bill_run(tenant: Tenant, billing_date: date, at: datetime) -> None:
    run = BillRun.objects.create(tenant=tenant, billing_date=billing_date)
    for chunk in bill_run_plan(run=run, at=at):
        bill_run_chunk(run_id=str(run.pk), customer_ids=chunk, at=at)


def _open_link(page: Any, base: str, api: APIClient, external_id: str) -> None:
    """As the tenant's app does: ask for a portal link, send the browser there."""
    response = api.post(
        "/api/v1/customers/%s/portal_sessions" % external_id, {"return_url": "https://app.acme.test/"}, format="json"
    )
    assert response.status_code == 201, response.content
    page.goto(base + response.json()["url"].removeprefix("http://testserver"))


def test_a_portal_link_opens_the_overview_whose_projection_is_current_usages(
    live_server: Any, page: Any, tenant: Tenant, api: APIClient
) -> None:
    forget_known_partitions()
    portal_customer(tenant)
    with time_machine.travel(NOW, tick=False):
        send_usage(api)
        # the projection of 20 April: P 200 MB and T 30 MB = 230 MB, 100 MB included per device
        # pooled over the two = 200 MB: 30 MB over at 0.02 = 0.60; 20 % VAT 0.12: 0.72
        expected = api.get("/api/v1/customers/dupont/current_usage").json()
        _open_link(page, live_server.url, api, "dupont")
        page.wait_for_url(live_server.url + "/portal/overview/")
        projected = page.locator("[data-figure=projected]").inner_text()
    assert expected["projected"]["total"] == "0.72"
    assert projected.replace("\u202f", " ").replace("\xa0", " ") == "0,72 €"
    # the way back to the tenant's app, from the portal link
    assert (
        page.get_by_role("link", name=re.compile("Retour à|Back to")).get_attribute("href") == "https://app.acme.test/"
    )
    assert_no_violation(page)
    forget_known_partitions()


def test_adding_two_devices_shows_the_preview_then_the_next_invoice_bills_them(
    live_server: Any, page: Any, tenant: Tenant, api: APIClient
) -> None:
    # given: customer c0 on plan p, 10.00 per device and month, devices c0-d0 and c0-d1; April billed
    [customer] = monthly_fee_customers(tenant)
    _bill_run(tenant, date(2026, 4, 1), paris(2026, 4, 1, 6))
    with time_machine.travel(paris(2026, 4, 17, 10), tick=False):
        _open_link(page, live_server.url, api, customer.external_id)
        page.wait_for_url(re.compile(r"/portal/overview/$"))
        page.goto(live_server.url + "/portal/plan/s0/add-devices/")
        page.locator("textarea[name=serials]").fill("N-1\nN-2")
        page.locator("button[name=step][value=preview]").click()
        page.wait_for_load_state("load")
        # then: 2 x 10.00 x 14/30 (17 to 30 April) = 9.33, before anything is written
        preview = page.locator("main").inner_text()
        assert "14/30" in preview
        assert "9.33" in preview.replace(",", ".")
        page.locator("button[name=step][value=confirm]").click()
        page.wait_for_url(live_server.url + "/portal/plan/")
    # when: the bill run of 1 May
    _bill_run(tenant, date(2026, 5, 1), paris(2026, 5, 1, 6))
    may = Invoice.objects.get(customer=customer, issue_date=date(2026, 5, 1))
    # a bill run leaves drafts for finance to review; customers see the invoice once finalized
    invoice_finalize(invoice=may, actor=Actor.system("finance"), at=paris(2026, 5, 1, 9))
    # then: the customer finds N-1 and N-2's 9.33 on it, beside May in advance for four devices
    with time_machine.travel(paris(2026, 5, 2, 10), tick=False):
        _open_link(page, live_server.url, api, customer.external_id)  # a new day, a new session
        page.wait_for_url(re.compile(r"/portal/overview/$"))
        response = page.goto(live_server.url + "/portal/invoices/%s/" % may.pk)
        assert response is not None
        assert response.status == 200
        text = page.locator("main").inner_text().replace(",", ".")
    assert "9.33" in text
    assert "40.00" in text
    assert sorted(x.amount for x in may.lines.all()) == [Decimal("9.33"), Decimal("40.00")]
    assert_no_violation(page)


def test_a_support_case_from_an_invoice_and_the_staffs_answer(
    live_server: Any, page: Any, browser: Any, tenant: Tenant, api: APIClient, make_staff: Any
) -> None:
    # given: Dupont's invoice of 100.00 + 20 % VAT, and a portal user of Dupont reading English
    from catalog.services import tax_rate_set
    from customers.tests.factories import dupont

    tax_rate_set(
        tenant=tenant, actor=Actor.system("t"), at=timezone.now(), country="FR", tax_category="standard", rate="20"
    )
    customer = dupont(tenant)
    invoice = issue(customer, [line("service", "fleet-platform", "100.00")])
    from customers.models import PortalUser

    PortalUser.objects.create(
        tenant=tenant, customer=customer, email="compta@dupont.test", role=PortalRole.BILLING, language="en"
    )
    _open_link(page, live_server.url, api, "dupont")
    page.wait_for_url(re.compile(r"/portal/overview/$"))
    # when: the customer asks about the invoice, from its page
    page.goto(live_server.url + "/portal/invoices/%s/" % invoice.pk)
    page.get_by_role("button", name=re.compile("Ask about this invoice|Poser une question")).click()
    page.locator("input[name=subject]").fill("Line 1 is wrong")
    page.locator("textarea[name=body]").fill("We had 10 devices, not 12.")
    page.locator("main button[type=submit]").last.click()
    page.wait_for_load_state("load")
    case = SupportCase.objects.get(customer=customer)
    assert (case.subject, case.invoice_id, case.status) == ("Line 1 is wrong", invoice.pk, "open")
    # then: staff see it in the queue and answer
    staff_page = browser.new_page()
    make_staff(tenant, email="agent@acme.test")
    log_in(staff_page, live_server.url, ("agent@acme.test", "correct-horse-battery"))
    staff_page.goto(live_server.url + "/app/support/%s/" % case.pk)
    staff_page.locator("textarea[name=body]").fill("You are right: a credit note follows.")
    staff_page.get_by_role("button", name="Send the answer").click()
    staff_page.wait_for_load_state("load")
    staff_page.context.close()  # the browser outlives the test: its pages do not
    case.refresh_from_db()
    assert case.status == "waiting_on_customer"
    # and the answer arrives: by e-mail to the portal user, and on the case's page
    assert [m.to for m in mail.outbox if "a credit note follows" in m.body] == [["compta@dupont.test"]]
    page.goto(live_server.url + "/portal/support/%s/" % case.pk)
    assert "You are right: a credit note follows." in page.locator("main").inner_text()
    assert_no_violation(page)
