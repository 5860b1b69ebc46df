"""Stripe Checkout end to end, with Tripod's live server: the session opened by Tripod's service,
the customer's "Pay" (or "Save") on the Checkout stand-in, the signed ``checkout.session.completed``
it sends to the tenant's webhook URL, verified by Tripod with the Stripe library, and the invoice
paid (or the card saved as the default)."""

from typing import Any

import pytest
import requests
import stripe
from django.utils import timezone
from djmoney.money import Money

from customers.models import Customer
from invoicing.models import InvoicePaymentStatus
from invoicing.tests.factories import issue, line
from payments import checkout
from payments.models import Gateway, GatewayCustomer, GatewayEvent, Payment
from payments.tests.conftest import localstripe_running
from tenancy.models import Tenant

pytestmark = pytest.mark.django_db(transaction=True)


def test_paying_on_checkout_pays_the_invoice_through_the_signed_event(
    checkout_stripe: stripe.StripeClient, card_customer: Customer, live_server: Any
) -> None:
    # given: 100.00 + 20 % VAT = 120.00 EUR due, no card saved
    invoice = issue(card_customer, [line("service", "fleet-plan", "100.00")])
    invoice.refresh_from_db()
    assert invoice.amount_due == Money("120.00", "EUR")
    back = live_server.url + "/portal/invoices/%s/pay/?session={CHECKOUT_SESSION_ID}" % invoice.pk
    url = checkout.checkout_session_for_invoice(
        invoice=invoice, success_url=back, cancel_url=live_server.url + "/portal/", at=timezone.now()
    )
    # when: the customer opens the page and presses "Pay"
    page = requests.get(url, timeout=10)
    assert page.status_code == 200
    assert "Pay 120.00 EUR" in page.text
    paid = requests.post(url, data={"card": "4242424242424242"}, allow_redirects=False, timeout=30)
    # then: sent back to the success URL with the session's id
    session_id = url.rsplit("/", 1)[1]
    assert paid.status_code == 303, paid.text
    assert paid.headers["Location"] == back.replace("{CHECKOUT_SESSION_ID}", session_id)
    # and the signed event was verified, stored once and applied: 12000 cents taken, the invoice paid
    [event] = GatewayEvent.objects.filter(tenant=card_customer.tenant)
    assert (event.type, event.error) == ("checkout.session.completed", "")
    assert event.processed_at is not None
    session = checkout_stripe.v1.checkout.sessions.retrieve(session_id)
    assert (session.status, session.payment_status) == ("complete", "paid")
    intent = checkout_stripe.v1.payment_intents.retrieve(str(session.payment_intent))
    assert (intent.amount, intent.currency, intent.status) == (12000, "eur", "succeeded")
    assert intent.metadata["invoice_id"] == str(invoice.pk)
    [payment] = Payment.objects.filter(customer=card_customer)
    assert (payment.amount, payment.gateway, payment.gateway_id) == (Money("120.00", "EUR"), Gateway.STRIPE, intent.id)
    assert [(a.invoice_id, a.amount) for a in payment.allocations.all()] == [(invoice.pk, Money("120.00", "EUR"))]
    invoice.refresh_from_db()
    assert (invoice.payment_status, invoice.amount_due) == (InvoicePaymentStatus.PAID, Money("0.00", "EUR"))
    # the page cannot take the money twice
    assert requests.post(url, allow_redirects=False, timeout=10).status_code == 402


def test_saving_a_card_on_checkout_makes_it_the_default(
    checkout_stripe: stripe.StripeClient, card_customer: Customer, live_server: Any
) -> None:
    # given: no payment method yet
    url = checkout.checkout_session_for_setup(
        customer=card_customer, success_url=live_server.url + "/portal/payment-methods/", cancel_url=live_server.url
    )
    # when: the customer saves a SEPA mandate (Dupont pays in euros)
    saved = requests.post(url, data={"method": "sepa_debit"}, allow_redirects=False, timeout=30)
    # then: the mandate, attached at Stripe, is the default Tripod charges
    assert saved.status_code == 303, saved.text
    found = GatewayCustomer.objects.get(customer=card_customer)
    [method] = checkout.payment_methods_list(customer=card_customer)
    assert (method.id, method.type, method.last4, method.is_default) == (
        found.default_payment_method,
        "sepa_debit",
        "3000",  # DE89 3704 0044 0532 0130 00
        True,
    )
    assert found.payment_method_summary == "sepa_debit"


def test_an_event_signed_with_another_secret_changes_nothing(
    live_server: Any, tenant: Tenant, card_customer: Customer, settings: Any
) -> None:
    # given: a stand-in that signs with a secret that is not the tenant's
    webhook = "%s/api/v1/webhooks/stripe?tenant=%s" % (live_server.url, tenant.slug)
    with localstripe_running("--webhook-url", webhook, "--webhook-secret", "whsec_someone_else") as url:
        settings.STRIPE_API_BASE = url
        invoice = issue(card_customer, [line("service", "fleet-plan", "100.00")])
        page = checkout.checkout_session_for_invoice(
            invoice=invoice, success_url=live_server.url, cancel_url=live_server.url, at=timezone.now()
        )
        # when
        answer = requests.post(page, allow_redirects=False, timeout=30)
    # then: Tripod answered 400, stored nothing; the invoice is still due
    assert answer.status_code == 502
    assert "The webhook answered 400" in answer.text
    assert not GatewayEvent.objects.filter(tenant=tenant).exists()
    invoice.refresh_from_db()
    assert (invoice.payment_status, invoice.amount_due) == (InvoicePaymentStatus.UNPAID, Money("120.00", "EUR"))
