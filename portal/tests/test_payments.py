"""The portal's payment pages (specs/portal.md, "Invoices" and "Payment methods"), against localstripe
and its Checkout stand-in: what is due and the ways to pay it, Checkout opened for the amount due,
the saved card charged, the bank details; payment methods listed, made default, removed after a
confirmation, added through Checkout in setup mode; what a viewer and a tenant without Stripe see."""

from collections.abc import Callable
from typing import Any

import pytest
import stripe
from django.conf import settings
from django.test import Client
from djmoney.money import Money

from billing_platform.celery import app as celery_app
from customers.models import Customer
from customers.tests.factories import dupont
from invoicing.models import Invoice, InvoicePaymentStatus
from invoicing.tests.factories import issue, line
from payments.gateway import payment_method_attach
from payments.models import AttemptStatus, GatewayCustomer, PaymentAttempt, PaymentSettings
from payments.tests import conftest as payment_fixtures
from payments.tests.conftest import DECLINED, VISA, card
from tenancy.models import Tenant

pytestmark = pytest.mark.django_db

# localstripe (with the Checkout stand-in) and Dupont at a tenant connected to it (payments' fixtures)
localstripe_url = payment_fixtures.localstripe_url
stripe_api = payment_fixtures.stripe_api
stripe_tenant = payment_fixtures.stripe_tenant
card_customer = payment_fixtures.card_customer

ClientMaker = Callable[..., Client]


@pytest.fixture
def as_user(portal_client: ClientMaker, make_portal_user: Callable[..., Any]) -> Callable[..., Client]:
    """A portal client for ``customer`` with ``role``, reading English."""

    def make(customer: Customer, role: str = "billing") -> Client:
        return portal_client(customer, user=make_portal_user(customer, role=role, language="en"))

    return make


def _acme_account(tenant: Tenant) -> None:
    tenant.iban, tenant.bic, tenant.legal_name = "FR7630006000011234567890189", "AGRIFRPPXXX", "Acme Telematics SAS"
    tenant.save(update_fields=["iban", "bic", "legal_name"])


def _invoice(customer: Customer) -> Invoice:
    """100.00 + 20 % VAT = 120.00 EUR, finalized and unpaid."""
    invoice = issue(customer, [line("service", "fleet-plan", "100.00")])
    invoice.refresh_from_db()
    assert invoice.amount_due == Money("120.00", "EUR")
    return invoice


def _pay_url(invoice: Invoice) -> str:
    return "/portal/invoices/%s/pay/" % invoice.pk


def _text(response: Any) -> str:
    return " ".join(response.content.decode().split())


def test_the_pay_page_shows_the_amount_due_both_ways_and_the_bank_details(
    as_user: Callable[..., Client], card_customer: Customer, stripe_api: stripe.StripeClient
) -> None:
    # given: 120.00 EUR due, Visa ····4242 saved, Acme's account
    _acme_account(card_customer.tenant)
    payment_method_attach(customer=card_customer, payment_method=card(stripe_api, VISA))
    invoice = _invoice(card_customer)
    # when
    response = as_user(card_customer, "billing").get(_pay_url(invoice))
    # then
    assert response.status_code == 200
    page = _text(response)
    assert '<strong id="amount-due">€120.00</strong>' in page
    assert 'name="action" value="card"' in page
    assert "Pay by card</button>" in page
    assert "Pay with saved card visa •••• 4242</button>" in page
    assert "<dd>Acme Telematics SAS</dd>" in page
    assert "<code>FR76 3000 6000 0112 3456 7890 189</code>" in page
    assert "<code>AGRIFRPPXXX</code>" in page
    assert "<code>%s</code>" % invoice.number in page
    # the form may lead to Stripe Checkout (here, the stand-in); nowhere else
    policy = dict(d.strip().split(" ", 1) for d in response["Content-Security-Policy"].split(";"))
    assert policy["form-action"] == "'self' https://checkout.stripe.com %s" % settings.STRIPE_API_BASE


def test_pay_by_card_opens_checkout_for_the_amount_due_and_comes_back_to_the_page(
    as_user: Callable[..., Client], card_customer: Customer, stripe_api: stripe.StripeClient, localstripe_url: str
) -> None:
    invoice = _invoice(card_customer)
    response = as_user(card_customer, "billing").post(_pay_url(invoice), {"action": "card"})
    # then: sent to the Checkout page, for 12000 cents (120.00 EUR)
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith(localstripe_url + "/checkout/cs_test_")
    session = stripe_api.v1.checkout.sessions.retrieve(location.rsplit("/", 1)[1])
    assert (session.mode, session.amount_total, session.currency) == ("payment", 12000, "eur")
    assert session.to_dict()["metadata"]["invoice_id"] == str(invoice.pk)
    assert session.success_url == "http://testserver%s?returned=1" % _pay_url(invoice)
    assert session.cancel_url == "http://testserver%s" % _pay_url(invoice)


def test_back_from_checkout_the_page_says_processing_until_the_payment_is_recorded(
    as_user: Callable[..., Client], card_customer: Customer, stripe_api: stripe.StripeClient
) -> None:
    invoice = _invoice(card_customer)
    client = as_user(card_customer, "billing")
    # before Stripe's event: processing, and the status polls the page
    waiting = _text(client.get(_pay_url(invoice) + "?returned=1"))
    assert "Your payment is being processed." in waiting
    assert 'hx-trigger="every 3s"' in waiting
    # once the event recorded the payment: received, and nothing left to pay
    Invoice.objects.filter(pk=invoice.pk).update(
        payment_status=InvoicePaymentStatus.PAID, amount_due=Money("0.00", "EUR"), amount_paid=Money("120.00", "EUR")
    )
    done = _text(client.get(_pay_url(invoice) + "?returned=1"))
    assert "Payment received. Thank you." in done
    assert "Your payment is being processed." not in done
    assert "every 3s" not in done
    assert "Pay by card</button>" not in done


def test_paying_with_the_saved_card_charges_it_and_says_so(
    as_user: Callable[..., Client],
    card_customer: Customer,
    stripe_api: stripe.StripeClient,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    # given: 120.00 EUR due, Visa ····4242 saved
    payment_method_attach(customer=card_customer, payment_method=card(stripe_api, VISA))
    invoice = _invoice(card_customer)
    client = as_user(card_customer, "billing")
    # when: the charge is sent by a worker once the request commits (eager here)
    celery_app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(_pay_url(invoice), {"action": "saved_card"})
    finally:
        celery_app.conf.task_always_eager = False
    # then: one attempt from the portal; 12000 cents taken; the invoice paid
    assert response.status_code == 302
    [attempt] = PaymentAttempt.objects.filter(invoice=invoice)
    assert (attempt.trigger, attempt.status) == ("portal", AttemptStatus.SUCCEEDED)
    assert attempt.amount == Money("120.00", "EUR")
    assert stripe_api.v1.payment_intents.retrieve(attempt.gateway_id).amount == 12000
    invoice.refresh_from_db()
    assert (invoice.payment_status, invoice.amount_due) == (InvoicePaymentStatus.PAID, Money("0.00", "EUR"))
    assert "Payment received. Thank you." in _text(client.get(response["Location"]))


def test_a_paid_invoice_cannot_be_paid_again(
    as_user: Callable[..., Client], card_customer: Customer, stripe_api: stripe.StripeClient
) -> None:
    invoice = _invoice(card_customer)
    Invoice.objects.filter(pk=invoice.pk).update(
        payment_status=InvoicePaymentStatus.PAID, amount_due=Money("0.00", "EUR"), amount_paid=Money("120.00", "EUR")
    )
    client = as_user(card_customer, "admin")
    response = client.post(_pay_url(invoice), {"action": "card"}, follow=True)
    page = _text(response)
    assert response.status_code == 200
    assert "This invoice has nothing left to pay." in page
    assert not GatewayCustomer.objects.filter(customer=card_customer).exists()  # Stripe never asked


def test_a_viewer_sees_the_amount_and_bank_details_without_buttons_and_cannot_pay(
    as_user: Callable[..., Client], card_customer: Customer, stripe_api: stripe.StripeClient
) -> None:
    _acme_account(card_customer.tenant)
    payment_method_attach(customer=card_customer, payment_method=card(stripe_api, VISA))
    invoice = _invoice(card_customer)
    client = as_user(card_customer, "viewer")
    page = _text(client.get(_pay_url(invoice)))
    assert "€120.00" in page
    assert "FR76 3000 6000 0112 3456 7890 189" in page
    assert "<button" not in page.split('id="content"')[1]
    assert "Only administrators and billing contacts of your account can pay." in page
    for action in ("card", "saved_card"):
        assert client.post(_pay_url(invoice), {"action": action}).status_code == 403
    methods = client.get("/portal/payment-methods/")
    assert methods.status_code == 200
    assert "Visa card ending in 4242" in _text(methods)
    assert "Make default" not in _text(methods)
    assert "Add a card" not in _text(methods)
    assert client.post("/portal/payment-methods/", {"action": "add"}).status_code == 403


def test_without_stripe_keys_the_page_offers_the_transfer_only(as_user: Callable[..., Client], tenant: Tenant) -> None:
    # given: Acme has no Stripe account connected
    from django.utils import timezone

    from catalog.services import tax_rate_set
    from invoicing.tests.factories import ACTOR

    tax_rate_set(tenant=tenant, actor=ACTOR, at=timezone.now(), country="FR", tax_category="standard", rate="20")
    _acme_account(tenant)
    customer = dupont(tenant)
    invoice = _invoice(customer)
    client = as_user(customer, "admin")
    # when / then: no error, the bank details
    response = client.get(_pay_url(invoice))
    assert response.status_code == 200
    page = _text(response)
    assert "Card payment is not available. You can pay by bank transfer." in page
    assert "Pay by card</button>" not in page
    assert "FR76 3000 6000 0112 3456 7890 189" in page
    followed = client.post(_pay_url(invoice), {"action": "card"}, follow=True)
    assert "Card payment is not available. You can pay by bank transfer." in _text(followed)
    methods = client.get("/portal/payment-methods/")
    assert methods.status_code == 200
    assert "Card payment is not available." in _text(methods)


def test_another_customers_invoice_and_a_draft_are_not_found(
    as_user: Callable[..., Client], card_customer: Customer, stripe_tenant: Tenant
) -> None:
    nordlog = dupont(stripe_tenant, external_id="nordlog", name="Nordlog", email="ap@nordlog.example")
    theirs = _invoice(nordlog)
    draft = issue(card_customer, [line("service", "fleet-plan", "100.00")], finalize=False)
    client = as_user(card_customer, "admin")
    for invoice in (theirs, draft):
        assert client.get(_pay_url(invoice)).status_code == 404
        assert client.post(_pay_url(invoice), {"action": "card"}).status_code == 404
    assert client.get("/portal/invoices/not-a-uuid/pay/").status_code == 404


def test_payment_methods_listed_made_default_and_removed_after_confirming(
    as_user: Callable[..., Client], card_customer: Customer, stripe_api: stripe.StripeClient
) -> None:
    # given: ····4242 then ····0341 (the default, the last attached)
    visa, other = card(stripe_api, VISA), card(stripe_api, DECLINED)
    payment_method_attach(customer=card_customer, payment_method=visa)
    payment_method_attach(customer=card_customer, payment_method=other)
    client = as_user(card_customer, "billing")
    page = _text(client.get("/portal/payment-methods/"))
    assert page.index("Visa card ending in 0341") < page.index("Visa card ending in 4242")
    assert "expires 12/2034" in page
    # when: ····4242 made default
    made = client.post("/portal/payment-methods/", {"action": "default", "payment_method": visa}, follow=True)
    assert "Default payment method changed." in _text(made)
    assert GatewayCustomer.objects.get(customer=card_customer).default_payment_method == visa
    # when: remove asked, then confirmed
    asked = client.post("/portal/payment-methods/", {"action": "remove", "payment_method": visa})
    assert asked.status_code == 200
    assert "Remove this payment method?" in _text(asked)
    assert "nothing will be charged automatically until you choose another one" in _text(asked)
    assert stripe_api.v1.payment_methods.retrieve(visa).customer is not None  # not yet
    done = client.post(
        "/portal/payment-methods/", {"action": "remove", "payment_method": visa, "confirm": "yes"}, follow=True
    )
    # then: detached; no default any more
    assert "Payment method removed." in _text(done)
    assert stripe_api.v1.payment_methods.retrieve(visa).customer is None
    assert GatewayCustomer.objects.get(customer=card_customer).default_payment_method == ""
    assert "ending in 4242" not in _text(done)


def test_another_customers_payment_method_is_not_found(
    as_user: Callable[..., Client], card_customer: Customer, stripe_tenant: Tenant, stripe_api: stripe.StripeClient
) -> None:
    nordlog = dupont(stripe_tenant, external_id="nordlog", name="Nordlog", email="ap@nordlog.example")
    theirs = card(stripe_api)
    payment_method_attach(customer=nordlog, payment_method=theirs)
    payment_method_attach(customer=card_customer, payment_method=card(stripe_api))
    client = as_user(card_customer, "admin")
    for data in (
        {"action": "default", "payment_method": theirs},
        {"action": "remove", "payment_method": theirs},
        {"action": "remove", "payment_method": theirs, "confirm": "yes"},
    ):
        assert client.post("/portal/payment-methods/", data).status_code == 404
    assert stripe_api.v1.payment_methods.retrieve(theirs).customer is not None


def test_add_opens_checkout_in_setup_mode(
    as_user: Callable[..., Client], card_customer: Customer, stripe_api: stripe.StripeClient, localstripe_url: str
) -> None:
    response = as_user(card_customer, "admin").post("/portal/payment-methods/", {"action": "add"})
    assert response.status_code == 302
    assert response["Location"].startswith(localstripe_url + "/checkout/cs_test_")
    session = stripe_api.v1.checkout.sessions.retrieve(response["Location"].rsplit("/", 1)[1])
    assert (session.mode, session.payment_method_types) == ("setup", ["card", "sepa_debit"])
    assert session.success_url == "http://testserver/portal/payment-methods/?added=1"


def test_stripe_refusing_the_keys_is_a_message_not_an_error(
    as_user: Callable[..., Client], card_customer: Customer, stripe_api: stripe.StripeClient
) -> None:
    PaymentSettings.objects.filter(tenant=card_customer.tenant).update(stripe_secret_key="sk_")
    invoice = _invoice(card_customer)
    client = as_user(card_customer, "admin")
    followed = client.post(_pay_url(invoice), {"action": "card"}, follow=True)
    assert followed.status_code == 200
    assert "Card payment is not possible right now. Try again later, or pay by bank transfer." in _text(followed)


def test_the_pages_read_in_french(
    portal_client: ClientMaker, make_portal_user: Callable[..., Any], card_customer: Customer
) -> None:
    # Dupont reads French (its language; the user has none of its own)
    _acme_account(card_customer.tenant)
    invoice = _invoice(card_customer)
    client = portal_client(card_customer, user=make_portal_user(card_customer, role="billing"))
    page = _text(client.get(_pay_url(invoice)))
    assert "Payer par carte</button>" in page
    assert "Payer par virement" in page
    assert "120,00" in page
    assert "Ajouter une carte ou un mandat SEPA" in _text(client.get("/portal/payment-methods/"))
