"""Back-office analytics (Finance → Analytics): the MRR page (movements chart, ARPD and NRR in the
reporting currency, missing rates flagged), usage statistics, and the monthly exchange rates (table,
edit, CSV import). Every table has a CSV export (``?export=...``).

Finance roles read; owners and finance admins enter and import rates. Views stay thin: they call
``revrec.metrics``, ``revrec.usage_stats`` and ``revrec.rates``, the functions the API calls."""

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from backoffice import csv_export
from backoffice.access import FINANCE, WRITERS, can_write, current_actor, current_tenant, staff_view
from backoffice.analytics.forms import ExchangeRateForm, MonthRangeForm, RatesCsvForm, UsageFilterForm
from billing_platform.errors import DomainError
from billing_platform.periods import add_months, local_date
from catalog.models import Meter
from customers.models import Customer
from revrec.metrics import MOVEMENTS, mrr_in_reporting_currency, mrr_report
from revrec.rates import RateInput, exchange_rate_list, exchange_rates_import_csv, exchange_rates_set
from revrec.usage_stats import usage_statistics
from tenancy.models import Tenant
from usage.errors import UsageArchived

# The longest range a page shows: as the API.
MAX_MRR_MONTHS = 120
MAX_USAGE_MONTHS = 36


def csv_response(
    filename: str, header: Sequence[str], rows: Iterable[Sequence[Any]], tenant: Any = None
) -> HttpResponseBase:
    """A CSV download through the back-office's one writer (``backoffice.csv_export``); rows read
    lazily from the database need ``tenant`` (they are read after the request's scope)."""
    return csv_export.csv_response(filename=filename, header=header, rows=rows, tenant=tenant)


def _label(month: date) -> str:
    return "%04d-%02d" % (month.year, month.month)


def _range(request: HttpRequest, tenant: Tenant, longest: int, form: MonthRangeForm) -> tuple[date, date]:
    """The form's months, or the last 12 to this month (tenant's time zone); a range that is
    reversed or too long falls back to the default, with the reason on the form."""
    today = local_date(timezone.now(), tenant.timezone)
    current = date(today.year, today.month, 1)
    data = form.cleaned_data if form.is_valid() else {}
    end = data.get("end") or current
    start = data.get("start") or date(*add_months(end.year, end.month, -11), 1)
    span = (end.year - start.year) * 12 + end.month - start.month + 1
    if span < 1 or span > longest:
        form.add_error(None, _("From must be before To, at most %(n)d months apart.") % {"n": longest})
        end, start = current, date(*add_months(current.year, current.month, -11), 1)
    return start, end


# --- MRR ----------------------------------------------------------------------------------------


@staff_view(FINANCE)
def mrr(request: HttpRequest) -> HttpResponseBase:
    tenant = current_tenant(request)
    form = MonthRangeForm(request.GET)
    start, end = _range(request, tenant, MAX_MRR_MONTHS, form)
    months = mrr_report(tenant_id=tenant.pk, start=start, end=end)
    summary = mrr_in_reporting_currency(tenant=tenant, months=months)
    export = request.GET.get("export")
    if export == "months":
        return csv_response(
            "mrr-%s-%s.csv" % (_label(start), _label(end)),
            ["month", "currency", *MOVEMENTS, "devices", "arpd", "nrr_percent", "missing_rates"],
            (
                [
                    _label(m.month),
                    summary.reporting_currency,
                    *(getattr(m, name) for name in MOVEMENTS),
                    m.devices,
                    m.arpd,
                    m.nrr,
                    " ".join(m.missing),
                ]
                for m in summary.months
            ),
        )
    if export == "currencies":
        return csv_response(
            "mrr-by-currency-%s-%s.csv" % (_label(start), _label(end)),
            ["month", "currency", *MOVEMENTS, "devices", "arpd"],
            (
                [
                    _label(m.month),
                    c.currency,
                    *(getattr(c, name).amount for name in MOVEMENTS),
                    c.devices,
                    c.arpd.amount if c.arpd else None,
                ]
                for m in months
                for c in m.currencies
            ),
        )
    chart = {
        "labels": [_label(m.month) for m in summary.months],
        "series": {
            name: [None if getattr(m, name) is None else str(getattr(m, name)) for m in summary.months]
            for name in MOVEMENTS
        },
        "names": {
            "new": _("New"),
            "expansion": _("Expansion"),
            "reactivation": _("Reactivation"),
            "contraction": _("Contraction"),
            "churn": _("Churn"),
            "end": _("MRR"),
        },
    }
    last = summary.months[-1] if summary.months else None
    context = {
        "form": form,
        "summary": summary,
        "months": months,
        "last": last,
        "chart": chart,
        "start": start,
        "end": end,
        "query": request.GET.urlencode(),
        "rates_url": reverse("backoffice:analytics-rates"),
    }
    return render(request, "backoffice/analytics/mrr.html", context)


# --- usage --------------------------------------------------------------------------------------


@staff_view(FINANCE)
def usage(request: HttpRequest) -> HttpResponseBase:
    tenant = current_tenant(request)
    meters = [
        (code, "%s (%s)" % (name, code))
        for code, name in Meter.objects.filter(tenant=tenant).values_list("code", "name")
    ]
    form = UsageFilterForm(request.GET, meters=meters)
    start, end = _range(request, tenant, MAX_USAGE_MONTHS, form)
    data = form.cleaned_data if form.is_valid() else {}
    group_by = data.get("group_by") or None
    try:
        stats = usage_statistics(
            tenant=tenant, start=start, end=end, meter_code=data.get("meter") or None, group_by=group_by
        )
    except UsageArchived as exc:
        form.add_error(None, exc.detail)  # the months asked for reach into archived raw events
        stats = []
    export = request.GET.get("export")
    name = "%s-%s" % (_label(start), _label(end))
    if export == "months":
        return csv_response(
            "usage-%s.csv" % name,
            ["meter", "month", "group_by", "group", "quantity"],
            (
                row
                for m in stats
                for month in m.months
                for row in (
                    [[m.meter, _label(month.month), "", "", month.quantity]]
                    + [[m.meter, _label(month.month), group_by, g.group, g.quantity] for g in month.groups]
                )
            ),
        )
    if export == "customers":
        return csv_response(
            "usage-top-customers-%s.csv" % name,
            ["meter", "customer", "name", "quantity"],
            ([m.meter, t.customer, t.name, t.quantity] for m in stats for t in m.top_customers),
        )
    if export == "devices":
        return csv_response(
            "usage-top-devices-%s.csv" % name,
            ["meter", "device_id", "customer", "quantity"],
            ([m.meter, t.device_id, t.customer, t.quantity] for m in stats for t in m.top_devices),
        )
    if export == "anomalies":
        return csv_response(
            "usage-anomalies-%s.csv" % name,
            ["meter", "device_id", "customer", "day", "quantity", "median", "ratio"],
            (
                [m.meter, a.device_id, a.customer, a.day.isoformat(), a.quantity, a.median, a.ratio]
                for m in stats
                for a in m.anomalies
            ),
        )
    context = {
        "form": form,
        "stats": stats,
        "group_by": group_by,
        "start": start,
        "end": end,
        "query": request.GET.urlencode(),
    }
    return render(request, "backoffice/analytics/usage.html", context)


# --- exchange rates -----------------------------------------------------------------------------


def _rates_context(
    request: HttpRequest, tenant: Tenant, form: ExchangeRateForm | None = None, upload: RatesCsvForm | None = None
) -> dict[str, Any]:
    rates = list(exchange_rate_list(tenant=tenant))
    in_use = set(Customer.objects.filter(tenant=tenant).values_list("currency", flat=True).distinct())
    currencies = sorted((in_use | {r.currency for r in rates}) - {tenant.default_currency})
    today = local_date(timezone.now(), tenant.timezone)
    current = date(today.year, today.month, 1)
    by_month: dict[date, dict[str, Any]] = {}
    for r in rates:
        by_month.setdefault(r.month, {})[r.currency] = r
    # The last 12 months always show, so that a missing rate is seen; older months when they have rates.
    recent = {date(*add_months(current.year, current.month, -i), 1) for i in range(12)}
    rows = [
        {"month": m, "label": _label(m), "cells": [(c, by_month.get(m, {}).get(c)) for c in currencies]}
        for m in sorted(recent | set(by_month), reverse=True)
    ]
    initial = {k: request.GET[k] for k in ("month", "currency") if k in request.GET}
    return {
        "rows": rows,
        "currencies": currencies,
        "in_use": in_use,
        "reporting_currency": tenant.default_currency,
        "form": form or ExchangeRateForm(initial=initial),
        "upload": upload or RatesCsvForm(),
        "can_write": can_write(request),
    }


@staff_view(FINANCE)
def rates(request: HttpRequest) -> HttpResponseBase:
    tenant = current_tenant(request)
    if request.GET.get("export") == "csv":
        # The import's own columns first, so that an export can be edited and imported back.
        return csv_response(
            "exchange-rates.csv",
            ["month", "currency", "rate", "source", "entered_by", "entered_at"],
            (
                [_label(r.month), r.currency, r.rate.normalize(), r.source, r.entered_by, r.entered_at.isoformat()]
                for r in exchange_rate_list(tenant=tenant)
            ),
            tenant=tenant,
        )
    return render(request, "backoffice/analytics/rates.html", _rates_context(request, tenant))


@staff_view(WRITERS)
@require_POST
def rate_set_view(request: HttpRequest) -> HttpResponse:
    tenant = current_tenant(request)
    form = ExchangeRateForm(request.POST)
    if form.is_valid():
        month = form.cleaned_data["month"]
        try:
            exchange_rates_set(
                tenant=tenant,
                rates=[RateInput(_label(month), form.cleaned_data["currency"], form.cleaned_data["rate"])],
                actor=current_actor(request),
                at=timezone.now(),
            )
        except DomainError as exc:
            form.apply_domain_errors(exc)
        else:
            messages.success(request, _("Rate saved."))
            return redirect("backoffice:analytics-rates")
    return render(request, "backoffice/analytics/rates.html", _rates_context(request, tenant, form=form), status=422)


@staff_view(WRITERS)
@require_POST
def rates_import_view(request: HttpRequest) -> HttpResponse:
    tenant = current_tenant(request)
    upload = RatesCsvForm(request.POST, request.FILES)
    if upload.is_valid():
        try:
            written = exchange_rates_import_csv(
                tenant=tenant, content=upload.cleaned_data["file"], actor=current_actor(request), at=timezone.now()
            )
        except DomainError as exc:
            upload.add_error(None, exc.detail if not exc.errors else _("Nothing was imported: fix these lines."))
            for error in exc.errors:
                upload.add_error(None, "%s: %s" % (error.field, error.message))
        else:
            messages.success(request, _("%(n)d rates imported.") % {"n": len(written)})
            return redirect("backoffice:analytics-rates")
    return render(
        request, "backoffice/analytics/rates.html", _rates_context(request, tenant, upload=upload), status=422
    )
