"""What a customer does with its own money in the portal: pay an invoice on Stripe Checkout or with
its saved card, and add (Checkout in setup mode), choose and remove the payment methods Stripe keeps
for it (specs/portal.md, "Invoices" and "Payment methods"; specs/payments.md, "Stripe").

Checkout only opens a session at Stripe. The money is recorded when Stripe's signed
``checkout.session.completed`` (or ``payment_intent.succeeded``) comes back to the webhook
(payments.stripe_webhooks), never from the customer's browser coming back to ``success_url``."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import stripe
from django.conf import settings
from django.db import transaction
from stripe.params.checkout import SessionCreateParams

from billing_platform.money import round_minor
from customers.models import Customer
from invoicing.models import Invoice, InvoiceKind, InvoicePaymentStatus, InvoiceStatus
from payments.charging import invoice_charge
from payments.gateway import (
    _summary,
    gateway_customer_ensure,
    stripe_client,
    stripe_configured,
    stripe_problem,
    to_minor_units,
)
from payments.gateway_errors import (
    AttemptInProgress,
    NothingToCharge,
    PaymentMethodMissing,
    PaymentMethodNotFound,
    StripeNotConfigured,
)
from payments.models import AttemptStatus, GatewayCustomer, PaymentAttempt
from tenancy.actors import Actor

# The trigger of attempts a customer starts from the portal (PaymentAttempt.trigger).
PORTAL_TRIGGER = "portal"
NOT_CONFIGURED = "Card payment is not available: the seller has not connected a Stripe account."
# Where Stripe Checkout's pages are: a page whose form leads there must allow it (its
# Content-Security-Policy's form-action), or the browser stops the redirect.
CHECKOUT_ORIGIN = "https://checkout.stripe.com"
# SEPA direct debit is for euro accounts only; a card works in every currency.
SEPA_CURRENCIES = frozenset({"EUR"})


@dataclass(frozen=True)
class SavedPaymentMethod:
    """A payment method Stripe keeps for the customer, as the portal lists it. Card or SEPA
    mandate: Stripe returns the last 4 digits (of the card, or of the IBAN), never the number."""

    id: str
    type: str  # "card" or "sepa_debit"
    brand: str  # "visa"; "" for a SEPA mandate
    last4: str
    exp_month: int | None
    exp_year: int | None
    is_default: bool


def invoice_payable_check(invoice: Invoice) -> None:
    """An invoice the customer can pay now: a finalized invoice (not a credit note, a draft or a
    void one) still owing something. Raises ``NothingToCharge`` (409) otherwise."""
    if invoice.kind != InvoiceKind.INVOICE or invoice.status != InvoiceStatus.FINALIZED:
        raise NothingToCharge("Only a finalized invoice can be paid; this one is %s." % invoice.status)
    if invoice.payment_status not in (InvoicePaymentStatus.UNPAID, InvoicePaymentStatus.PARTIALLY_PAID):
        raise NothingToCharge("This invoice is %s: there is nothing to pay." % invoice.payment_status)
    if invoice.amount_due.amount <= 0:
        raise NothingToCharge("Nothing is due on this invoice.")


def checkout_origins() -> list[str]:
    """The origins Checkout pages come from: Stripe's, and the Stripe stand-in's when
    ``STRIPE_API_BASE`` points elsewhere (tests, development)."""
    origins = [CHECKOUT_ORIGIN]
    if settings.STRIPE_API_BASE:
        parts = urlsplit(settings.STRIPE_API_BASE)
        origins.append("%s://%s" % (parts.scheme, parts.netloc))
    return origins


def _client_for(customer: Customer) -> stripe.StripeClient:
    if not stripe_configured(tenant=customer.tenant):
        raise StripeNotConfigured(NOT_CONFIGURED)
    return stripe_client(tenant=customer.tenant)


def checkout_session_for_invoice(*, invoice: Invoice, success_url: str, cancel_url: str, at: datetime) -> str:
    """The address of a Stripe Checkout page (payment mode) that takes what ``invoice`` still owes,
    in its currency and minor units (308.57 EUR due -> ``amount`` 30857).

    The invoice id is in the metadata of the session and of its PaymentIntent: the webhook records
    the payment against it. The idempotency key is the invoice and the amount due, so that a double
    click opens the same session, while a new amount (a transfer recorded meanwhile) opens a new one.
    Refused while a charge of the invoice is under way (a saved card's attempt, a SEPA debit for
    days, the automatic charge of a just-finalized invoice): both could succeed."""
    invoice_payable_check(invoice)
    if invoice_payment_in_progress(invoice=invoice):
        raise AttemptInProgress("A payment of this invoice is already under way: its result comes shortly.")
    customer = invoice.customer
    client = _client_for(customer)
    gateway_customer = gateway_customer_ensure(customer=customer, client=client)
    amount = to_minor_units(invoice.amount_due)
    currency = invoice.currency.lower()
    metadata = {"invoice_id": str(invoice.pk), "invoice_number": invoice.number, "tenant": customer.tenant.slug}
    params: SessionCreateParams = {
        "mode": "payment",
        "customer": gateway_customer.gateway_customer_id,
        "allowed_payment_method_types": ["card"],
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": currency,
                    "unit_amount": amount,
                    "product_data": {"name": "Invoice %s" % invoice.number},
                },
            }
        ],
        "metadata": metadata,
        "payment_intent_data": {"metadata": metadata},
        "success_url": success_url,
        "cancel_url": cancel_url,
    }
    try:
        session = client.v1.checkout.sessions.create(
            params=params, options={"idempotency_key": "checkout:%s:%s:%d" % (invoice.pk, currency, amount)}
        )
    except stripe.StripeError as exc:
        raise stripe_problem(exc, "open the payment page") from exc
    return str(session.url)


def checkout_session_for_setup(*, customer: Customer, success_url: str, cancel_url: str) -> str:
    """The address of a Stripe Checkout page (setup mode) where the customer saves a card, or a
    SEPA direct debit mandate when it is billed in euros. Stripe's ``checkout.session.completed``
    then makes it the default payment method (payments.stripe_webhooks)."""
    client = _client_for(customer)
    gateway_customer = gateway_customer_ensure(customer=customer, client=client)
    params: SessionCreateParams = {
        "mode": "setup",
        "customer": gateway_customer.gateway_customer_id,
        "currency": customer.currency.lower(),
        "allowed_payment_method_types": ["card", "sepa_debit"]
        if customer.currency.upper() in SEPA_CURRENCIES
        else ["card"],
        "metadata": {"tenant": customer.tenant.slug, "tripod_customer": customer.external_id},
        "success_url": success_url,
        "cancel_url": cancel_url,
    }
    try:
        session = client.v1.checkout.sessions.create(params=params)
    except stripe.StripeError as exc:
        raise stripe_problem(exc, "open the page to add a payment method") from exc
    return str(session.url)


def _saved(method: dict[str, Any], default: str) -> SavedPaymentMethod:
    card = method.get("card") or {}
    sepa = method.get("sepa_debit") or {}
    return SavedPaymentMethod(
        id=str(method["id"]),
        type=str(method.get("type") or ""),
        brand=str(card.get("brand") or ""),
        last4=str(card.get("last4") or sepa.get("last4") or ""),
        exp_month=card.get("exp_month"),
        exp_year=card.get("exp_year"),
        is_default=method["id"] == default,
    )


def default_payment_method_summary(*, customer: Customer) -> str | None:
    """How the method Tripod charges off-session reads ("visa •••• 4242", "sepa_debit" for a
    mandate), from Tripod's own record: no call to Stripe. None when the customer has none."""
    found = GatewayCustomer.objects.filter(customer=customer).values_list(
        "default_payment_method", "payment_method_summary"
    )
    row = found.first()
    if row is None or not row[0]:
        return None
    return row[1] or row[0]


def invoice_payment_in_progress(*, invoice: Invoice) -> bool:
    """A charge of ``invoice`` is under way: an attempt created or processing at Stripe (a SEPA
    debit takes days), whose outcome comes by Stripe's event."""
    return PaymentAttempt.objects.filter(
        invoice=invoice, status__in=(AttemptStatus.CREATED, AttemptStatus.PROCESSING)
    ).exists()


def payment_methods_list(*, customer: Customer) -> list[SavedPaymentMethod]:
    """The cards and SEPA mandates Stripe keeps for the customer, the default one first (the one
    Tripod charges off-session). None before the customer has a Stripe customer."""
    gateway_customer = GatewayCustomer.objects.filter(customer=customer).first()
    if gateway_customer is None:
        return []
    client = _client_for(customer)
    try:
        listed = client.v1.payment_methods.list(params={"customer": gateway_customer.gateway_customer_id, "limit": 100})
        methods = [_saved(m.to_dict(), gateway_customer.default_payment_method) for m in listed.auto_paging_iter()]
    except stripe.StripeError as exc:
        raise stripe_problem(exc, "list the payment methods") from exc
    return sorted(methods, key=lambda m: not m.is_default)


def _owned_method(
    client: stripe.StripeClient, gateway_customer: GatewayCustomer | None, payment_method: str
) -> stripe.PaymentMethod:
    """``payment_method`` when Stripe has it attached to this customer; any other id (another
    customer's card, a made-up one) is not found, so that no one reaches a card not theirs."""
    if gateway_customer is None or not payment_method.startswith("pm_"):
        raise PaymentMethodNotFound("No such payment method.")
    try:
        method = client.v1.payment_methods.retrieve(payment_method)
    except stripe.InvalidRequestError as exc:
        raise PaymentMethodNotFound("No such payment method.") from exc
    except stripe.StripeError as exc:
        raise stripe_problem(exc, "find the payment method") from exc
    if getattr(method, "customer", None) != gateway_customer.gateway_customer_id:
        raise PaymentMethodNotFound("No such payment method.")
    return method


def payment_method_default_set(
    *, customer: Customer, payment_method: str, actor: Actor, at: datetime
) -> GatewayCustomer:
    """Make one of the customer's saved methods the one charged off-session, at Stripe
    (``invoice_settings.default_payment_method``) and in Tripod. Audited."""
    from tenancy.services import audit_record

    client = _client_for(customer)
    gateway_customer = GatewayCustomer.objects.filter(customer=customer).first()
    method = _owned_method(client, gateway_customer, payment_method)
    assert gateway_customer is not None  # _owned_method found the method attached to it
    before = gateway_customer.default_payment_method
    try:
        client.v1.customers.update(
            gateway_customer.gateway_customer_id, params={"invoice_settings": {"default_payment_method": method.id}}
        )
    except stripe.StripeError as exc:
        raise stripe_problem(exc, "change the default payment method") from exc
    with transaction.atomic():
        gateway_customer.default_payment_method = method.id
        gateway_customer.payment_method_summary = _summary(method)[:100]
        gateway_customer.save(update_fields=["default_payment_method", "payment_method_summary"])
        audit_record(
            tenant=customer.tenant,
            actor=actor,
            action="customer.payment_method_default_set",
            object_type="customer",
            object_id=str(customer.pk),
            at=at,
            before={"default_payment_method": before},
            after={"default_payment_method": method.id},
        )
    return gateway_customer


def payment_method_remove(*, customer: Customer, payment_method: str, actor: Actor, at: datetime) -> None:
    """Detach one of the customer's saved methods at Stripe. Removing the default leaves the
    customer with none (nothing is charged off-session until one is chosen), never with another
    card it did not pick. Audited."""
    from tenancy.services import audit_record

    client = _client_for(customer)
    gateway_customer = GatewayCustomer.objects.filter(customer=customer).first()
    method = _owned_method(client, gateway_customer, payment_method)
    assert gateway_customer is not None
    was_default = gateway_customer.default_payment_method == method.id
    try:
        if was_default:
            client.v1.customers.update(
                gateway_customer.gateway_customer_id, params={"invoice_settings": {"default_payment_method": ""}}
            )
        client.v1.payment_methods.detach(method.id)
    except stripe.StripeError as exc:
        raise stripe_problem(exc, "remove the payment method") from exc
    with transaction.atomic():
        if was_default:
            gateway_customer.default_payment_method = ""
            gateway_customer.payment_method_summary = ""
            gateway_customer.save(update_fields=["default_payment_method", "payment_method_summary"])
        audit_record(
            tenant=customer.tenant,
            actor=actor,
            action="customer.payment_method_removed",
            object_type="customer",
            object_id=str(customer.pk),
            at=at,
            before={"payment_method": method.id, "default": was_default},
        )


def invoice_pay_with_saved_card(*, invoice: Invoice, actor: Actor, at: datetime) -> PaymentAttempt:
    """Charge what ``invoice`` still owes with the customer's default payment method, now: an
    attempt like any other (one open per invoice, reconciled before a new one; payments.charging),
    its trigger ``portal``. Audited with who asked."""
    from tenancy.services import audit_record

    invoice_payable_check(invoice)
    if not stripe_configured(tenant=invoice.tenant):
        raise StripeNotConfigured(NOT_CONFIGURED)
    gateway_customer = GatewayCustomer.objects.filter(customer_id=invoice.customer_id).first()
    if gateway_customer is None or not gateway_customer.default_payment_method:
        raise PaymentMethodMissing("No card is saved to pay with: pay by card on the payment page instead.")
    attempt = invoice_charge(invoice_id=invoice.pk, trigger=PORTAL_TRIGGER, at=at)
    audit_record(
        tenant=invoice.tenant,
        actor=actor,
        action="invoice.pay_with_saved_card",
        object_type="invoice",
        object_id=str(invoice.pk),
        at=at,
        after={
            "attempt": attempt.number,
            "amount": str(round_minor(attempt.amount.amount, attempt.currency)),
            "status": attempt.status,
        },
    )
    return attempt
