"""Back-office revenue pages (Finance → Revenue): revenue by stream stacked by month, the waterfall,
contract balances and billings vs revenue for a range of months (by default the twelve to the
current one), and the journal of a period with its entries' lines and debit and credit totals.
Each table downloads as CSV.

Finance roles read; nothing is written here. Views stay thin: the figures are
``revrec.reports``'s, the ones the API returns.
"""

from collections.abc import Iterable, Iterator
from datetime import date
from typing import Any

from babel.dates import format_skeleton
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import get_language, pgettext
from django.utils.translation import gettext as _
from djmoney.money import Money

from backoffice.access import FINANCE, current_tenant, staff_view
from backoffice.csv_export import csv_response
from backoffice.formatting import query_string
from backoffice.pages import page_of
from backoffice.revenue.forms import JournalFilterForm, MonthRangeForm
from billing_platform.formatting import babel_locale
from billing_platform.money import round_minor
from billing_platform.periods import add_months, local_date
from revrec.models import Account, JournalSource
from revrec.reports import (
    STREAMS,
    CurrencyRevenue,
    RevenueReport,
    StreamRevenue,
    journal_entry_list,
    journal_line_list,
    journal_totals,
    revenue_report,
)
from tenancy.models import Tenant

TABLES = ("revenue", "balances", "billings", "waterfall")


def month_text(month: date) -> str:
    """A month in the reader's language: "Mar 2026", "mars 2026"."""
    return format_skeleton("yMMM", month, locale=babel_locale(get_language()))


def _amount(value: Money) -> str:
    """An amount for a chart's data: a decimal string at the currency's minor unit."""
    return str(round_minor(value.amount, value.currency.code))


def _label(month: date) -> str:
    return "%04d-%02d" % (month.year, month.month)


def _this_month(tenant: Tenant) -> date:
    return local_date(timezone.now(), tenant.timezone).replace(day=1)


def _range(request: HttpRequest, tenant: Tenant) -> tuple[MonthRangeForm, date, date]:
    """The months asked for; by default, or when they make no range, the twelve to this month."""
    end = _this_month(tenant)
    year, month = add_months(end.year, end.month, -11)
    start = date(year, month, 1)
    bound = "start" in request.GET or "end" in request.GET
    form = MonthRangeForm(request.GET if bound else None, initial={"start": start, "end": end})
    if bound and form.is_valid():
        start = form.cleaned_data["start"] or start
        end = form.cleaned_data["end"] or end
        if start > end:
            start = end
    return form, start, end


def _account_labels() -> dict[str, str]:
    """The ledger's accounts as an accountant names them (``Cash`` is the bank account here, not a
    payment method)."""
    return {
        Account.RECEIVABLE: pgettext("ledger account", "Accounts receivable"),
        Account.TAX_PAYABLE: pgettext("ledger account", "Tax payable"),
        Account.CONTRACT_BALANCE: pgettext("ledger account", "Contract balance"),
        Account.REVENUE_HARDWARE: pgettext("ledger account", "Revenue: hardware"),
        Account.REVENUE_SERVICE: pgettext("ledger account", "Revenue: service"),
        Account.REVENUE_USAGE: pgettext("ledger account", "Revenue: usage"),
        Account.REVENUE_FEES: pgettext("ledger account", "Revenue: fees"),
        Account.CASH: pgettext("ledger account", "Cash"),
    }


def _source_labels() -> dict[str, str]:
    return {
        JournalSource.INVOICE: pgettext("journal source", "Invoice"),
        JournalSource.RECOGNITION: pgettext("journal source", "Recognition"),
        JournalSource.PAYMENT: pgettext("journal source", "Payment"),
    }


def _stream_labels() -> dict[str, str]:
    return {"hardware": _("Hardware"), "service": _("Service"), "usage": _("Usage"), "fees": _("Fees")}


def _totals(rows: list[StreamRevenue], currency: str) -> dict[str, Money]:
    zero = Money(0, currency)
    totals = {stream: sum((getattr(row, stream) for row in rows), zero) for stream in STREAMS}
    totals["total"] = sum((row.total for row in rows), zero)
    return totals


def _charts(currency: CurrencyRevenue) -> dict[str, Any]:
    """The data of a currency's two charts: revenue stacked by stream, and the waterfall (the
    months ahead, then the unscheduled part as a bar of its own)."""
    labels = _stream_labels()
    months = [month_text(row.month) for row in currency.revenue]
    waterfall = currency.waterfall
    return {
        "currency": currency.currency,
        "revenue": {
            "labels": months,
            "datasets": [
                {"label": labels[s], "data": [_amount(getattr(row, s)) for row in currency.revenue]} for s in STREAMS
            ],
        },
        "waterfall": {
            "labels": [month_text(m.month) for m in waterfall.months] + [_("Unscheduled")],
            "label": _("To recognize"),
            "data": [_amount(m.amount) for m in waterfall.months] + [_amount(waterfall.unscheduled)],
        },
    }


@staff_view(FINANCE)
def revenue(request: HttpRequest) -> HttpResponse:
    """The report's tables and charts per currency: five queries whatever the range holds."""
    tenant = current_tenant(request)
    form, start, end = _range(request, tenant)
    report = revenue_report(tenant_id=tenant.pk, start=start, end=end)
    currencies = [
        {
            "report": c,
            "revenue_rows": [(month_text(row.month), row) for row in c.revenue],
            "balance_rows": [(month_text(row.month), row) for row in c.contract_balances],
            "billing_rows": [(month_text(row.month), row) for row in c.billings],
            "waterfall_rows": [(month_text(m.month), m.amount) for m in c.waterfall.months],
            "totals": _totals(c.revenue, c.currency),
            "billed": sum((b.billings for b in c.billings), Money(0, c.currency)),
            "recognized": sum((b.revenue for b in c.billings), Money(0, c.currency)),
        }
        for c in report.currencies
    ]
    context = {
        "form": form,
        "report": report,
        "currencies": currencies,
        "charts": [_charts(c) for c in report.currencies],
        "first": month_text(start),
        "last": month_text(end),
        "query": query_string(start=_label(start), end=_label(end)),
        "stream_labels": [_stream_labels()[s] for s in STREAMS],
    }
    return render(request, "backoffice/revenue/reports.html", context)


def _rows(table: str, report: RevenueReport) -> tuple[list[str], Iterator[list[Any]]]:
    """A table of the report as CSV: its header and its rows, every currency, a currency column."""
    labels = _stream_labels()
    if table == "revenue":
        header = [_("Currency"), _("Month"), *(labels[s] for s in STREAMS), _("Total")]
        rows: Iterable[list[Any]] = (
            [c.currency, _label(r.month), *(getattr(r, s) for s in STREAMS), r.total]
            for c in report.currencies
            for r in c.revenue
        )
    elif table == "balances":
        header = [
            _("Currency"),
            _("Month end"),
            _("Deferred revenue"),
            _("Contract assets"),
            pgettext("balance", "Net"),
        ]
        rows = (
            [c.currency, _label(b.month), b.deferred_revenue, b.contract_asset, b.net]
            for c in report.currencies
            for b in c.contract_balances
        )
    elif table == "billings":
        header = [_("Currency"), _("Month"), _("Billings"), _("Revenue"), _("Billings − revenue")]
        rows = (
            [c.currency, _label(b.month), b.billings, b.revenue, b.difference]
            for c in report.currencies
            for b in c.billings
        )
    else:
        header = [_("Currency"), _("Month"), _("To recognize")]
        rows = (
            line
            for c in report.currencies
            for line in [
                *([c.currency, _label(m.month), m.amount] for m in c.waterfall.months),
                [c.currency, _("Unscheduled"), c.waterfall.unscheduled],
            ]
        )
    return header, iter(rows)


@staff_view(FINANCE)
def revenue_export(request: HttpRequest, table: str) -> StreamingHttpResponse:
    if table not in TABLES:
        raise Http404("No such table.")
    tenant = current_tenant(request)
    _form, start, end = _range(request, tenant)
    report = revenue_report(tenant_id=tenant.pk, start=start, end=end)
    header, rows = _rows(table, report)
    return csv_response(filename="revenue-%s-%s-%s.csv" % (table, _label(start), _label(end)), header=header, rows=rows)


def _journal_filters(request: HttpRequest, tenant: Tenant) -> tuple[JournalFilterForm, date, str | None]:
    """The period asked for (this month by default, or when it is not one) and the source."""
    period = _this_month(tenant)
    bound = bool(request.GET.get("period") or request.GET.get("source_type"))
    form = JournalFilterForm(request.GET if bound else None, initial={"period": period})
    source = None
    if bound and form.is_valid():
        period = form.cleaned_data["period"] or period
        source = form.cleaned_data["source_type"] or None
    return form, period, source


@staff_view(FINANCE)
def journal(request: HttpRequest) -> HttpResponse:
    """A period's entries, 50 a page, each with its lines; the debits and credits of the whole
    period per currency. A fixed number of queries per page."""
    tenant = current_tenant(request)
    form, period, source = _journal_filters(request, tenant)
    page = page_of(
        request, journal_entry_list(tenant_id=tenant.pk, period=period, source_type=source).order_by("date", "id")
    )
    params = {"period": _label(period), "source_type": source or ""}
    accounts, sources = _account_labels(), _source_labels()
    context = {
        "form": form,
        "page": page,
        "entries": [
            (
                entry,
                sources.get(entry.source_type, entry.source_type),
                [(line, accounts.get(line.account, line.account)) for line in entry.lines.all()],
            )
            for entry in page
        ],
        "period": month_text(period),
        "totals": journal_totals(tenant_id=tenant.pk, period=period, source_type=source),
        "query": query_string(**params),
    }
    return render(request, "backoffice/revenue/journal.html", context)


@staff_view(FINANCE)
def journal_export(request: HttpRequest) -> StreamingHttpResponse:
    """The period's lines, one a row, streamed from the database."""
    tenant = current_tenant(request)
    _form, period, source = _journal_filters(request, tenant)
    lines = journal_line_list(tenant_id=tenant.pk, period=period, source_type=source)
    header = [
        _("Entry"),
        _("Date"),
        _("Period"),
        _("Source"),
        _("Source id"),
        _("Subscription"),
        _("Currency"),
        _("Account"),
        _("Debit"),
        _("Credit"),
    ]
    rows = (
        [
            line.entry_id,
            line.entry.date,
            _label(line.entry.period),
            line.entry.source_type,
            line.entry.source_id,
            line.entry.contract.subscription.external_id if line.entry.contract else "",
            line.currency,
            line.account,
            line.debit,
            line.credit,
        ]
        for line in lines.iterator(chunk_size=2000)
    )
    return csv_response(filename="journal-%s.csv" % _label(period), header=header, rows=rows, tenant=tenant)
