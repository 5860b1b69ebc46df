"""Back-office usage pages: the usage explorer (a customer's metered usage per local day, split by
a dimension or a time band) and the events refused at ingestion.

Both pages only read. The explorer never scans raw events: ``usage_daily_series`` reads the
rollups that ingestion keeps current, grouped by the customer's local day. The days of the range,
the series, the totals and the chart data are computed in ``backoffice.usage.presenters``.
"""

from collections.abc import Sequence
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from backoffice.access import EVERYONE, current_tenant, staff_view
from backoffice.formatting import query_string
from backoffice.pages import clean_text, page_of
from backoffice.usage.forms import RangeForm, month_of
from backoffice.usage.presenters import (
    REASON_LABELS,
    TIME_BAND,
    pretty_payload,
    reason_tabs,
    split_choices,
    usage_panel,
)
from billing_platform.errors import DomainError
from billing_platform.periods import local_date
from catalog.models import Meter
from catalog.selectors import meter_list
from customers.models import Customer
from customers.selectors import customer_get, customer_list
from subscriptions.selectors import meter_ids_for_customer
from tenancy.models import Tenant
from usage.selectors import rejected_event_list, rejected_event_reason_counts, usage_daily_series

# The select lists at most this many customers; the search box narrows it.
MAX_CUSTOMER_CHOICES = 200


# --- usage explorer -------------------------------------------------------------------------


def _customer_or_404(tenant: Tenant, external_id: str) -> Customer:
    try:
        return customer_get(tenant=tenant, external_id=external_id)
    except DomainError:
        raise Http404("No such customer.") from None


def _pick_customer(tenant: Tenant, requested: str, search: str) -> tuple[Customer | None, list[Customer], bool]:
    """The customer shown, the customers the select offers, and whether the search found nobody.
    A search picks its first match unless the requested customer matches it too."""
    if "\x00" in requested:  # PostgreSQL refuses NUL characters: no customer has one
        raise Http404("No such customer.")
    customer = _customer_or_404(tenant, requested) if requested else None
    matches = customer_list(tenant=tenant, search=search or None).order_by("name", "id")
    choices = list(matches[:MAX_CUSTOMER_CHOICES])
    no_match = bool(search) and not choices
    if search and choices and (customer is None or not matches.filter(pk=customer.pk).exists()):
        customer = choices[0]
    if customer is not None and customer not in choices:
        choices.insert(0, customer)
    return customer, choices, no_match


def _pick_meter(tenant: Tenant, meters: Sequence[Meter], requested: str, customer: Customer | None) -> Meter | None:
    """The requested meter (another tenant's code is not found), else the first meter the customer's
    subscriptions bill, else the tenant's first meter."""
    if requested:
        found = next((m for m in meters if m.code == requested), None)
        if found is None:
            raise Http404("No such meter.")
        return found
    if customer is not None:
        first = next(iter(meter_ids_for_customer(tenant=tenant, customer=customer)), None)
        found = next((m for m in meters if m.pk == first), None)
        if found is not None:
            return found
    return meters[0] if meters else None


@staff_view(EVERYONE)
def usage_explorer(request: HttpRequest) -> HttpResponse:
    """GET only: the filters are a GET form, so the page works without JavaScript; with HTMX a
    change of filter reloads the panel alone (and the choices that depend on the filters)."""
    tenant = current_tenant(request)
    search = clean_text(request.GET.get("q", ""))[:200]
    customer, customers, no_match = _pick_customer(tenant, request.GET.get("customer", "").strip(), search)
    meters = list(meter_list(tenant=tenant).order_by("code"))
    meter = _pick_meter(tenant, meters, request.GET.get("meter", "").strip(), customer)
    splits = split_choices(meter)
    split = request.GET.get("split", "")
    split = split if split in dict(splits) else ""
    tz = customer.timezone if customer is not None else tenant.timezone
    today = local_date(timezone.now(), tz)
    data = request.GET.copy()
    if not data.get("start") and not data.get("end"):
        # The current month in the customer's time zone, written in the inputs so the page says it.
        first, last = month_of(today)
        data["start"], data["end"] = first.isoformat(), last.isoformat()
    form = RangeForm(data, today=today)
    valid = form.is_valid()
    context: dict[str, Any] = {
        "search": search,
        "customer": customer,
        "customers": customers,
        "no_match": no_match,
        "has_customers": bool(customers) or customer_list(tenant=tenant).exists(),
        "meters": meters,
        "meter": meter,
        "splits": splits,
        "split": split,
        "split_label": dict(splits).get(split, ""),
        "form": form,
        "tz_name": tz,
        "aggregation": meter.aggregation if meter else "",
        "field": meter.field if meter else "",
    }
    if customer is not None and meter is not None and valid:
        start, end = form.cleaned_data["start"], form.cleaned_data["end"]
        context.update(start=start, end=end)
        days = usage_daily_series(
            tenant=tenant,
            customer=customer,
            meter=meter,
            start=start,
            end=end,
            dimension=split if split != TIME_BAND else None,
            by_time_band=split == TIME_BAND,
        )
        context.update(usage_panel(days, meter=meter, split=split, start=start, end=end))
    htmx = getattr(request, "htmx", None)
    if htmx and not htmx.history_restore_request:
        return render(request, "backoffice/usage/_panel.html", {**context, "oob": True})
    return render(request, "backoffice/usage/explorer.html", context)


# --- rejected events ------------------------------------------------------------------------


@staff_view(EVERYONE)
def usage_rejected(request: HttpRequest) -> HttpResponse:
    tenant = current_tenant(request)
    reason = request.GET.get("reason", "")
    search = clean_text(request.GET.get("q", ""))[:255]
    counts = rejected_event_reason_counts(tenant=tenant, search=search or None)
    reason = reason if reason in counts or reason in REASON_LABELS else ""
    qs = rejected_event_list(tenant=tenant, search=search or None, reason=reason or None)
    page = page_of(request, qs.order_by("-received_at", "-id"))
    rows = [
        {"event": e, "label": REASON_LABELS.get(e.reason, e.reason), "payload": pretty_payload(e.payload)}
        for e in page.object_list
    ]
    context = {
        "page": page,
        "rows": rows,
        "tabs": reason_tabs(counts, reason=reason, search=search),
        "reason": reason,
        "q": search,
        "query": query_string(reason=reason, q=search),
        "tz_name": tenant.timezone,
    }
    return render(request, "backoffice/usage/rejected.html", context)
