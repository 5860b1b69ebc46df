"""Paying from the portal and the customer's payment methods, against localstripe and the Checkout
stand-in (payments/tests/localstripe_server.py): sessions for an invoice's amount due and for saving
a method, the saved methods listed, made default and removed, the saved card charged, and the
transfer details."""

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
import stripe
from django.utils import timezone
from djmoney.money import Money

from customers.models import Customer
from customers.tests.factories import dupont
from invoicing.models import Invoice, InvoicePaymentStatus, InvoiceStatus
from invoicing.tests.factories import ACTOR, issue, line
from payments import checkout
from payments.gateway_errors import (
    NothingToCharge,
    PaymentMethodMissing,
    PaymentMethodNotFound,
    StripeKeysInvalid,
    StripeNotConfigured,
    StripeUnavailable,
)
from payments.models import AttemptStatus, GatewayCustomer, PaymentSettings
from payments.selectors import bank_details_for_invoice
from payments.tests.conftest import DECLINED, VISA, card
from tenancy.models import AuditLogEntry, Tenant

pytestmark = pytest.mark.django_db

BACK = {
    "success_url": "https://portal.example/paid?session={CHECKOUT_SESSION_ID}",
    "cancel_url": "https://portal.example/",
}


def _session_of(stripe_api: stripe.StripeClient, url: str) -> dict[str, Any]:
    """The stand-in's session behind a Checkout URL (``…/checkout/cs_test_…``)."""
    return stripe_api.v1.checkout.sessions.retrieve(url.rsplit("/", 1)[1]).to_dict()


def _invoice(customer: Customer) -> Invoice:
    """100.00 + 20 % VAT = 120.00 EUR to ``customer``, finalized and unpaid."""
    invoice = issue(customer, [line("service", "fleet-plan", "100.00")])
    invoice.refresh_from_db()
    assert invoice.amount_due == Money("120.00", "EUR")
    return invoice


def test_a_checkout_session_takes_the_amount_due_in_cents_for_the_invoice(
    card_customer: Customer, stripe_api: stripe.StripeClient, localstripe_url: str
) -> None:
    # given: 120.00 EUR due
    invoice = _invoice(card_customer)
    # when
    url = checkout.checkout_session_for_invoice(invoice=invoice, at=timezone.now(), **BACK)
    # then: payment mode, 120.00 EUR = 12000 cents, Dupont's Stripe customer, the invoice named
    session = _session_of(stripe_api, url)
    assert url == "%s/checkout/%s" % (localstripe_url, session["id"])
    assert session["id"].startswith("cs_test_")
    assert session["mode"] == "payment"
    assert (session["amount_total"], session["currency"]) == (12000, "eur")
    assert session["customer"] == GatewayCustomer.objects.get(customer=card_customer).gateway_customer_id
    assert session["metadata"] == {
        "invoice_id": str(invoice.pk),
        "invoice_number": invoice.number,
        "tenant": "acme",
    }
    assert (session["success_url"], session["cancel_url"]) == (BACK["success_url"], BACK["cancel_url"])


def test_the_same_amount_due_opens_the_same_session_and_a_new_amount_a_new_one(card_customer: Customer) -> None:
    # given: 120.00 due, then a transfer of 20.00 leaves 100.00
    invoice = _invoice(card_customer)
    first = checkout.checkout_session_for_invoice(invoice=invoice, at=timezone.now(), **BACK)
    again = checkout.checkout_session_for_invoice(invoice=invoice, at=timezone.now(), **BACK)
    from payments.ledger import payment_record

    payment_record(
        customer=card_customer,
        amount=Money("20.00", "EUR"),
        method="bank_transfer",
        received_at=timezone.now(),
        actor=ACTOR,
        at=timezone.now(),
        invoice=invoice,
        reference="VIR-1",
    )
    invoice.refresh_from_db()
    assert invoice.amount_due == Money("100.00", "EUR")  # 120.00 - 20.00
    # when
    after = checkout.checkout_session_for_invoice(invoice=invoice, at=timezone.now(), **BACK)
    # then: the idempotency key is the invoice and its amount due
    assert again == first
    assert after != first


@pytest.mark.parametrize("state", ["paid", "void", "draft"])
def test_an_invoice_with_nothing_to_pay_is_refused(card_customer: Customer, state: str) -> None:
    invoice = issue(card_customer, [line("service", "fleet-plan", "100.00")], finalize=state != "draft")
    if state == "paid":
        Invoice.objects.filter(pk=invoice.pk).update(
            payment_status=InvoicePaymentStatus.PAID, amount_due=Decimal("0.00"), amount_paid=Decimal("120.00")
        )
    elif state == "void":
        Invoice.objects.filter(pk=invoice.pk).update(status=InvoiceStatus.VOID)
    invoice.refresh_from_db()
    with pytest.raises(NothingToCharge) as refused:
        checkout.checkout_session_for_invoice(invoice=invoice, at=timezone.now(), **BACK)
    assert refused.value.code == "nothing_to_charge"
    with pytest.raises(NothingToCharge):
        checkout.invoice_pay_with_saved_card(invoice=invoice, actor=ACTOR, at=timezone.now())
    assert not GatewayCustomer.objects.filter(customer=card_customer).exists()  # Stripe never asked


def test_without_stripe_keys_card_payment_is_not_available(tenant: Tenant, stripe_api: stripe.StripeClient) -> None:
    # given: Dupont's tenant has not connected Stripe
    from catalog.services import tax_rate_set

    tax_rate_set(tenant=tenant, actor=ACTOR, at=timezone.now(), country="FR", tax_category="standard", rate="20")
    customer = dupont(tenant)
    invoice = _invoice(customer)
    # when / then: a clear domain error (422), never a 500
    for call in (
        lambda: checkout.checkout_session_for_invoice(invoice=invoice, at=timezone.now(), **BACK),
        lambda: checkout.checkout_session_for_setup(customer=customer, **BACK),
        lambda: checkout.invoice_pay_with_saved_card(invoice=invoice, actor=ACTOR, at=timezone.now()),
    ):
        with pytest.raises(StripeNotConfigured) as refused:
            call()
        assert refused.value.status == 422
        assert (
            str(refused.value.detail) == "Card payment is not available: the seller has not connected a Stripe account."
        )
    assert checkout.payment_methods_list(customer=customer) == []


def test_stripe_out_of_reach_is_a_502(card_customer: Customer, settings: Any) -> None:
    invoice = _invoice(card_customer)
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # discard: nothing listens
    settings.STRIPE_TIMEOUT_SECONDS = 1
    with pytest.raises(StripeUnavailable) as failed:
        checkout.checkout_session_for_invoice(invoice=invoice, at=timezone.now(), **BACK)
    assert (failed.value.status, failed.value.code) == (502, "stripe_unavailable")


def test_setup_mode_offers_a_card_and_a_sepa_mandate_in_euros_and_a_card_only_otherwise(
    card_customer: Customer, stripe_api: stripe.StripeClient
) -> None:
    euro = _session_of(stripe_api, checkout.checkout_session_for_setup(customer=card_customer, **BACK))
    card_customer.currency = "GBP"
    card_customer.save(update_fields=["currency"])
    pounds = _session_of(stripe_api, checkout.checkout_session_for_setup(customer=card_customer, **BACK))
    assert (euro["mode"], euro["payment_method_types"], euro["currency"]) == ("setup", ["card", "sepa_debit"], "eur")
    assert (pounds["payment_method_types"], pounds["currency"]) == (["card"], "gbp")
    assert euro["amount_total"] is None


def _saved_two_cards(customer: Customer, stripe_api: stripe.StripeClient) -> tuple[str, str]:
    """Visa ····4242 saved first, then ····0341 made default (payment_method_attach, as the API and
    Checkout's setup mode do)."""
    from payments.gateway import payment_method_attach

    first, second = card(stripe_api, VISA), card(stripe_api, DECLINED)
    payment_method_attach(customer=customer, payment_method=first)
    payment_method_attach(customer=customer, payment_method=second)
    return first, second


def test_saved_methods_are_listed_default_first_then_the_default_changes_and_one_is_removed(
    card_customer: Customer, stripe_api: stripe.StripeClient
) -> None:
    # given
    visa, other = _saved_two_cards(card_customer, stripe_api)
    # when / then: listed from Stripe, the default (the last attached) first
    listed = checkout.payment_methods_list(customer=card_customer)
    assert [(m.id, m.type, m.brand, m.last4, m.exp_month, m.exp_year, m.is_default) for m in listed] == [
        (other, "card", "visa", "0341", 12, 2034, True),
        (visa, "card", "visa", "4242", 12, 2034, False),
    ]
    # when: ····4242 becomes the default
    checkout.payment_method_default_set(customer=card_customer, payment_method=visa, actor=ACTOR, at=timezone.now())
    # then: at Stripe and in Tripod (what is charged off-session)
    found = GatewayCustomer.objects.get(customer=card_customer)
    assert (found.default_payment_method, found.payment_method_summary) == (visa, "visa •••• 4242")
    stripe_customer = stripe_api.v1.customers.retrieve(found.gateway_customer_id)
    assert stripe_customer.to_dict()["invoice_settings"]["default_payment_method"] == visa
    assert [m.is_default for m in checkout.payment_methods_list(customer=card_customer)] == [True, False]
    # when: the default is removed
    checkout.payment_method_remove(customer=card_customer, payment_method=visa, actor=ACTOR, at=timezone.now())
    # then: detached, and no default any more (never another card the customer did not choose)
    found.refresh_from_db()
    assert (found.default_payment_method, found.payment_method_summary) == ("", "")
    assert [(m.id, m.is_default) for m in checkout.payment_methods_list(customer=card_customer)] == [(other, False)]
    assert stripe_api.v1.payment_methods.retrieve(visa).customer is None
    actions = list(
        AuditLogEntry.objects.filter(tenant=card_customer.tenant, action__startswith="customer.payment_method_")
        .order_by("at", "id")
        .values_list("action", flat=True)
    )
    assert actions == ["customer.payment_method_default_set", "customer.payment_method_removed"]


def test_removing_a_method_that_is_not_the_default_keeps_the_default(
    card_customer: Customer, stripe_api: stripe.StripeClient
) -> None:
    visa, other = _saved_two_cards(card_customer, stripe_api)
    checkout.payment_method_remove(customer=card_customer, payment_method=visa, actor=ACTOR, at=timezone.now())
    assert GatewayCustomer.objects.get(customer=card_customer).default_payment_method == other
    assert [m.id for m in checkout.payment_methods_list(customer=card_customer)] == [other]


def test_another_customers_card_is_not_found(
    card_customer: Customer, stripe_tenant: Tenant, stripe_api: stripe.StripeClient
) -> None:
    # given: Nordlog's card, and a card attached to nobody
    from payments.gateway import payment_method_attach

    nordlog = dupont(stripe_tenant, external_id="nordlog", name="Nordlog", email="ap@nordlog.example")
    theirs = card(stripe_api)
    payment_method_attach(customer=nordlog, payment_method=theirs)
    payment_method_attach(customer=card_customer, payment_method=card(stripe_api))
    loose = card(stripe_api)
    # when / then: Dupont can neither pick nor remove them
    for pm in (theirs, loose, "pm_does_not_exist", "card_1"):
        with pytest.raises(PaymentMethodNotFound):
            checkout.payment_method_default_set(
                customer=card_customer, payment_method=pm, actor=ACTOR, at=timezone.now()
            )
        with pytest.raises(PaymentMethodNotFound):
            checkout.payment_method_remove(customer=card_customer, payment_method=pm, actor=ACTOR, at=timezone.now())
    assert stripe_api.v1.payment_methods.retrieve(theirs).customer == (
        GatewayCustomer.objects.get(customer=nordlog).gateway_customer_id
    )


@pytest.mark.django_db(transaction=True)  # sent at once, as outside a request
def test_paying_with_the_saved_card_charges_the_amount_due_once(
    make_card_invoice: Callable[..., Invoice], stripe_api: stripe.StripeClient
) -> None:
    # given: 120.00 EUR due, Visa ····4242 saved as the default
    invoice = make_card_invoice(VISA)
    # when
    attempt = checkout.invoice_pay_with_saved_card(invoice=invoice, actor=ACTOR, at=timezone.now())
    # then: one attempt from the portal; 12000 cents taken; the invoice paid
    assert (attempt.number, attempt.trigger, attempt.status) == (1, "portal", AttemptStatus.SUCCEEDED)
    assert attempt.amount == Money("120.00", "EUR")
    assert stripe_api.v1.payment_intents.retrieve(attempt.gateway_id).amount == 12000
    invoice.refresh_from_db()
    assert (invoice.payment_status, invoice.amount_due) == (InvoicePaymentStatus.PAID, Money("0.00", "EUR"))
    with pytest.raises(NothingToCharge):
        checkout.invoice_pay_with_saved_card(invoice=invoice, actor=ACTOR, at=timezone.now())
    entry = AuditLogEntry.objects.get(tenant=invoice.tenant, action="invoice.pay_with_saved_card")
    assert entry.after == {"attempt": 1, "amount": "120.00", "status": "succeeded"}


@pytest.mark.django_db(transaction=True)  # sent at once, as outside a request
def test_a_declined_saved_card_leaves_the_invoice_unpaid(make_card_invoice: Callable[..., Invoice]) -> None:
    invoice = make_card_invoice(DECLINED)
    attempt = checkout.invoice_pay_with_saved_card(invoice=invoice, actor=ACTOR, at=timezone.now())
    assert (attempt.status, attempt.failure_code) == (AttemptStatus.FAILED, "card_declined")
    invoice.refresh_from_db()
    assert (invoice.payment_status, invoice.amount_due) == (InvoicePaymentStatus.UNPAID, Money("120.00", "EUR"))


def test_without_a_saved_card_the_saved_card_way_is_refused(card_customer: Customer) -> None:
    invoice = _invoice(card_customer)
    with pytest.raises(PaymentMethodMissing) as refused:
        checkout.invoice_pay_with_saved_card(invoice=invoice, actor=ACTOR, at=timezone.now())
    assert refused.value.code == "payment_method_missing"


def test_bank_details_name_the_sellers_account_and_the_invoice_number(card_customer: Customer) -> None:
    # given: Acme's account, typed as printed
    tenant = card_customer.tenant
    tenant.iban, tenant.bic, tenant.legal_name = "FR7630006000011234567890189", "AGRIFRPPXXX", "Acme Telematics SAS"
    tenant.save(update_fields=["iban", "bic", "legal_name"])
    invoice = _invoice(card_customer)
    # when
    details = bank_details_for_invoice(tenant=tenant, invoice=invoice)
    # then: the IBAN grouped by 4 (27 characters: 6 groups of 4 and 3), the number as the reference
    assert details is not None
    assert details.iban == "FR76 3000 6000 0112 3456 7890 189"
    assert (details.bic, details.beneficiary, details.reference) == (
        "AGRIFRPPXXX",
        "Acme Telematics SAS",
        invoice.number,
    )
    assert details.amount_due == Money("120.00", "EUR")
    # without an IBAN there is nowhere to send a transfer
    tenant.iban = tenant.bic = ""
    tenant.save(update_fields=["iban", "bic"])
    assert bank_details_for_invoice(tenant=tenant, invoice=invoice) is None


def test_stripe_refusing_the_keys_says_so(card_customer: Customer) -> None:
    # localstripe refuses a key that is not a secret one: as Stripe does a revoked key
    PaymentSettings.objects.filter(tenant=card_customer.tenant).update(stripe_secret_key="sk_")
    invoice = _invoice(card_customer)
    with pytest.raises(StripeKeysInvalid) as refused:
        checkout.checkout_session_for_invoice(invoice=invoice, at=timezone.now(), **BACK)
    assert (refused.value.status, refused.value.code) == (422, "stripe_keys_invalid")
