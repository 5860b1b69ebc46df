"""The portal's Shop (portal.md, "Shop"): the plans the tenant offers for self-service
(``self_service``), priced in the customer's currency and region; a form (plan, number of devices,
shipping address prefilled from the customer's address), a confirmation step showing what is
invoiced now and each period, then the order (``invoicing.services.orders.order_place_and_invoice``):
the subscription with its device slots, and the hardware invoice paid at once. Only admins and
billing users of the account may buy."""

import re
import uuid
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _

from billing_platform.errors import DomainError
from catalog.models import Plan
from catalog.quotes import Quote, price_quote
from catalog.selectors import plan_list
from customers.models import Customer
from invoicing.lines import line_description
from invoicing.models import Invoice
from invoicing.services.orders import order_place_and_invoice, order_preview
from portal.access import BILLING, current_portal, portal_actor, portal_view
from subscriptions.orders import MAX_QUANTITY

# The service's field paths -> the form's fields.
ADDRESS_PREFIX = "shipping_address."


@dataclass(frozen=True)
class Offer:
    """A plan of the shop, as one device of it costs this customer (the price calculator's lines)."""

    plan: Plan
    quote: Quote

    def lines_of(self, kind: str) -> list[dict[str, Any]]:
        """The quote's lines of ``kind``, each with its product's name (the line's own description
        is the API's, in English)."""
        names = {c.product.code: c.product.name for c in self.plan.components.all()}
        return [{"name": names.get(x.product, x.product), "line": x} for x in self.quote.lines if x.type == kind]

    @property
    def hardware(self) -> list[Any]:
        return self.lines_of("hardware")

    @property
    def services(self) -> list[Any]:
        return self.lines_of("service")

    @property
    def fees(self) -> list[Any]:
        return self.lines_of("fee")

    @property
    def usage(self) -> list[Any]:
        return self.lines_of("usage")


def shop_offers(customer: Customer, *, at: Any) -> list[Offer]:
    """The plans offered in the shop that have a price for ``customer`` (its currency and region)
    at ``at``: a plan it cannot be billed for is not shown."""
    offers = []
    for plan in plan_list(tenant=customer.tenant).filter(self_service=True):
        try:
            quote = price_quote(
                tenant=customer.tenant,
                plan=plan,
                currency=customer.currency,
                devices=1,
                usage=[],
                at=at,
                customer=customer,
            )
        except DomainError:
            continue
        offers.append(Offer(plan, quote))
    return offers


class ShopForm(forms.Form):
    plan = forms.ChoiceField(label=gettext_lazy("Plan"), widget=forms.RadioSelect)
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

    def __init__(self, *args: Any, offers: list[Offer], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.offers = {o.plan.code: o for o in offers}
        self.fields["plan"].choices = [(o.plan.code, o.plan.name) for o in offers]  # type: ignore[attr-defined]

    def apply_domain_errors(self, exc: DomainError) -> None:
        """The service's refusal on the form: each field error on its field (the address's by their
        own name), the rest above the form. The services check the text of the address too."""
        for error in exc.errors:
            name = error.field.removeprefix(ADDRESS_PREFIX)
            self.add_error(name if name in self.fields else None, error.message)
        if not exc.errors:
            self.add_error(None, exc.detail)

    @property
    def offer(self) -> Offer:
        return self.offers[self.cleaned_data["plan"]]

    def address(self) -> dict[str, str]:
        data = self.cleaned_data
        return {name: data[name] for name in ("name", "line1", "line2", "postal_code", "city", "country")}


def _initial(customer: Customer) -> dict[str, Any]:
    """The order form's first values: the customer's own postal address."""
    return {
        "quantity": 1,
        "name": customer.name,
        "line1": customer.address_line1,
        "line2": customer.address_line2,
        "postal_code": customer.postal_code,
        "city": customer.city,
        "country": customer.country,
    }


def _request_key(request: HttpRequest) -> str:
    """The confirmation's key, as the review step wrote it (32 hex digits); anything else is none."""
    key = request.POST.get("request_key", "")
    return key if re.fullmatch(r"[0-9a-f]{32}", key) else ""


def _after_order(invoice: Invoice | None) -> str:
    """Where the customer goes once the order is placed: paying the invoice made at once, or their
    plan when nothing was due; the first of those pages the portal has."""
    targets: list[tuple[str, list[Any]]] = []
    if invoice is not None:
        targets += [("portal:invoice-pay", [invoice.pk]), ("portal:invoice", [invoice.pk]), ("portal:invoices", [])]
    targets += [("portal:plan", []), ("portal:home", [])]
    for name, args in targets:
        try:
            return reverse(name, args=args)
        except NoReverseMatch:
            continue
    return reverse("portal:shop")


@portal_view(roles=BILLING)
def shop(request: HttpRequest) -> HttpResponseBase:
    portal = current_portal(request)
    customer = portal.customer
    now = timezone.now()
    offers = shop_offers(customer, at=now)
    if request.method != "POST":
        form = ShopForm(initial=_initial(customer), offers=offers)
        if len(offers) == 1:
            form.initial["plan"] = offers[0].plan.code
        return _shop_page(request, form, offers)
    form = ShopForm(request.POST, offers=offers)
    if not form.is_valid():
        return _shop_page(request, form, offers, status=400)
    plan, quantity = form.offer.plan, form.cleaned_data["quantity"]
    if request.POST.get("step") != "confirm":
        try:
            preview = order_preview(customer=customer, plan=plan, quantity=quantity, at=now)
        except DomainError as exc:
            form.apply_domain_errors(exc)
            return _shop_page(request, form, offers, status=400)
        language = get_language()
        rows = [(line_description(x.product_name, x.qualifiers, language=language), x) for x in preview.now_lines]
        names = {c.product.code: c.product.name for c in plan.components.all()}
        periods = [(names.get(x.product, x.product), x) for x in preview.period_lines]
        context = {
            # Names this confirmation: sending it twice (a double click, a reload) places one order.
            "request_key": uuid.uuid4().hex,
            "form": form,
            "offer": form.offer,
            "preview": preview,
            "now_rows": rows,
            "period_rows": periods,
            "address": form.address(),
        }
        return render(request, "portal/shop/confirm.html", context)
    try:
        order, invoice = order_place_and_invoice(
            customer=customer,
            plan=plan,
            quantity=quantity,
            shipping_address=form.address(),
            actor=portal_actor(request),
            at=now,
            request_key=_request_key(request),
        )
    except DomainError as exc:
        form.apply_domain_errors(exc)
        return _shop_page(request, form, offers, status=400)
    if invoice is not None:
        messages.success(
            request,
            _("Thank you: order %(number)s is placed. Invoice %(invoice)s is due now, for the hardware.")
            % {"number": order.number, "invoice": invoice.number},
        )
    else:
        messages.success(request, _("Thank you: order %(number)s is placed.") % {"number": order.number})
    return redirect(_after_order(invoice))


def _shop_page(request: HttpRequest, form: ShopForm, offers: list[Offer], status: int = 200) -> HttpResponse:
    return render(request, "portal/shop/shop.html", {"form": form, "offers": offers}, status=status)
