"""Paying an invoice in the customer portal, in a real browser (Debian's Chromium): "Pay by card"
leads to the Checkout stand-in (payments/tests/localstripe_server.py), its "Pay" takes 120.00 EUR
and sends the signed ``checkout.session.completed`` to Tripod's live server, and the customer is
back on the invoice's page, which says the payment was received. The pages at 1,366 and 390 px:
no sideways scroll, no axe-core violation of impact serious or critical, nothing refused by the
Content-Security-Policy (whose form-action lets the form lead to Checkout)."""

import os
from pathlib import Path
from typing import Any

import pytest
import stripe
from django.conf import settings
from django.utils import timezone
from djmoney.money import Money

from customers.models import Customer, PortalRole, PortalUser
from customers.portal import portal_session_open
from invoicing.models import InvoicePaymentStatus
from invoicing.tests.factories import issue, line
from payments.models import GatewayEvent
from payments.tests import conftest as payment_fixtures
from tests.browser.conftest import CHROMIUM_MISSING, assert_no_violation
from tests.browser.test_backoffice_walk import AXE, AXE_RUN

pytestmark = [pytest.mark.django_db(transaction=True), CHROMIUM_MISSING]

# localstripe with the Checkout stand-in, and Dupont at a tenant connected to it (payments' fixtures)
localstripe_url = payment_fixtures.localstripe_url
stripe_api = payment_fixtures.stripe_api
stripe_tenant = payment_fixtures.stripe_tenant
card_customer = payment_fixtures.card_customer
checkout_stripe = payment_fixtures.checkout_stripe


def _check(page: Any, shots: Path, name: str) -> None:
    for width, height in ((1366, 800), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(shots / ("%d-%s.png" % (width, name))), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), (width, name)
        if not page.evaluate("typeof window.axe !== 'undefined'"):
            page.evaluate(AXE.read_text())
        assert page.evaluate(AXE_RUN) == [], (width, name)
    page.set_viewport_size({"width": 1366, "height": 800})


def test_paying_an_invoice_by_card_in_the_portal(
    live_server: Any, page: Any, checkout_stripe: stripe.StripeClient, card_customer: Customer, tmp_path: Path
) -> None:
    # given: 100.00 + 20 % VAT = 120.00 EUR due; Acme's account for transfers; a billing user
    tenant = card_customer.tenant
    tenant.iban, tenant.bic = "FR7630006000011234567890189", "AGRIFRPPXXX"
    tenant.save(update_fields=["iban", "bic"])
    invoice = issue(card_customer, [line("service", "fleet-plan", "100.00")])
    user = PortalUser.objects.create(
        tenant=tenant,
        customer=card_customer,
        email="compta@dupont.test",
        name="Compta",
        role=PortalRole.BILLING,
        language="en",
    )
    opened = portal_session_open(customer=card_customer, user=user, at=timezone.now())
    page.context.add_cookies([{"name": settings.PORTAL_SESSION_COOKIE, "value": opened.token, "url": live_server.url}])
    shots = Path(os.environ.get("TRIPOD_SCREENSHOTS") or tmp_path)
    pay = "%s/portal/invoices/%s/pay/" % (live_server.url, invoice.pk)
    # when: the invoice's page, then "Pay by card"
    page.goto(pay)
    assert page.locator("#amount-due").inner_text() == "€120.00"
    assert page.get_by_text("FR76 3000 6000 0112 3456 7890 189").count() == 1
    _check(page, shots, "portal-invoice-pay")
    page.get_by_role("button", name="Pay by card").click()
    page.wait_for_url(settings.STRIPE_API_BASE + "/checkout/cs_test_*")  # the stand-in
    assert page.locator("h1").inner_text() == "Pay 120.00 EUR"
    # when: "Pay" on Checkout
    page.get_by_role("button", name="Pay").click()
    page.wait_for_url(pay + "?returned=1")
    # then: back on the page, the payment received (Stripe's signed event came first)
    assert "Payment received. Thank you." in page.locator("#pay-status").inner_text()
    assert page.get_by_role("button", name="Pay by card").count() == 0
    _check(page, shots, "portal-invoice-paid")
    assert_no_violation(page)
    [event] = GatewayEvent.objects.filter(tenant=tenant)
    assert event.type == "checkout.session.completed"
    invoice.refresh_from_db()
    assert (invoice.payment_status, invoice.amount_due) == (InvoicePaymentStatus.PAID, Money("0.00", "EUR"))
    # and a card saved through Checkout in setup mode becomes the default
    page.goto(live_server.url + "/portal/payment-methods/")
    assert page.get_by_text("No payment method saved yet.").count() == 1
    page.get_by_role("button", name="Add a card or SEPA mandate").click()
    page.wait_for_url(settings.STRIPE_API_BASE + "/checkout/cs_test_*")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(live_server.url + "/portal/payment-methods/?added=1")
    saved = page.locator(".pt-methods li").first.inner_text()
    assert "Visa card ending in 4242" in saved
    assert "Default" in saved
    _check(page, shots, "portal-payment-methods")
    assert_no_violation(page)
