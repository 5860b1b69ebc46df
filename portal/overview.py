"""The portal's overview: what the customer owes and when, the invoice its open period will close on
(the projected total of ``GET /api/v1/customers/{id}/current_usage``, read from the same cache:
``invoicing.usage_cache``), its usage so far against the allowance, and its active devices."""

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from djmoney.money import Money

from billing_platform.errors import DomainError
from billing_platform.formatting import period_days
from billing_platform.periods import local_date
from catalog.selectors import meter_list
from invoicing.usage_cache import current_usage_data
from payments.reports import customer_receivables
from portal.access import current_portal, portal_view
from portal.devices import active_device_count
from portal.invoices import customer_next_due


def _number(value: Decimal) -> int | float:
    """A quantity for the chart, which only needs its size (the table beside it has the exact figures)."""
    return int(value) if value == value.to_integral_value() else float(value)


def usage_rows(usage: Mapping[str, Any], tz: str, names: dict[str, str]) -> list[dict[str, Any]]:
    """Each usage component of each live subscription: its quantity so far, its allowance and what
    is billed beyond it, as ``current_usage`` gives them (its JSON, ``usage``); ``names`` are the
    meters' by code."""
    rows = []
    for s in usage["subscriptions"]:
        first, last = period_days(_instant(s["period_start"]), _instant(s["period_end"]), tz)
        for c in s["components"]:
            quantity, allowance = Decimal(c["quantity"]), Decimal(c["allowance"])
            rows.append(
                {
                    "subscription": s["subscription"],
                    "plan": s["plan"],
                    "first": first,
                    "last": last,
                    "meter": c["meter"],
                    "name": names.get(c["meter"], c["meter"]),
                    "quantity": quantity,
                    "allowance": allowance,
                    "billable": Decimal(c["billable_quantity"]),
                    "amount": Decimal(c["amount"]),
                    "share": int(quantity * 100 / allowance) if allowance > 0 else None,
                }
            )
    return rows


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


def usage_chart(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The chart's data (``static/portal-charts.js``): per meter, the usage so far beside the allowance."""
    several = len({r["subscription"] for r in rows}) > 1
    return {
        "labels": [("%s · %s" % (r["name"], r["subscription"])) if several else r["name"] for r in rows],
        "datasets": [
            {"label": _("Used so far"), "data": [_number(r["quantity"]) for r in rows]},
            {"label": _("Included"), "data": [_number(r["allowance"]) for r in rows]},
        ],
    }


@portal_view()
def overview(request: HttpRequest) -> HttpResponse:
    portal = current_portal(request)
    tenant, customer = portal.tenant, portal.customer
    now = timezone.now()
    owed = customer_receivables(
        tenant=tenant, customer_id=customer.pk, currency=customer.currency, as_of=local_date(now, tenant.timezone)
    )
    next_due = customer_next_due(portal)
    usage: dict[str, Any] | None = None
    rows: list[dict[str, Any]] = []
    try:
        data = current_usage_data(tenant=tenant, external_id=customer.external_id, at=now)
    except DomainError:
        data = None
    if data is not None:
        currency = data["currency"]
        projected = data["projected"]
        usage = {
            "currency": currency,
            "projected": {
                "total": Money(projected["total"], currency),
                "net_total": Money(projected["net_total"], currency),
            },
        }
        codes = {c["meter"] for s in data["subscriptions"] for c in s["components"]}
        names = dict(meter_list(tenant=tenant).filter(code__in=codes).values_list("code", "name")) if codes else {}
        rows = usage_rows(data, customer.timezone, names)
    context = {
        "owed": owed.total,
        "overdue": owed.total - owed.current,
        "next_due": next_due,
        "usage": usage,
        "usage_rows": rows,
        "chart": usage_chart(rows) if rows else None,
        "active_devices": active_device_count(portal),
        "today": local_date(now, customer.timezone),
    }
    return render(request, "portal/overview/overview.html", context)
