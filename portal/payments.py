"""The portal's payment pages (specs/portal.md, "Invoices" and "Payment methods"): pay an invoice on
Stripe Checkout, with the saved card or by transfer; list, choose, remove and add payment methods.

Views only: every rule is in payments.checkout (the services the API would call). Admin and billing
users pay and manage methods; a viewer sees the same pages without the buttons."""

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from billing_platform.errors import DomainError
from invoicing.models import Invoice, InvoiceKind, InvoicePaymentStatus, InvoiceStatus
from invoicing.selectors import invoice_list
from payments.charging import AttemptOutcomeUnknown
from payments.checkout import (
    checkout_origins,
    checkout_session_for_invoice,
    checkout_session_for_setup,
    default_payment_method_summary,
    invoice_pay_with_saved_card,
    invoice_payable_check,
    invoice_payment_in_progress,
    payment_method_default_set,
    payment_method_remove,
    payment_methods_list,
)
from payments.gateway import stripe_configured
from payments.gateway_errors import (
    AttemptInProgress,
    NothingToCharge,
    PaymentMethodMissing,
    PaymentMethodNotFound,
    StripeNotConfigured,
)
from payments.models import AttemptStatus
from payments.selectors import bank_details_for_invoice
from portal.access import current_portal, portal_actor, portal_view


def _may_pay(request: HttpRequest) -> bool:
    """Admins and billing users pay and manage payment methods; a viewer reads."""
    return current_portal(request).can_pay


def _customer_message(exc: DomainError) -> str:
    """What the customer reads when a payment step is refused: no tenant settings, no Stripe
    jargon; the other ways to pay stay open."""
    if isinstance(exc, StripeNotConfigured):
        return _("Card payment is not available. You can pay by bank transfer.")
    if isinstance(exc, NothingToCharge):
        return _("This invoice has nothing left to pay.")
    if isinstance(exc, AttemptInProgress | AttemptOutcomeUnknown):
        return _("A payment of this invoice is already in progress. Check again in a few minutes.")
    if isinstance(exc, PaymentMethodMissing):
        return _("No card is saved to pay with. Pay by card instead.")
    return _("Card payment is not possible right now. Try again later, or pay by bank transfer.")


def _leading_to_checkout(response: HttpResponse) -> HttpResponse:
    """The page's forms answer with a redirect to Stripe Checkout: the Content-Security-Policy's
    ``form-action`` (``'self'`` everywhere else) lets the browser follow it there."""
    response._csp_update = {"form-action": checkout_origins()}  # type: ignore[attr-defined]  # as csp_update does
    return response


def _invoice(request: HttpRequest, pk: Any) -> Invoice:
    """One of the customer's own issued invoices; anything else (another customer's, a draft, a
    credit note) is not found."""
    portal = current_portal(request)
    invoice = (
        invoice_list(tenant=portal.tenant)
        .filter(customer=portal.customer, kind=InvoiceKind.INVOICE, pk=pk)
        .exclude(status=InvoiceStatus.DRAFT)
        .first()
    )
    if invoice is None:
        raise Http404
    return invoice


def _pay_url(request: HttpRequest, invoice: Invoice, **query: str) -> str:
    url = request.build_absolute_uri(reverse("portal:invoice-pay", args=[invoice.pk]))
    return url + ("?" + "&".join("%s=%s" % item for item in query.items()) if query else "")


def _payable(invoice: Invoice) -> bool:
    try:
        invoice_payable_check(invoice)
    except NothingToCharge:
        return False
    return True


@portal_view()
def invoice_pay(request: HttpRequest, pk: Any) -> HttpResponse:
    """GET: what is due and the ways to pay it. POST (admin, billing): ``action=card`` opens Stripe
    Checkout; ``action=saved_card`` charges the default card now."""
    invoice = _invoice(request, pk)
    if request.method == "POST":
        if not _may_pay(request):
            raise PermissionDenied
        return _invoice_pay_post(request, invoice)
    portal = current_portal(request)
    paid = invoice.payment_status == InvoicePaymentStatus.PAID
    card_available = stripe_configured(tenant=portal.tenant)
    context = {
        "invoice": invoice,
        "paid": paid,
        # Back from Checkout before Stripe's event recorded the money, or a charge under way.
        "processing": not paid and (request.GET.get("returned") == "1" or invoice_payment_in_progress(invoice=invoice)),
        "payable": _payable(invoice),
        "may_pay": _may_pay(request),
        "card_available": card_available,
        "saved_card": default_payment_method_summary(customer=portal.customer) if card_available else None,
        "bank": bank_details_for_invoice(tenant=portal.tenant, invoice=invoice),
    }
    return _leading_to_checkout(render(request, "portal/payments/invoice_pay.html", context))


def _invoice_pay_post(request: HttpRequest, invoice: Invoice) -> HttpResponse:
    action = request.POST.get("action")
    try:
        if action == "card":
            url = checkout_session_for_invoice(
                invoice=invoice,
                success_url=_pay_url(request, invoice, returned="1"),
                cancel_url=_pay_url(request, invoice),
                at=timezone.now(),
            )
            return redirect(url)
        if action == "saved_card":
            attempt = invoice_pay_with_saved_card(invoice=invoice, actor=portal_actor(request), at=timezone.now())
        else:
            messages.error(request, _("Choose a way to pay."))
            return redirect(_pay_url(request, invoice))
    except DomainError as exc:
        messages.error(request, _customer_message(exc))
        return redirect(_pay_url(request, invoice))
    if attempt.status == AttemptStatus.SUCCEEDED:
        messages.success(request, _("Payment received. Thank you."))
    elif attempt.status == AttemptStatus.FAILED:
        messages.error(request, _("Your card was declined: nothing was charged. Pay with another card."))
    return redirect(_pay_url(request, invoice))


@portal_view()
def payment_methods(request: HttpRequest) -> HttpResponse:
    """GET: the saved cards and SEPA mandates. POST (admin, billing): ``action=add`` opens Stripe
    Checkout in setup mode; ``default`` and ``remove`` (asked to confirm first) with ``payment_method``."""
    portal = current_portal(request)
    confirm_remove = None
    if request.method == "POST":
        if not _may_pay(request):
            raise PermissionDenied
        action, method = request.POST.get("action"), request.POST.get("payment_method", "")
        here = request.build_absolute_uri(reverse("portal:payment-methods"))
        try:
            if action == "add":
                return redirect(
                    checkout_session_for_setup(customer=portal.customer, success_url=here + "?added=1", cancel_url=here)
                )
            if action == "default":
                payment_method_default_set(
                    customer=portal.customer, payment_method=method, actor=portal_actor(request), at=timezone.now()
                )
                messages.success(request, _("Default payment method changed."))
                return redirect(here)
            if action == "remove" and request.POST.get("confirm") == "yes":
                payment_method_remove(
                    customer=portal.customer, payment_method=method, actor=portal_actor(request), at=timezone.now()
                )
                messages.success(request, _("Payment method removed."))
                return redirect(here)
            if action != "remove":
                messages.error(request, _("Choose what to do."))
                return redirect(here)
            confirm_remove = method  # shown below, with its details, to confirm
        except PaymentMethodNotFound as exc:
            raise Http404 from exc
        except DomainError as exc:
            messages.error(request, _customer_message(exc))
            return redirect(here)
    return _payment_methods_page(request, confirm_remove=confirm_remove)


def _payment_methods_page(request: HttpRequest, *, confirm_remove: str | None) -> HttpResponse:
    portal = current_portal(request)
    card_available = stripe_configured(tenant=portal.tenant)
    methods, unavailable = [], False
    if card_available:
        try:
            methods = payment_methods_list(customer=portal.customer)
        except DomainError:
            unavailable = True
    confirming = next((m for m in methods if m.id == confirm_remove), None)
    if confirm_remove is not None and confirming is None and not unavailable:
        raise Http404  # not one of the customer's methods
    context = {
        "methods": methods,
        "card_available": card_available,
        "unavailable": unavailable,
        "may_manage": _may_pay(request),
        "confirming": confirming,
        "added": request.GET.get("added") == "1",
    }
    return _leading_to_checkout(render(request, "portal/payments/payment_methods.html", context))
