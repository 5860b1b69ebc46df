"""The partner's customers (specs/partners.md, "The partner dashboard"): the list with their active
devices, MRR and amount due; a new customer, assigned to the partner; a customer's page with its
subscriptions and their devices and slots."""

from decimal import Decimal
from functools import lru_cache
from typing import Any

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _

from billing_platform.errors import DomainError
from billing_platform.formatting import money_text
from customers.services import customer_create
from partners.dashboard.access import current_partner, partner_render, partner_view
from partners.dashboard.fleet import (
    ZERO,
    amounts_due,
    customer_figures,
    customer_page,
    partner_customer_get,
    partner_customers,
    subscriptions_of,
)
from subscriptions.models import SubscriptionStatus

PAGE_SIZE = 25


class CustomerForm(forms.Form):
    external_id = forms.CharField(
        label=gettext_lazy("Your reference for this customer"),
        max_length=100,
        help_text=gettext_lazy("Unique among the customers you bring, e.g. the customer's number in your own system."),
    )
    name = forms.CharField(label=gettext_lazy("Name"), max_length=200)
    email = forms.EmailField(label=gettext_lazy("Billing e-mail"), max_length=254)
    country = forms.CharField(
        label=gettext_lazy("Country"),
        max_length=2,
        help_text=gettext_lazy("Two letters, e.g. FR."),
        widget=forms.TextInput(attrs={"autocapitalize": "characters"}),
    )
    currency = forms.CharField(
        label=gettext_lazy("Currency"),
        max_length=3,
        required=False,
        help_text=gettext_lazy("Three letters, e.g. EUR; blank: the supplier's."),
    )
    language = forms.ChoiceField(label=gettext_lazy("Language"), choices=[("en", "English"), ("fr", "Français")])
    tax_id = forms.CharField(label=gettext_lazy("VAT number"), max_length=50, required=False)
    address_line1 = forms.CharField(label=gettext_lazy("Address"), max_length=200, required=False)
    postal_code = forms.CharField(label=gettext_lazy("Postal code"), max_length=16, required=False)
    city = forms.CharField(label=gettext_lazy("City"), max_length=100, required=False)


@partner_view()
def customer_list(request: HttpRequest) -> HttpResponse:
    """The partner's customers, 25 a page: the names, active devices and MRR from the cache of
    ``customer_page`` (exact: see there), the amounts due read afresh in one statement."""
    ctx = current_partner(request)
    language = get_language()
    listed = customer_page(
        ctx, number=(request.GET.get("page") or "1")[:20], page_size=PAGE_SIZE, at=timezone.now(), language=language
    )
    page = Paginator(range(listed.count), PAGE_SIZE).get_page(listed.number)
    due = amounts_due(ctx, [r.pk for r in listed.rows])
    rows = [(r, _money(due.get((r.pk, r.currency)) or ZERO, r.currency, language)) for r in listed.rows]
    return partner_render(request, "partners/dashboard/customers/list.html", {"page": page, "rows": rows})


@lru_cache(maxsize=4096)
def _money(amount: Decimal, currency: str, language: str) -> str:
    """An amount due as the page shows it; the same few amounts come back on every request."""
    return money_text(amount, currency=currency, language=language)


@partner_view()
def customer_new(request: HttpRequest) -> HttpResponseBase:
    ctx = current_partner(request)
    form = CustomerForm(
        request.POST or None, initial={"language": ctx.partner.language, "country": ctx.partner.country}
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            customer = customer_create(
                tenant=ctx.tenant,
                actor=ctx.actor,
                at=timezone.now(),
                external_id=data["external_id"].strip(),
                name=data["name"],
                email=data["email"],
                country=data["country"].strip().upper(),
                currency=data["currency"].strip().upper() or None,
                language=data["language"],
                tax_id=data["tax_id"],
                address_line1=data["address_line1"],
                postal_code=data["postal_code"],
                city=data["city"],
                partner=ctx.partner,
            )
        except DomainError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, _("Customer %(name)s created.") % {"name": customer.name})
            return redirect("partners:customer", customer.external_id)
    status = 400 if form.errors else 200
    return partner_render(request, "partners/dashboard/customers/new.html", {"form": form}, status=status)


def _form_errors(form: forms.Form, exc: DomainError) -> None:
    """A service's field errors on the form's fields (the others above the form)."""
    if not exc.errors:
        form.add_error(None, exc.detail)
    for error in exc.errors:
        field = error.field.split(".")[-1] if error.field else None
        form.add_error(field if field in form.fields else None, error.message)


@partner_view()
def customer_detail(request: HttpRequest, external_id: str) -> HttpResponse:
    ctx = current_partner(request)
    if external_id == "new" and not partner_customers(ctx).filter(external_id=external_id).exists():
        return redirect("partners:customer-new")  # the form's earlier address
    customer = partner_customer_get(ctx, external_id)
    now = timezone.now()
    subscriptions = subscriptions_of(ctx, [customer])
    figures = customer_figures(ctx, [customer], now)[customer.pk]
    rows: list[dict[str, Any]] = [
        {"subscription": s, "devices": [d for d in s.devices.all() if d.removed_at is None]} for s in subscriptions
    ]
    context = {"customer": customer, "figures": figures, "subscriptions": rows, "live": SubscriptionStatus.LIVE}
    return partner_render(request, "partners/dashboard/customers/detail.html", context)
