"""A partner's orders (specs/partners.md): a subscription for one of its customers, on a plan the
tenant offers to partners (``partner_visible``) and prices in the customer's currency, with a number
of device slots and where to ship the devices. It is the shop's order
(``invoicing.services.orders.order_place_and_invoice``, channel ``partner``): the subscription is
signed, ``order.created`` announced, and what is due at signature invoiced at once. At shipment the
partner binds each device's id to a slot (``subscriptions.orders.slot_bind``, the service of
``POST /api/v1/subscriptions/{id}/devices/{slot}/bind``)."""

import re
import uuid
from typing import Any
from uuid import UUID

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponseBase
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing_platform.errors import DomainError
from catalog.models import Plan
from catalog.selectors import plan_list_partner_visible
from invoicing.services.orders import order_place_and_invoice
from partners.dashboard.access import current_partner, partner_render, partner_view
from partners.dashboard.fleet import partner_customer_get, partner_subscription_get
from subscriptions.models import Device, SubscriptionStatus
from subscriptions.orders import MAX_QUANTITY, slot_bind

ADDRESS = ("name", "line1", "line2", "postal_code", "city", "country")


class OrderForm(forms.Form):
    plan = forms.ChoiceField(label=gettext_lazy("Plan"))
    quantity = forms.IntegerField(
        label=gettext_lazy("Number of devices"), min_value=1, max_value=MAX_QUANTITY, initial=1
    )
    name = forms.CharField(label=gettext_lazy("Ship to (name)"), max_length=200)
    line1 = forms.CharField(label=gettext_lazy("Address line 1"), max_length=200)
    line2 = forms.CharField(label=gettext_lazy("Address line 2"), max_length=200, required=False)
    postal_code = forms.CharField(label=gettext_lazy("Postal code"), max_length=16)
    city = forms.CharField(label=gettext_lazy("City"), max_length=100)
    country = forms.CharField(
        label=gettext_lazy("Country"), max_length=2, min_length=2, help_text=gettext_lazy("Two letters, e.g. FR")
    )
    request_key = forms.CharField(max_length=32, required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, plans: list[Plan], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.plans = {p.code: p for p in plans}
        self.fields["plan"].choices = [(p.code, p.name) for p in plans]  # type: ignore[attr-defined]

    def apply_domain_errors(self, exc: DomainError) -> None:
        for error in exc.errors:
            name = error.field.removeprefix("shipping_address.")
            self.add_error(name if name in self.fields else None, error.message)
        if not exc.errors:
            self.add_error(None, exc.detail)


@partner_view()
def subscribe(request: HttpRequest, external_id: str) -> HttpResponseBase:
    """A new subscription (an order) for the partner's customer."""
    ctx = current_partner(request)
    customer = partner_customer_get(ctx, external_id)
    plans = list(plan_list_partner_visible(tenant=ctx.tenant, currency=customer.currency).order_by("name", "code"))
    initial = {
        "quantity": 1,
        "name": customer.name,
        "line1": customer.address_line1,
        "line2": customer.address_line2,
        "postal_code": customer.postal_code,
        "city": customer.city,
        "country": customer.country,
        # Names this form: sending it twice (a double click, a reload) places one order.
        "request_key": uuid.uuid4().hex,
    }
    form = OrderForm(request.POST or None, initial=initial, plans=plans)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        key = data["request_key"] if re.fullmatch(r"[0-9a-f]{32}", data["request_key"] or "") else ""
        try:
            order, invoice = order_place_and_invoice(
                customer=customer,
                plan=form.plans[data["plan"]],
                quantity=data["quantity"],
                shipping_address={name: data[name] for name in ADDRESS},
                actor=ctx.actor,
                at=timezone.now(),
                request_key=key,
                channel="partner",
            )
        except DomainError as exc:
            form.apply_domain_errors(exc)
        else:
            if invoice is not None:
                text = _("Order %(number)s is placed; invoice %(invoice)s is issued for what is due at signature.") % {
                    "number": order.number,
                    "invoice": invoice.number,
                }
            else:
                text = _("Order %(number)s is placed.") % {"number": order.number}
            messages.success(request, text)
            return redirect("partners:customer", customer.external_id)
    context = {"customer": customer, "form": form, "plans": plans}
    status = 400 if form.errors else 200
    return partner_render(request, "partners/dashboard/orders/subscribe.html", context, status=status)


class BindForm(forms.Form):
    device_id = forms.CharField(label=gettext_lazy("Device id"), max_length=200)
    device_type = forms.CharField(label=gettext_lazy("Device type"), max_length=100, required=False)
    region = forms.CharField(label=gettext_lazy("Region"), max_length=100, required=False)


@partner_view()
def bind(request: HttpRequest, external_id: str, slot_id: UUID) -> HttpResponseBase:
    """Bind a shipped device's id to a slot of a subscription of the partner's customer."""
    ctx = current_partner(request)
    subscription = partner_subscription_get(ctx, external_id)
    slot = Device.objects.filter(
        tenant=ctx.tenant, subscription=subscription, pk=slot_id, removed_at__isnull=True, device_id=""
    ).first()
    if slot is None or subscription.status not in SubscriptionStatus.LIVE:
        raise Http404("No such slot.")
    form = BindForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            slot_bind(
                tenant=ctx.tenant,
                subscription=subscription,
                slot_id=slot.pk,
                device_id=data["device_id"],
                device_type=data["device_type"] or None,
                region=data["region"] or None,
                actor=ctx.actor,
                at=timezone.now(),
            )
        except DomainError as exc:
            for error in exc.errors:
                form.add_error(error.field if error.field in form.fields else None, error.message)
            if not exc.errors:
                form.add_error(None, exc.detail)
        else:
            messages.success(request, _("Device %(device)s is bound.") % {"device": data["device_id"].strip()})
            return redirect("partners:customer", subscription.customer.external_id)
    context = {"subscription": subscription, "customer": subscription.customer, "slot": slot, "form": form}
    return partner_render(request, "partners/dashboard/orders/bind.html", context, status=400 if form.errors else 200)
