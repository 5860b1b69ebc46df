"""The partner's commissions (specs/partners.md, "Commissions"): a bar per month over the last 12
months (each statement's total, and the current month's commission accrued so far), the same
figures as a table, and the statements to download."""

from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.http import Http404, HttpRequest, HttpResponse
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from billing_platform.errors import DomainError
from partners.commissions import month_before
from partners.dashboard.access import current_partner, partner_render, partner_view
from partners.documents import statement_csv, statement_filename, statement_pdf
from partners.models import CommissionStatement
from partners.statements import (
    MONTHS_SHOWN,
    MonthCommission,
    commissions_by_month,
    current_month,
    statement_get,
    statement_list,
)


def _months(last: date, count: int) -> list[date]:
    months = [last]
    for _step in range(count - 1):
        months.append(month_before(months[-1]))
    return months[::-1]


def commission_chart(months: list[date], rows: list[MonthCommission]) -> dict[str, Any]:
    """The chart's data (``static/portal-charts.js``, "daily" bars): one series per currency, a bar
    per month, 0 for a month without commission."""
    currencies = sorted({r.currency for r in rows})
    totals: dict[tuple[date, str], Decimal] = {}
    for r in rows:
        totals[(r.month, r.currency)] = totals.get((r.month, r.currency), Decimal(0)) + r.total
    return {
        "labels": [formats.date_format(m, "M Y") for m in months],
        "datasets": [
            {"label": "%s (%s)" % (_("Commission"), c), "data": [float(totals.get((m, c), Decimal(0))) for m in months]}
            for c in currencies
        ],
        "stacked": False,
    }


@partner_view()
def commissions(request: HttpRequest) -> HttpResponse:
    ctx = current_partner(request)
    now = timezone.now()
    rows = commissions_by_month(tenant=ctx.tenant, partner=ctx.partner, at=now)
    this_month = current_month(tenant=ctx.tenant, at=now)
    months = _months(this_month, MONTHS_SHOWN)
    statements = list(statement_list(tenant=ctx.tenant, partner=ctx.partner))
    context = {
        "rows": rows[::-1],
        "chart": commission_chart(months, rows) if rows else None,
        "statements": statements,
        "this_month": this_month,
    }
    return partner_render(request, "partners/dashboard/commissions.html", context)


def _statement(request: HttpRequest, pk: UUID) -> CommissionStatement:
    """The partner's statement ``pk``; another partner's, or an unknown id, is not found."""
    ctx = current_partner(request)
    try:
        statement = statement_get(tenant=ctx.tenant, pk=pk, partner=ctx.partner)
    except DomainError:
        raise Http404("No such statement.") from None
    statement.partner = ctx.partner
    ctx.partner.tenant = ctx.tenant
    return statement


@partner_view()
def statement_pdf_download(request: HttpRequest, pk: UUID) -> HttpResponse:
    statement = _statement(request, pk)
    response = HttpResponse(statement_pdf(statement), content_type="application/pdf")
    response["Content-Disposition"] = 'attachment; filename="%s"' % statement_filename(statement, "pdf")
    return response


@partner_view()
def statement_csv_download(request: HttpRequest, pk: UUID) -> HttpResponse:
    statement = _statement(request, pk)
    response = HttpResponse(statement_csv(statement), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="%s"' % statement_filename(statement, "csv")
    return response
