"""The portal's usage: the customer's daily usage of one of its meters over a chosen range of days
(its open billing period unless asked), split by a dimension of the meter (device type, region...)
or by time band, as a chart and a table, and the same rows as a CSV file.

The rows are those of the back-office's usage explorer (``usage.selectors.usage_daily_series``,
which reads the rollups by the customer's local day), with the customer fixed to the portal's."""

from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing_platform.csv_export import csv_response
from billing_platform.formatting import period_days, plain
from billing_platform.periods import local_date
from catalog.models import Aggregation, Meter
from catalog.selectors import meter_list
from catalog.time_bands import OFF_PEAK
from portal.access import PortalContext, current_portal, portal_view
from subscriptions.models import SubscriptionStatus
from subscriptions.periods import subscription_period_at
from subscriptions.selectors import meter_ids_for_customer, subscription_list_for_customer
from usage.selectors import DailyUsage, usage_daily_series

TIME_BAND = "time_band"
# A bar per day: a year is the most a chart shows legibly.
MAX_DAYS = 366
MIN_YEAR, MAX_YEAR = 2000, 2999
# Meters whose daily quantities add up: their bars stack and the table has totals.
ADDITIVE = frozenset({Aggregation.COUNT, Aggregation.SUM, Aggregation.UNIQUE_COUNT})
# The dimensions devices give their events (``usage.ingest``), named for people.
DIMENSION_LABELS = {"device_type": gettext_lazy("Device type"), "region": gettext_lazy("Region")}


class UsageRangeForm(forms.Form):
    start = forms.DateField(
        label=gettext_lazy("First day"),
        required=False,
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    end = forms.DateField(
        label=gettext_lazy("Last day"),
        required=False,
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )

    def __init__(self, *args: Any, default: tuple[date, date], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.default = default

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        start = data.get("start") or self.default[0]
        end = data.get("end") or (self.default[1] if start == self.default[0] else start)
        if not (MIN_YEAR <= start.year <= MAX_YEAR and MIN_YEAR <= end.year <= MAX_YEAR):
            self.add_error(
                "start" if not MIN_YEAR <= start.year <= MAX_YEAR else "end",
                _("Enter a date between %(min)s and %(max)s.") % {"min": MIN_YEAR, "max": MAX_YEAR},
            )
        elif end < start:
            self.add_error("end", _("The last day is before the first day."))
        elif (end - start).days + 1 > MAX_DAYS:
            self.add_error("end", _("Show at most %(days)s days at once.") % {"days": MAX_DAYS})
        data["start"], data["end"] = start, end
        return data


def open_period_days(portal: PortalContext) -> tuple[date, date]:
    """The first and last local days of the customer's open billing period (its first live
    subscription's), else of the current month."""
    customer = portal.customer
    now = timezone.now()
    live = [
        s
        for s in subscription_list_for_customer(tenant=portal.tenant, customer=customer, limit=5)
        if s.status in SubscriptionStatus.LIVE
    ]
    if live:
        period = subscription_period_at(live[0], at=now)
        return period_days(period.start, period.end, customer.timezone)
    today = local_date(now, customer.timezone)
    first = today.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return first, following - timedelta(days=1)


def customer_meters(portal: PortalContext) -> list[Meter]:
    """The meters the customer's subscriptions bill, in the plans' order."""
    ids = list(dict.fromkeys(meter_ids_for_customer(tenant=portal.tenant, customer=portal.customer)))
    found = meter_list(tenant=portal.tenant).filter(pk__in=ids)
    return sorted(found, key=lambda m: ids.index(m.pk))


def split_choices(meter: Meter | None) -> list[tuple[str, str]]:
    if meter is None:
        return []
    choices = [(str(d), str(DIMENSION_LABELS.get(str(d), d))) for d in meter.dimensions or []]
    if meter.time_bands:
        choices.append((TIME_BAND, _("Time band")))
    return choices


def daily_rows(*, portal: PortalContext, meter: Meter, split: str, start: date, end: date) -> list[DailyUsage]:
    return usage_daily_series(
        tenant=portal.tenant,
        customer=portal.customer,
        meter=meter,
        start=start,
        end=end,
        dimension=split if split and split != TIME_BAND else None,
        by_time_band=split == TIME_BAND,
    )


def _json_number(value: Decimal | None) -> int | float | None:
    if value is None:
        return None
    return int(value) if value == value.to_integral_value() else float(value)


def _series_label(key: str, split: str) -> str:
    if not key:
        return _("(not set)")
    if split == TIME_BAND and key == OFF_PEAK:
        return _("Off-peak")
    return key


def usage_table(rows: Sequence[DailyUsage], *, meter: Meter, split: str, start: date, end: date) -> dict[str, Any]:
    """The table (a row per day, a column per series) and the chart data of the range."""
    keys = sorted({r.series for r in rows}, key=lambda s: (s == "", s))
    cells = {(r.day, r.series): r.quantity for r in rows}
    days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    labels = [_series_label(k, split) if split else meter.name for k in keys]
    additive = meter.aggregation in ADDITIVE
    table = []
    for day in days:
        values = [cells.get((day, k)) for k in keys]
        present = [v for v in values if v is not None]
        table.append(
            {
                "day": day,
                "cells": [plain(v) if v is not None else None for v in values],
                "total": plain(sum(present, Decimal(0))) if additive and present else None,
            }
        )
    totals = [plain(sum((cells.get((d, k)) or Decimal(0) for d in days), Decimal(0))) for k in keys]
    return {
        "has_usage": bool(rows),
        "columns": labels,
        "rows": table,
        "additive": additive,
        "totals": totals if additive else [],
        "grand": plain(sum(totals, Decimal(0))) if additive and totals else None,
        "chart": {
            "labels": [d.isoformat() for d in days],
            "datasets": [
                {"label": str(label), "data": [_json_number(cells.get((d, k))) for d in days]}
                for label, k in zip(labels, keys, strict=True)
            ],
            "stacked": additive,
        },
    }


def _choices(request: HttpRequest) -> tuple[PortalContext, list[Meter], Meter | None, list[tuple[str, str]], str]:
    portal = current_portal(request)
    meters = customer_meters(portal)
    requested = request.GET.get("meter", "").strip()
    if requested:
        meter = next((m for m in meters if m.code == requested), None)
        if meter is None:
            raise Http404("No such meter.")
    else:
        meter = meters[0] if meters else None
    splits = split_choices(meter)
    split = request.GET.get("split", "")
    return portal, meters, meter, splits, split if split in dict(splits) else ""


def _form(request: HttpRequest, portal: PortalContext) -> UsageRangeForm:
    default = open_period_days(portal)
    data = request.GET.copy()
    if not data.get("start") and not data.get("end"):
        # The open period, written in the inputs so that the page says which days it shows.
        data["start"], data["end"] = default[0].isoformat(), default[1].isoformat()
    return UsageRangeForm(data, default=default)


@portal_view()
def usage(request: HttpRequest) -> HttpResponse:
    portal, meters, meter, splits, split = _choices(request)
    form = _form(request, portal)
    context: dict[str, Any] = {
        "meters": meters,
        "meter": meter,
        "splits": splits,
        "split": split,
        "split_label": dict(splits).get(split, ""),
        "form": form,
        "tz_name": portal.customer.timezone,
    }
    if meter is not None and form.is_valid():
        start, end = form.cleaned_data["start"], form.cleaned_data["end"]
        rows = daily_rows(portal=portal, meter=meter, split=split, start=start, end=end)
        context.update(start=start, end=end, **usage_table(rows, meter=meter, split=split, start=start, end=end))
    return render(request, "portal/usage/usage.html", context)


@portal_view()
def usage_csv(request: HttpRequest) -> HttpResponseBase:
    """The rows of the usage page as a file: day, meter, the split's value (when split), quantity."""
    portal, _meters, meter, splits, split = _choices(request)
    form = _form(request, portal)
    if meter is None or not form.is_valid():
        raise Http404("Choose a meter and a valid range of days.")
    start, end = form.cleaned_data["start"], form.cleaned_data["end"]
    rows = daily_rows(portal=portal, meter=meter, split=split, start=start, end=end)
    header: list[str] = ["day", "meter"] + ([split] if split else []) + ["quantity"]
    lines = [
        [r.day, meter.code] + ([r.series] if split else []) + [plain(r.quantity) if r.quantity is not None else None]
        for r in rows
    ]
    name = "usage-%s-%s-%s.csv" % (meter.code, start.isoformat(), end.isoformat())
    return csv_response(filename=name, header=header, rows=lines)
