"""A partner's day in the partner dashboard, in a real browser (Debian's Chromium): a sales user logs
in with a code e-mailed, creates a customer and a subscription of 2 trackers on a plan offered to
partners, binds a device at shipment; once the customer has paid the order's invoice, the user
sees the first commission accrued. Every page at 1,366 and 390 px: a
screenshot (in ``$TRIPOD_SCREENSHOTS`` when set, else in the test's temporary directory), nothing
wider than the window, no serious accessibility violation, nothing the Content-Security-Policy
refuses, no console error."""

import os
import re
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.utils import timezone
from djmoney.money import Money

from catalog.models import Plan
from customers.models import Customer
from invoicing.models import Invoice
from partners.tests.dashboard import ACTOR, make_partner, make_partner_user
from payments.ledger import payment_record
from subscriptions.models import Device
from subscriptions.tests.shop import shop_catalog
from tenancy.models import Tenant
from tests.browser.conftest import CHROMIUM_MISSING, assert_no_violation
from tests.browser.test_backoffice_walk import AXE, AXE_RUN, OVERFLOW

pytestmark = [pytest.mark.django_db(transaction=True), CHROMIUM_MISSING]

WIDTHS = {"desktop": (1366, 800), "phone": (390, 844)}


class Shots:
    """Screenshots and checks of the page shown, at both widths."""

    def __init__(self, page: Any, folder: Path) -> None:
        self.page = page
        self.folder = folder
        self.failures: list[str] = []

    def check(self, name: str) -> None:
        page = self.page
        for width, (w, h) in WIDTHS.items():
            page.set_viewport_size({"width": w, "height": h})
            page.screenshot(path=str(self.folder / ("partners-%s-%s.png" % (width, name))), full_page=True)
            where = "%s %s" % (width, name)
            if page.evaluate("document.documentElement.scrollWidth > window.innerWidth"):
                self.failures.append("%s scrolls sideways: %s" % (where, ", ".join(page.evaluate(OVERFLOW))))
            if not page.evaluate("typeof window.axe !== 'undefined'"):
                page.evaluate(AXE.read_text())
            for v in page.evaluate(AXE_RUN):
                self.failures.append("%s: axe %s %s: %s" % (where, v["id"], v["help"], " | ".join(v["targets"])))
        page.set_viewport_size({"width": 1366, "height": 800})


def test_a_partner_sells_a_subscription_and_sees_its_first_commission(
    live_server: Any, strict_page: Any, tenant: Tenant, tmp_path: Path
) -> None:
    # given: partner AlpNet (hardware 5 %), a sales user, plan fleet-shop offered to partners
    # (240.00 per tracker billed at signature, VAT 20 %)
    partner = make_partner(tenant)
    make_partner_user(partner, email="lea@alpnet.test", role="sales", name="Léa")
    plan = shop_catalog(tenant, self_service=False)
    Plan.objects.filter(pk=plan.pk).update(partner_visible=True)
    folder = Path(os.environ.get("TRIPOD_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    page = strict_page
    shots = Shots(page, folder)
    base = live_server.url
    page.set_viewport_size({"width": 1366, "height": 800})

    # when: Léa logs in with the code e-mailed to her
    page.goto(base + "/partners/acme/login/")
    shots.check("login")
    page.fill("input[name=email]", "lea@alpnet.test")
    page.click("button[value=code]")
    page.wait_for_selector("input[name=code]")
    [code] = re.findall(r"^(\d{6})$", str(mail.outbox[-1].body), re.M)
    page.fill("input[name=code]", code)
    page.click("main form button[type=submit]")
    page.wait_for_url(base + "/partners/")
    assert "You have no customer yet." in page.inner_text("main")
    shots.check("customers-empty")

    # when: she creates a customer
    page.click("text=New customer")
    page.wait_for_url(base + "/partners/customers/+new/")
    shots.check("customer-new")
    page.fill("input[name=external_id]", "alpha")
    page.fill("input[name=name]", "Alpha Logistique")
    page.fill("input[name=email]", "compta@alpha.test")
    page.fill("input[name=country]", "FR")
    page.fill("input[name=address_line1]", "4 rue des Docks")
    page.fill("input[name=postal_code]", "69009")
    page.fill("input[name=city]", "Lyon")
    page.click("main form button[type=submit]")
    page.wait_for_url(base + "/partners/customers/alpha/")
    alpha = Customer.objects.get(tenant=tenant, external_id="alpha")
    assert alpha.partner_id == partner.pk

    # when: a subscription of 2 trackers, shipped to the customer's address (prefilled)
    page.click("text=New subscription")
    page.wait_for_url(base + "/partners/customers/alpha/subscribe/")
    assert page.input_value("input[name=city]") == "Lyon"
    shots.check("subscribe")
    page.select_option("select[name=plan]", "fleet-shop")
    page.fill("input[name=quantity]", "2")
    page.click("main form button[type=submit]")
    page.wait_for_url(base + "/partners/customers/alpha/")
    # then: 2 x 240.00 = 480.00 + VAT 96.00 = 576.00 invoiced at once; 2 slots
    invoice = Invoice.objects.get(tenant=tenant, customer=alpha)
    assert invoice.total.amount == Decimal("576.00")
    assert "Order ORD-000001 is placed" in page.inner_text("main")
    shots.check("customer")

    # when: she binds the first tracker shipped
    page.click("text=Bind a device >> nth=0")
    page.wait_for_selector("input[name=device_id]")
    shots.check("bind")
    page.fill("input[name=device_id]", "ELD-0001")
    page.click("main form button[type=submit]")
    page.wait_for_url(base + "/partners/customers/alpha/")
    assert "ELD-0001" in page.inner_text("main")
    assert Device.objects.filter(subscription__customer=alpha, device_id="ELD-0001").count() == 1
    page.click("nav >> text=Customers")
    page.wait_for_url(base + "/partners/")
    assert "Alpha Logistique" in page.inner_text("main")
    shots.check("customers")
    page.click("header >> text=Security")
    page.wait_for_url(base + "/partners/security/")
    shots.check("security")
    page.click("nav >> text=Usage")
    page.wait_for_url(base + "/partners/usage/")
    shots.check("usage")

    # given: the customer pays the 576.00
    now = timezone.now()
    payment_record(
        customer=alpha,
        amount=Money("576.00", "EUR"),
        method="bank_transfer",
        received_at=now,
        actor=ACTOR,
        at=now,
        invoice=invoice,
    )
    # then: 480.00 x 5 % = 24.00 accrued this month, on the commissions page and its chart
    page.click("nav >> text=Commissions")
    page.wait_for_url(base + "/partners/commissions/")
    page.wait_for_function("document.querySelector('canvas[data-portal-chart]').width > 0")
    month = timezone.localtime(now, ZoneInfo(tenant.timezone)).strftime("%Y-%m")
    row = page.inner_text("#commission-table tr[data-month='%s']" % month)
    assert "€24.00" in row
    assert "So far this month" in row
    shots.check("commissions")
    assert not shots.failures, "\n".join(shots.failures)
    assert_no_violation(page)
