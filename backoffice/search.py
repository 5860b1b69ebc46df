"""The back-office's global search (``/app/search/?q=``): customers by name, external ID or e-mail,
invoices by number, devices by id, subscriptions by external ID, id or customer.

Every kind is read through its app's selector, with the staff member's tenant (and the row-level
security wall behind it), at most ``PER_KIND`` rows each: four queries whatever the tenant holds.
When the text names exactly one thing by its identifier (an invoice number, a device id, a
subscription's or a customer's external ID), the page goes straight to it.
"""

import uuid
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Case, Q, Value, When
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from backoffice.access import EVERYONE, current_tenant, staff_view
from backoffice.formatting import query_string
from backoffice.pages import clean_text
from customers.selectors import customer_list
from invoicing.selectors import invoice_search
from subscriptions.selectors import device_search, subscription_list
from tenancy.models import Tenant

# Rows shown per kind; the page links to the kind's own list for the rest.
PER_KIND = 10
# Longer text finds nothing more: identifiers and names are at most 200 characters.
MAX_LENGTH = 200


@dataclass
class Results:
    customers: list[Any] = field(default_factory=list)
    invoices: list[Any] = field(default_factory=list)
    devices: list[Any] = field(default_factory=list)
    subscriptions: list[Any] = field(default_factory=list)
    more: dict[str, bool] = field(default_factory=dict)
    # The page of each result that its identifier names exactly.
    exact: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.customers) + len(self.invoices) + len(self.devices) + len(self.subscriptions)


def _exact_first(field_name: str, text: str) -> Case:
    """0 for the row whose ``field_name`` is ``text`` (any case), so that it is never cut off."""
    return Case(When(**{f"{field_name}__iexact": text}, then=Value(0)), default=Value(1))


def _capped(rows: Any) -> tuple[list[Any], bool]:
    found = list(rows[: PER_KIND + 1])
    return found[:PER_KIND], len(found) > PER_KIND


def search_all(*, tenant: Tenant, text: str) -> Results:
    """What ``text`` finds in the tenant, ``PER_KIND`` rows per kind at most, with the exact hits."""
    results = Results()
    lowered = text.casefold()
    try:
        as_uuid: uuid.UUID | None = uuid.UUID(text)
    except ValueError:
        as_uuid = None

    results.customers, results.more["customers"] = _capped(
        customer_list(tenant=tenant, search=text)
        .annotate(exact=_exact_first("external_id", text))
        .order_by("exact", "name", "id")
    )
    results.exact += [
        reverse("backoffice:customer-detail", args=[c.external_id])
        for c in results.customers
        if c.external_id.casefold() == lowered
    ]

    invoices = invoice_search(tenant=tenant).filter(number__icontains=text)
    if as_uuid is not None:
        invoices = invoice_search(tenant=tenant).filter(Q(number__icontains=text) | Q(pk=as_uuid))
    results.invoices, results.more["invoices"] = _capped(
        invoices.annotate(exact=_exact_first("number", text)).order_by("exact", "-issue_date", "-created_at", "-id")
    )
    results.exact += [
        reverse("backoffice:invoice-detail", args=[i.pk])
        for i in results.invoices
        if i.number.casefold() == lowered or i.pk == as_uuid
    ]

    results.devices, results.more["devices"] = _capped(device_search(tenant=tenant, text=text))
    results.exact += [
        reverse("backoffice:subscription-detail", args=[d.subscription.external_id])
        for d in results.devices
        if d.device_id.casefold() == lowered
    ]

    subscriptions = subscription_list(tenant=tenant, search=text).prefetch_related(None)
    if as_uuid is not None:
        subscriptions = subscription_list(tenant=tenant).prefetch_related(None).filter(pk=as_uuid)
    results.subscriptions, results.more["subscriptions"] = _capped(
        subscriptions.annotate(exact=_exact_first("external_id", text)).order_by("exact", "-created_at", "external_id")
    )
    results.exact += [
        reverse("backoffice:subscription-detail", args=[s.external_id])
        for s in results.subscriptions
        if s.external_id.casefold() == lowered or s.pk == as_uuid
    ]
    return results


@staff_view(EVERYONE)
def search(request: HttpRequest) -> HttpResponse:
    """GET ``q``: the results per kind; one exact hit (``?exact=0`` to list anyway) opens it."""
    text = clean_text(request.GET.get("q", ""))[:MAX_LENGTH]
    results = search_all(tenant=current_tenant(request), text=text) if text else None
    if results is not None and len(set(results.exact)) == 1 and request.GET.get("exact") != "0":
        return redirect(results.exact[0])
    context = {
        "q": text,
        "results": results,
        "list_query": query_string(q=text),
    }
    return render(request, "backoffice/search.html", context)
