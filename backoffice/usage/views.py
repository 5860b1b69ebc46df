"""Back-office usage pages: the usage explorer (a customer's metered usage per local day, split by
a dimension or a time band) and the events refused at ingestion.

Both pages only read. The explorer never scans raw events: it reads the rollups that ingestion
keeps current (15-minute buckets per subscription, meter, dimension values and time band) and
groups them by the customer's local day in one SQL query, ``(bucket AT TIME ZONE tz)::date``.
Local midnights of every time zone fall on a 15-minute edge, so a bucket never straddles two days:
an event at 2026-03-31T22:30Z counts on 1 April for a customer in Paris. What is left here is
presentation: the days of the range, the series, the totals and the chart data.
"""

import calendar
import json
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext

from backoffice.access import EVERYONE, current_tenant, staff_view
from backoffice.catalog_views import _plain
from backoffice.forms import year_validator
from billing_platform.errors import DomainError
from billing_platform.periods import local_date, local_midnight
from catalog.models import Aggregation, Meter, PlanComponent
from catalog.selectors import meter_list
from customers.models import Customer
from customers.selectors import customer_get, customer_list
from subscriptions.models import Subscription
from tenancy.models import Tenant
from usage.models import RejectedEvent, UsageRollup

PAGE_SIZE = 50
# The select lists at most this many customers; the search box narrows it.
MAX_CUSTOMER_CHOICES = 200
# A bar per day: a year is the most a chart can show legibly.
MAX_DAYS = 366
TIME_BAND = "time_band"
MIN_YEAR, MAX_YEAR = 2000, 2999

# Meters whose daily quantities add up: their bars stack and their totals are sums.
ADDITIVE = frozenset({Aggregation.COUNT, Aggregation.SUM, Aggregation.UNIQUE_COUNT})
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

# The reasons of usage.ingest, in the order a device-cloud engineer meets them.
REASON_LABELS = {
    "missing_field": gettext_lazy("Missing field"),
    "unknown_meter": gettext_lazy("Unknown meter"),
    "bad_timestamp": gettext_lazy("Bad timestamp"),
    "too_old": gettext_lazy("Too old"),
    "unknown_subscription": gettext_lazy("Unknown subscription"),
    "unknown_device": gettext_lazy("Unknown device"),
    "unknown_customer": gettext_lazy("Unknown customer"),
    "ambiguous_customer": gettext_lazy("Ambiguous customer"),
    "meter_not_in_plan": gettext_lazy("Meter not in plan"),
    "value_not_a_number": gettext_lazy("Value not a number"),
}


def _clean(value: str) -> str:
    return value.replace("\x00", "").strip()  # PostgreSQL refuses NUL characters


# --- usage explorer -------------------------------------------------------------------------


def _month(day: date) -> tuple[date, date]:
    """The first and last days of the month of ``day``."""
    return day.replace(day=1), day.replace(day=calendar.monthrange(day.year, day.month)[1])


class RangeForm(forms.Form):
    """The first and last local days shown (both included); empty means the current month."""

    start = forms.DateField(
        label=gettext_lazy("First day"),
        required=False,
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date", "id": "usage-start"}, format="%Y-%m-%d"),
    )
    end = forms.DateField(
        label=gettext_lazy("Last day"),
        required=False,
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date", "id": "usage-end"}, format="%Y-%m-%d"),
    )

    def __init__(self, *args: Any, today: date, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.today = today

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        in_range = year_validator(
            lowest=MIN_YEAR, highest=MAX_YEAR, message=gettext_lazy("Enter a date between %(min)s and %(max)s.")
        )
        for name in ("start", "end"):
            try:
                in_range(data.get(name))
            except forms.ValidationError as error:
                self.add_error(name, error)
        if self.errors:
            return data
        start = data.get("start") or _month(self.today)[0]
        end = data.get("end") or _month(start)[1]
        if end < start:
            self.add_error("end", _("The last day is before the first day."))
        elif (end - start).days + 1 > MAX_DAYS:
            self.add_error("end", _("Show at most %(days)s days at once.") % {"days": MAX_DAYS})
        data["start"], data["end"] = start, end
        return data


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


def _split_choices(meter: Meter | None) -> list[tuple[str, str]]:
    """What a meter's usage can be split by: its dimensions, and its time bands when it has some."""
    if meter is None:
        return []
    choices = [(str(d), str(d)) for d in meter.dimensions or []]
    if meter.time_bands:
        choices.append((TIME_BAND, _("Time band")))
    return choices


def _number(value: Decimal | None) -> Decimal | None:
    """A stored quantity as the table prints it: 100.0000000000 -> 100, 25.5000000000 -> 25.5."""
    return None if value is None else _plain(value, 0)


def _json_number(value: Decimal | None) -> int | float | None:
    if value is None:
        return None
    return int(value) if value == value.to_integral_value() else float(value)


def _combine(values: Sequence[tuple[Decimal | None, datetime | None]], aggregation: str) -> Decimal | None:
    """Several quantities as one: their sum, their maximum, or the one measured last."""
    present = [(v, at) for v, at in values if v is not None]
    if not present:
        return None
    if aggregation == Aggregation.MAX:
        return max(v for v, _at in present)
    if aggregation == Aggregation.LATEST:
        dated = [(v, at) for v, at in present if at is not None]
        return max(dated, key=lambda p: p[1])[0] if dated else present[-1][0]
    return sum((v for v, _at in present), Decimal(0))


def _quantity_note(meter: Meter) -> str:
    """What the quantity of a day is, for this meter's aggregation."""
    field = "properties.%s" % meter.field
    if meter.aggregation == Aggregation.SUM:
        return _("Quantity: the sum of %(field)s.") % {"field": field}
    if meter.aggregation == Aggregation.MAX:
        return _("Quantity: the highest %(field)s of the day.") % {"field": field}
    if meter.aggregation == Aggregation.LATEST:
        return _("Quantity: the last %(field)s reported in the day.") % {"field": field}
    if meter.aggregation == Aggregation.UNIQUE_COUNT:
        return _("Quantity: the number of events.")
    if meter.filters:
        return _("Quantity: the number of events that match the meter's filters.")
    return _("Quantity: the number of events.")


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


def _usage_panel(
    *, tenant: Tenant, customer: Customer, meter: Meter, split: str, start: date, end: date
) -> dict[str, Any]:
    """The chart data and the table (day x series, with totals) of the explorer."""
    rows = _daily_usage(tenant=tenant, customer=customer, meter=meter, split=split, start=start, end=end)
    aggregation = meter.aggregation
    keys = sorted({series for _day, series, _q, _at in rows}, key=lambda s: (s == "", s))
    cells = {(day, series): (quantity, latest_at) for day, series, quantity, latest_at in rows}
    days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    labels = [(k or _("(not set)")) if split else meter.name for k in keys]
    if aggregation == Aggregation.MAX:
        total_label = _("Highest")
    elif aggregation == Aggregation.LATEST:
        total_label = _("Latest")
    else:
        total_label = pgettext("usage quantity", "Total")

    table_rows = []
    for day in days:
        values = [cells.get((day, k), (None, None)) for k in keys]
        table_rows.append(
            {
                "day": day,
                "cells": [_number(v) for v, _at in values],
                "total": _number(_combine(values, aggregation)),
            }
        )
    columns = [[cells.get((day, k), (None, None)) for day in days] for k in keys]
    totals = [_number(_combine(column, aggregation)) for column in columns]
    grand = _number(_combine([(q, at) for _d, _s, q, at in rows], aggregation))
    chart = {
        "labels": [d.isoformat() for d in days],
        "datasets": [
            {"label": str(label), "data": [_json_number(v) for v, _at in column]}
            for label, column in zip(labels, columns, strict=True)
        ],
        "stacked": aggregation in ADDITIVE,
    }
    return {
        "has_usage": bool(rows),
        "chart": chart,
        "columns": labels if split else [_("Quantity")],
        "total_label": total_label,
        "quantity_note": _quantity_note(meter),
        "rows": table_rows,
        "totals": totals,
        "grand": grand,
    }


def _query(**params: str) -> str:
    return urlencode({k: v for k, v in params.items() if v})


@staff_view(EVERYONE)
def usage_explorer(request: HttpRequest) -> HttpResponse:
    """GET only: the filters are a GET form, so the page works without JavaScript; with HTMX a
    change of filter reloads the panel alone (and the choices that depend on the filters)."""
    tenant = current_tenant(request)
    search = _clean(request.GET.get("q", ""))[:200]
    customer, customers, no_match = _pick_customer(tenant, request.GET.get("customer", "").strip(), search)
    meters = list(meter_list(tenant=tenant).order_by("code"))
    meter = _pick_meter(tenant, meters, request.GET.get("meter", "").strip(), customer)
    splits = _split_choices(meter)
    split = request.GET.get("split", "")
    split = split if split in dict(splits) else ""
    tz = customer.timezone if customer is not None else tenant.timezone
    today = local_date(timezone.now(), tz)
    data = request.GET.copy()
    if not data.get("start") and not data.get("end"):
        # The current month in the customer's time zone, written in the inputs so the page says it.
        first, last = _month(today)
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
        context.update(_usage_panel(tenant=tenant, customer=customer, meter=meter, split=split, start=start, end=end))
    htmx = getattr(request, "htmx", None)
    if htmx and not htmx.history_restore_request:
        return render(request, "backoffice/usage/_panel.html", {**context, "oob": True})
    return render(request, "backoffice/usage/explorer.html", context)


# --- rejected events ------------------------------------------------------------------------


def _pretty(payload: Any) -> str:
    return json.dumps(payload, indent=2, ensure_ascii=False, sort_keys=True)


@staff_view(EVERYONE)
def usage_rejected(request: HttpRequest) -> HttpResponse:
    tenant = current_tenant(request)
    reason = request.GET.get("reason", "")
    search = _clean(request.GET.get("q", ""))[:255]
    qs = RejectedEvent.objects.filter(tenant=tenant)
    if search:
        qs = qs.filter(Q(transaction_id__icontains=search) | Q(code__icontains=search))
    counts = dict(qs.order_by().values_list("reason").annotate(n=Count("pk")))
    reason = reason if reason in counts or reason in REASON_LABELS else ""
    tabs = [{"reason": "", "label": _("All"), "count": sum(counts.values()), "query": _query(q=search)}]
    known = list(REASON_LABELS) + sorted(set(counts) - set(REASON_LABELS))
    tabs += [
        {
            "reason": r,
            "label": REASON_LABELS.get(r, r),
            "count": counts.get(r, 0),
            "query": _query(reason=r, q=search),
        }
        for r in known
        if counts.get(r) or r == reason
    ]
    if reason:
        qs = qs.filter(reason=reason)
    page = Paginator(qs.order_by("-received_at", "-id"), PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [
        {"event": e, "label": REASON_LABELS.get(e.reason, e.reason), "payload": _pretty(e.payload)}
        for e in page.object_list
    ]
    context = {
        "page": page,
        "rows": rows,
        "tabs": tabs,
        "reason": reason,
        "q": search,
        "query": _query(reason=reason, q=search),
        "tz_name": tenant.timezone,
    }
    return render(request, "backoffice/usage/rejected.html", context)
