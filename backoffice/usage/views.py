"""Back-office usage pages: the usage explorer (a customer's metered usage per local day, split by
a dimension or a time band) and the events refused at ingestion.

Both pages only read. The explorer never scans raw events: it reads the rollups that ingestion
keeps current (15-minute buckets per subscription, meter, dimension values and time band) and
groups them by the customer's local day in one SQL query, ``(bucket AT TIME ZONE tz)::date``.
Local midnights of every time zone fall on a 15-minute edge, so a bucket never straddles two days:
an event at 2026-03-31T22:30Z counts on 1 April for a customer in Paris. The days of the range,
the series, the totals and the chart data are computed in ``backoffice.usage.presenters``.
"""

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _

from backoffice.access import EVERYONE, current_tenant, staff_view
from backoffice.formatting import query_string
from backoffice.pages import clean_text, page_of
from backoffice.usage.forms import RangeForm, month_of
from backoffice.usage.presenters import REASON_LABELS, TIME_BAND, pretty_payload, split_choices, usage_panel
from billing_platform.errors import DomainError
from billing_platform.periods import local_date, local_midnight
from catalog.models import Aggregation, Meter, PlanComponent
from catalog.selectors import meter_list
from customers.models import Customer
from customers.selectors import customer_get, customer_list
from subscriptions.models import Subscription
from tenancy.models import Tenant
from usage.models import RejectedEvent, UsageRollup

# The select lists at most this many customers; the search box narrows it.
MAX_CUSTOMER_CHOICES = 200
# The quantity of a day for each aggregation, over the rollup rows of that day and series.
QUANTITY_SQL: dict[str, str] = {
    Aggregation.COUNT: "sum(r.event_count)",
    # Distinct values are counted at billing time, over the whole period: here, the events.
    Aggregation.UNIQUE_COUNT: "sum(r.event_count)",
    Aggregation.SUM: "sum(r.value_sum)",
    Aggregation.MAX: "max(r.value_max)",
    Aggregation.LATEST: "(array_agg(r.latest_value ORDER BY r.latest_at DESC NULLS LAST))[1]",
}
USAGE_SQL = """
SELECT (r.bucket AT TIME ZONE %s)::date AS day, {series} AS series, {quantity} AS quantity,
       max(r.latest_at) AS latest_at
FROM {rollups} r
WHERE r.tenant_id = %s AND r.meter_id = %s
  AND r.subscription_id IN (SELECT s.id FROM {subscriptions} s WHERE s.tenant_id = %s AND s.customer_id = %s)
  AND r.bucket >= %s AND r.bucket < %s
GROUP BY 1, 2
ORDER BY 1, 2
"""


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
        first = (
            PlanComponent.objects.filter(tenant=tenant, plan__subscriptions__customer=customer, meter__isnull=False)
            .order_by("plan__code", "position")
            .values_list("meter_id", flat=True)
            .first()
        )
        found = next((m for m in meters if m.pk == first), None)
        if found is not None:
            return found
    return meters[0] if meters else None


def _daily_usage(
    *, tenant: Tenant, customer: Customer, meter: Meter, split: str, start: date, end: date
) -> list[tuple[date, str, Decimal | None, datetime | None]]:
    """(local day, series, quantity, latest_at) of the customer's rollups in [start, end], grouped
    in SQL by the day in the customer's time zone."""
    params: list[Any] = [customer.timezone]
    if split == TIME_BAND:
        series = "r.time_band"
    elif split:
        series = "coalesce(r.dimensions ->> %s, '')"
        params.append(split)
    else:
        series = "''"
    sql = USAGE_SQL.format(
        series=series,
        quantity=QUANTITY_SQL.get(meter.aggregation, "sum(r.event_count)"),
        rollups=UsageRollup._meta.db_table,
        subscriptions=Subscription._meta.db_table,
    )
    params += [
        tenant.pk,
        meter.pk,
        tenant.pk,
        customer.pk,
        local_midnight(start, customer.timezone),
        local_midnight(end + timedelta(days=1), customer.timezone),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(day, str(s), quantity, latest_at) for day, s, quantity, latest_at in cursor.fetchall()]


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
        rows = _daily_usage(tenant=tenant, customer=customer, meter=meter, split=split, start=start, end=end)
        context.update(usage_panel(rows, meter=meter, split=split, start=start, end=end))
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
    qs = RejectedEvent.objects.filter(tenant=tenant)
    if search:
        qs = qs.filter(Q(transaction_id__icontains=search) | Q(code__icontains=search))
    counts = dict(qs.order_by().values_list("reason").annotate(n=Count("pk")))
    reason = reason if reason in counts or reason in REASON_LABELS else ""
    tabs = [{"reason": "", "label": _("All"), "count": sum(counts.values()), "query": query_string(q=search)}]
    known = list(REASON_LABELS) + sorted(set(counts) - set(REASON_LABELS))
    tabs += [
        {
            "reason": r,
            "label": REASON_LABELS.get(r, r),
            "count": counts.get(r, 0),
            "query": query_string(reason=r, q=search),
        }
        for r in known
        if counts.get(r) or r == reason
    ]
    if reason:
        qs = qs.filter(reason=reason)
    page = page_of(request, qs.order_by("-received_at", "-id"))
    rows = [
        {"event": e, "label": REASON_LABELS.get(e.reason, e.reason), "payload": pretty_payload(e.payload)}
        for e in page.object_list
    ]
    context = {
        "page": page,
        "rows": rows,
        "tabs": tabs,
        "reason": reason,
        "q": search,
        "query": query_string(reason=reason, q=search),
        "tz_name": tenant.timezone,
    }
    return render(request, "backoffice/usage/rejected.html", context)
