"""The usage of a partner's fleet: each meter's quantity per day of the month so far (or a past
month), over every subscription of the partner's customers, as a table and a CSV file.

Days are the tenant's (its time zone), read from the 15-minute rollups in one grouped query: local
midnights of every zone fall on a 15-minute edge, so a bucket never straddles two days. A day's
quantity follows the meter's aggregation across the fleet: the events counted (``count``,
``unique_count``: distinct values are only counted per subscription when billed), the values added
up (``sum``), or the highest value measured that day (``max`` and ``latest``: the highest of the
devices' readings)."""

from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Max, Sum
from django.db.models.functions import TruncDate
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils import timezone

from billing_platform.csv_export import csv_response
from billing_platform.formatting import plain
from billing_platform.periods import local_date, local_midnight
from catalog.models import Aggregation, Meter
from partners.dashboard.access import PartnerContext, current_partner, partner_render, partner_view
from usage.models import UsageRollup

MONTH_RE = r"^\d{4}-\d{2}$"


def _month(request: HttpRequest, ctx: PartnerContext) -> tuple[date, date]:
    """The first and last day of the month asked (``?month=2026-04``), else of the current one."""
    today = local_date(timezone.now(), ctx.tenant.timezone)
    first = today.replace(day=1)
    asked = request.GET.get("month", "")
    if len(asked) == 7 and asked[4] == "-" and asked[:4].isdigit() and asked[5:].isdigit():
        year, month = int(asked[:4]), int(asked[5:])
        if 2000 <= year <= 2999 and 1 <= month <= 12:
            first = date(year, month, 1)
    following = (first + timedelta(days=32)).replace(day=1)
    return first, following - timedelta(days=1)


def fleet_daily_usage(
    ctx: PartnerContext, start: date, end: date
) -> tuple[list[Meter], dict[tuple[date, Any], Decimal]]:
    """The meters the fleet used from ``start`` to ``end`` (both included) and each one's quantity
    per day: one query for the quantities, one for the meters."""
    tz = ctx.tenant.timezone
    rows = (
        UsageRollup.objects.filter(
            tenant=ctx.tenant,
            subscription__customer__partner=ctx.partner,
            bucket__gte=local_midnight(start, tz),
            bucket__lt=local_midnight(end + timedelta(days=1), tz),
        )
        .annotate(day=TruncDate("bucket", tzinfo=ZoneInfo(tz)))
        .values("day", "meter_id")
        .annotate(events=Sum("event_count"), total=Sum("value_sum"), highest=Max("value_max"))
        .order_by("day", "meter_id")
    )
    found = list(rows)
    meters = list(Meter.objects.filter(tenant=ctx.tenant, pk__in={r["meter_id"] for r in found}).order_by("name"))
    kinds = {m.pk: m.aggregation for m in meters}
    quantities: dict[tuple[date, Any], Decimal] = {}
    for r in found:
        kind = kinds.get(r["meter_id"])
        if kind in (Aggregation.COUNT, Aggregation.UNIQUE_COUNT):
            value = Decimal(r["events"] or 0)
        elif kind == Aggregation.SUM:
            value = r["total"] or Decimal(0)
        else:
            value = r["highest"] if r["highest"] is not None else Decimal(0)
        quantities[(r["day"], r["meter_id"])] = value
    return meters, quantities


@partner_view()
def usage(request: HttpRequest) -> HttpResponse:
    ctx = current_partner(request)
    start, end = _month(request, ctx)
    meters, quantities = fleet_daily_usage(ctx, start, end)
    days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    rows = [{"day": d, "cells": [quantities.get((d, m.pk)) for m in meters]} for d in days]
    previous = (start - timedelta(days=1)).replace(day=1)
    following = end + timedelta(days=1)
    context: dict[str, Any] = {
        "meters": meters,
        "rows": rows if meters else [],
        "start": start,
        "end": end,
        "month": start.strftime("%Y-%m"),
        "previous": previous.strftime("%Y-%m"),
        "following": following.strftime("%Y-%m"),
    }
    return partner_render(request, "partners/dashboard/usage.html", context)


@partner_view()
def usage_csv(request: HttpRequest) -> HttpResponseBase:
    """The rows of the usage page as a file: day, meter, quantity (days with usage only)."""
    ctx = current_partner(request)
    start, end = _month(request, ctx)
    meters, quantities = fleet_daily_usage(ctx, start, end)
    codes = {m.pk: m.code for m in meters}
    lines: list[list[Any]] = [
        [day, codes[meter_id], plain(quantity)]
        for (day, meter_id), quantity in sorted(quantities.items(), key=lambda kv: (kv[0][0], codes.get(kv[0][1], "")))
        if meter_id in codes
    ]
    name = "fleet-usage-%s.csv" % start.strftime("%Y-%m")
    return csv_response(filename=name, header=["day", "meter", "quantity"], rows=lines)
