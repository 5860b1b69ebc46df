"""Buying an offer in the portal's shop, in a real browser (Debian's Chromium) on a phone: the form
prefilled with the customer's address, the confirmation with what is invoiced now, then the order
and its invoice. No page scrolls sideways at 390 px, nothing breaks the Content-Security-Policy."""

from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone

from customers.models import PortalRole, PortalUser
from customers.portal import portal_session_open
from invoicing.models import Invoice, InvoiceStatus
from subscriptions.models import Device, Order
from subscriptions.tests.shop import shop_catalog, shop_customer
from tenancy.models import Tenant
from tests.browser.conftest import CHROMIUM_MISSING, assert_no_violation
from tests.browser.test_backoffice_walk import AXE, AXE_RUN

pytestmark = [pytest.mark.django_db(transaction=True), CHROMIUM_MISSING]


def axe_violations(page: Any) -> list[Any]:
    """The serious and critical accessibility violations axe-core finds on the page shown."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())
    found: list[Any] = page.evaluate(AXE_RUN)
    return found


def test_buying_two_devices_in_the_shop_on_a_phone(live_server: Any, page: Any, tenant: Tenant) -> None:
    # given: Dupont (Paris, EUR, VAT 20 %), plan fleet-shop at 240.00 per device, a billing user
    shop_catalog(tenant)
    customer = shop_customer(tenant)
    user = PortalUser.objects.create(
        tenant=tenant, customer=customer, email="achats@dupont.test", name="Achats", role=PortalRole.BILLING
    )
    opened = portal_session_open(customer=customer, user=user, at=timezone.now())
    page.context.add_cookies(
        [{"name": settings.PORTAL_SESSION_COOKIE, "value": opened.token, "url": live_server.url + "/portal/"}]
    )
    page.set_viewport_size({"width": 390, "height": 844})
    # when: the shop, in the customer's French
    page.goto(live_server.url + "/portal/shop/")
    # then: the offer and the customer's address, prefilled
    assert "Fleet (shop)" in page.inner_text("main")
    assert page.input_value("input[name=postal_code]") == customer.postal_code
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert axe_violations(page) == []
    # when: 2 devices to Lyon, reviewed
    page.check("input[name=plan][value=fleet-shop]")
    page.fill("input[name=quantity]", "2")
    page.fill("input[name=line1]", "4 rue des Docks")
    page.fill("input[name=postal_code]", "69009")
    page.fill("input[name=city]", "Lyon")
    page.click("main form button[type=submit]")
    # then: 2 x 240.00 = 480.00, VAT 96.00, 576.00 due now
    main = page.inner_text("main")
    assert "480,00" in main
    assert "576,00" in main
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert axe_violations(page) == []
    # when: confirmed
    page.click("main form button[type=submit]")
    page.wait_for_load_state()
    # then: the order, its slots and its invoice of 576.00, finalized
    order = Order.objects.get(tenant=tenant)
    assert (order.quantity, order.shipping_city, order.placed_by) == (2, "Lyon", "achats@dupont.test")
    assert Device.objects.filter(subscription=order.subscription, device_id="").count() == 2
    invoice = Invoice.objects.get(order=order)
    assert (invoice.status, invoice.total.amount) == (InvoiceStatus.FINALIZED, Decimal("576.00"))
    assert "ORD-000001" in page.inner_text("main")
    assert_no_violation(page)
