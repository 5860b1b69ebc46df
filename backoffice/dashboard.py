"""The finance dashboard, the back-office's home page (analytics.md, "The finance dashboard"): today's
money and today's work, each figure counted as the list it links to counts its rows, and the charts
of the last twelve months.

Every figure comes from the function the report behind it calls, never from a second computation:

- MRR and its movements: ``revrec.metrics.mrr_report`` and ``mrr_in_reporting_currency`` (the MRR
  page); the card is the MRR at the end of this month and its change since the start of the month;
- revenue by leg: ``revrec.reports.revenue_stream_report`` (the revenue page), in the reporting
  currency;
- receivables and their aging: ``payments.reports.receivables_aging`` as of today (the receivables
  page), each currency's buckets converted at this month's rate;
- drafts and overdue invoices: ``invoicing.selectors.invoice_work_counts`` (the invoice list's
  ``status=draft&kind=invoice`` and ``payment=overdue`` filters); the last bill run:
  ``bill_run_last`` (the first row of the bill runs page);
- failed payments of the last ``FAILED_PAYMENT_DAYS`` days: ``payments.selectors.payment_failed_count``
  (the payments list's ``status=failed&date_from=…``);
- suspended subscriptions: ``subscriptions.selectors.subscription_status_counts`` (the subscriptions
  list's tab);
- active devices by month: ``subscriptions.selectors.active_devices_by_month``; usage by meter:
  ``revrec.usage_stats.usage_by_meter`` (the usage statistics' figures).

Amounts are in the tenant's reporting currency. A currency without a rate for the month is listed in
``missing_rates`` and the totals it enters are None, never converted at 1.

Who sees what: finance roles (``backoffice.access.FINANCE``) see everything; the other roles (support
agents) see the work that needs no money: drafts, suspended subscriptions, the last bill run, active
devices and usage. A fixed number of queries whatever the number of customers, invoices and months.
"""

from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext as _

from backoffice.formatting import decimal_plain
from billing_platform.money import round_minor
from billing_platform.periods import add_months, local_midnight
from invoicing.models import BillRun
from invoicing.selectors import bill_run_last, invoice_work_counts
from payments.reports import BUCKETS, receivables_aging
from payments.selectors import payment_failed_count
from revrec.metrics import MrrSummary, mrr_in_reporting_currency, mrr_report
from revrec.rates import RateTable
from revrec.reports import STREAMS, ReportingMonth, revenue_stream_report
from revrec.usage_stats import MeterMonths, usage_by_meter
from subscriptions.models import SubscriptionStatus
from subscriptions.selectors import active_devices_by_month, subscription_status_counts
from tenancy.models import Tenant

MONTHS = 12
# Failed payments count over the last 30 days, today included: older failures have been retried,
# dunned or written off, and the payments list keeps them.
FAILED_PAYMENT_DAYS = 30
# The usage chart draws this many meters (by code); the usage statistics page has them all.
MAX_METERS = 6
ZERO = Decimal(0)


def dashboard_months(today: date) -> list[date]:
    """The first days of the twelve months ending with ``today``'s."""
    months = []
    for back in range(MONTHS - 1, -1, -1):
        year, month = add_months(today.year, today.month, -back)
        months.append(date(year, month, 1))
    return months


@dataclass(frozen=True)
class WorkCards:
    """What needs someone today, without money."""

    drafts: int
    overdue: int  # invoices: their amounts are for finance
    suspended: int
    last_run: BillRun | None


@dataclass(frozen=True)
class AgingBucket:
    """One bucket of the receivables in the reporting currency; None when a currency in it lacks a rate."""

    name: str  # one of payments.reports.BUCKETS
    amount: Decimal | None


@dataclass(frozen=True)
class CurrencyOwed:
    """One currency's receivables and their overdue part, not converted."""

    currency: str
    total: Decimal
    overdue: Decimal
    invoices: int


@dataclass(frozen=True)
class MoneyCards:
    month: date  # this month's first day
    mrr: Decimal | None  # at the end of this month
    mrr_change: Decimal | None  # since the start of this month
    arpd: Decimal | None  # MRR at the end of this month ÷ its billable devices (None without a device)
    receivables: Decimal | None
    overdue: Decimal | None
    owed: list[CurrencyOwed]  # per currency, the reporting one first
    receivable_invoices: int
    overdue_invoices: int
    failed_payments: int
    failed_since: date


@dataclass(frozen=True)
class Dashboard:
    today: date
    reporting_currency: str
    months: list[date]
    work: WorkCards
    active_devices: list[tuple[date, int]]
    usage: list[MeterMonths]
    more_meters: bool
    # Finance only (None for the other roles):
    money: MoneyCards | None = None
    mrr: MrrSummary | None = None
    revenue: list[ReportingMonth] | None = None
    aging: list[AgingBucket] | None = None
    missing_rates: list[tuple[date, str]] | None = None


def work_cards(*, tenant: Tenant, today: date) -> WorkCards:
    """Drafts and overdue invoices, suspended subscriptions and the last bill run. Three queries."""
    counts = invoice_work_counts(tenant=tenant, today=today)
    suspended = subscription_status_counts(tenant=tenant).get(SubscriptionStatus.SUSPENDED, 0)
    return WorkCards(
        drafts=counts.drafts, overdue=counts.overdue, suspended=suspended, last_run=bill_run_last(tenant=tenant)
    )


def dashboard_get(*, tenant: Tenant, today: date, finance: bool) -> Dashboard:
    """The dashboard of ``today`` (the tenant's local day); the money only when ``finance``."""
    months = dashboard_months(today)
    usage = usage_by_meter(tenant=tenant, start=months[0], end=months[-1])
    common: dict[str, Any] = {
        "today": today,
        "reporting_currency": tenant.default_currency,
        "months": months,
        "work": work_cards(tenant=tenant, today=today),
        "active_devices": active_devices_by_month(tenant=tenant, months=months),
        "usage": usage[:MAX_METERS],
        "more_meters": len(usage) > MAX_METERS,
    }
    if not finance:
        return Dashboard(**common)

    mrr_months = mrr_report(tenant_id=tenant.pk, start=months[0], end=months[-1])
    aging = receivables_aging(tenant_id=tenant.pk, as_of=today)
    currencies = {c.currency for m in mrr_months for c in m.currencies} | {c.currency for c in aging.currencies}
    # One query for the rates of the MRR and the receivables (none when all is in the reporting currency).
    rates = RateTable.load(tenant=tenant, months=months, currencies=currencies)
    mrr = mrr_in_reporting_currency(tenant=tenant, months=mrr_months, rates=rates)
    this_month = mrr.months[-1]

    # Receivables: each currency's buckets at this month's rate, then added up.
    month = months[-1]
    buckets: dict[str, Decimal | None] = dict.fromkeys(BUCKETS, ZERO)
    owed, missing = [], set()
    for c in sorted(aging.currencies, key=lambda c: (c.currency != tenant.default_currency, c.currency)):
        if c.total.total.amount == 0:
            continue
        owed.append(
            CurrencyOwed(c.currency, c.total.total.amount, c.total.total.amount - c.total.current.amount, c.invoices)
        )
        for name in BUCKETS:
            converted = rates.convert(getattr(c.total, name).amount, c.currency, month)
            if converted is None:
                missing.add(c.currency)
                buckets[name] = None
            elif (so_far := buckets[name]) is not None:
                buckets[name] = so_far + converted
    receivables = overdue = None
    if not missing:
        receivables = sum((v or ZERO for v in buckets.values()), ZERO)
        overdue = receivables - (buckets["current"] or ZERO)

    failed_since = today - timedelta(days=FAILED_PAYMENT_DAYS - 1)
    revenue = revenue_stream_report(tenant_id=tenant.pk, start=months[0], end=months[-1])
    by_month = {r.month: r for r in revenue.in_reporting_currency}
    empty = [ReportingMonth(m, ZERO, ZERO, ZERO, ZERO, ZERO, []) for m in months]
    revenue_months = [_rounded(by_month.get(e.month, e), tenant) for e in empty]
    missing_rates = set(mrr.missing_rates) | {(month, c) for c in missing}
    missing_rates |= {(r.month, c) for r in revenue_months for c in r.missing_rates}
    change = None
    if this_month.end is not None and this_month.start is not None:
        change = this_month.end - this_month.start
    money = MoneyCards(
        month=month,
        mrr=this_month.end,
        mrr_change=change,
        arpd=this_month.arpd,
        receivables=receivables,
        overdue=overdue,
        owed=owed,
        receivable_invoices=sum(c.invoices for c in owed),
        overdue_invoices=common["work"].overdue,
        failed_payments=payment_failed_count(tenant=tenant, since=local_midnight(failed_since, tenant.timezone)),
        failed_since=failed_since,
    )
    return Dashboard(
        **common,
        money=money,
        mrr=mrr,
        revenue=revenue_months,
        aging=[AgingBucket(name, buckets[name]) for name in BUCKETS],
        missing_rates=sorted(missing_rates),
    )


def _rounded(month: ReportingMonth, tenant: Tenant) -> ReportingMonth:
    """A month of revenue at the reporting currency's minor unit (recognized amounts keep more places)."""

    def cut(value: Decimal | None) -> Decimal | None:
        return None if value is None else round_minor(value, tenant.default_currency)

    return replace(
        month,
        hardware=cut(month.hardware),
        service=cut(month.service),
        usage=cut(month.usage),
        fees=cut(month.fees),
        total=cut(month.total),
    )


def _label(month: date) -> str:
    return "%04d-%02d" % (month.year, month.month)


def _text(value: Decimal | None) -> str | None:
    """Amounts travel as decimal strings; a missing one as null (a gap, never zero)."""
    return None if value is None else str(value)


def bucket_labels() -> dict[str, str]:
    return {
        "current": _("Not yet due"),
        "days_1_30": _("1–30 days"),
        "days_31_60": _("31–60 days"),
        "days_61_90": _("61–90 days"),
        "over_90": _("Over 90 days"),
    }


def stream_labels() -> dict[str, str]:
    return {"hardware": _("Hardware"), "service": _("Service"), "usage": _("Usage"), "fees": _("Fees")}


def chart_data(dashboard: Dashboard) -> dict[str, Any]:
    """What ``static/dashboard.js`` draws, for ``json_script``: labels and series per chart."""
    labels = [_label(m) for m in dashboard.months]
    data: dict[str, Any] = {
        "devices": {"labels": labels, "label": _("Active devices"), "data": [n for _, n in dashboard.active_devices]},
        "usage": [
            {
                "label": "%s (%s)" % (m.name, m.meter),
                "labels": labels,
                "data": [str(decimal_plain(x.quantity, 0)) for x in m.months],
            }
            for m in dashboard.usage
        ],
    }
    if dashboard.mrr is not None:
        moves = ("new", "expansion", "reactivation", "contraction", "churn", "end")
        data["mrr"] = {
            "labels": labels,
            "series": {name: [_text(getattr(m, name)) for m in dashboard.mrr.months] for name in moves},
            "names": {
                "new": _("New"),
                "expansion": _("Expansion"),
                "reactivation": _("Reactivation"),
                "contraction": _("Contraction"),
                "churn": _("Churn"),
                "end": _("MRR"),
            },
        }
    if dashboard.revenue is not None:
        names = stream_labels()
        data["revenue"] = {
            "labels": labels,
            "datasets": [
                {"label": names[s], "data": [_text(getattr(m, s)) for m in dashboard.revenue]} for s in STREAMS
            ],
        }
    if dashboard.aging is not None:
        names = bucket_labels()
        data["aging"] = {
            "labels": [names[b.name] for b in dashboard.aging],
            "label": _("Receivables"),
            "data": [_text(b.amount) for b in dashboard.aging],
        }
    return data


# The dashboard's tables as CSV (``?export=<name>``): header and rows, as the charts show them.
WORK_EXPORTS = ("devices", "usage")
EXPORTS = (*WORK_EXPORTS, "mrr", "revenue", "aging")


def export_table(dashboard: Dashboard, name: str) -> tuple[list[str], list[list[Any]]]:
    currency = dashboard.reporting_currency
    if name == "devices":
        return ["month", "active_devices"], [[_label(m), n] for m, n in dashboard.active_devices]
    if name == "usage":
        return ["meter", "month", "quantity"], [
            [m.meter, _label(x.month), decimal_plain(x.quantity, 0)] for m in dashboard.usage for x in m.months
        ]
    if name == "mrr" and dashboard.mrr is not None:
        moves = ["start", "new", "expansion", "contraction", "churn", "reactivation", "end"]
        return ["month", "currency", *moves, "missing_rates", "arpd"], [
            [_label(m.month), currency, *(getattr(m, x) for x in moves), " ".join(m.missing), m.arpd]
            for m in dashboard.mrr.months
        ]
    if name == "revenue" and dashboard.revenue is not None:
        return ["month", "currency", *STREAMS, "total", "missing_rates"], [
            [_label(r.month), currency, *(getattr(r, s) for s in STREAMS), r.total, " ".join(r.missing_rates)]
            for r in dashboard.revenue
        ]
    if name == "aging" and dashboard.aging is not None:
        return ["as_of", "currency", "bucket", "amount"], [
            [dashboard.today, currency, b.name, b.amount] for b in dashboard.aging
        ]
    raise ValueError(name)
