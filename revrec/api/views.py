from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from django.utils import timezone
from djmoney.money import Money
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_platform.api.serializers import problems
from billing_platform.errors import DomainError, FieldError, InvalidInput
from billing_platform.periods import add_months, local_date
from revrec.api import serializers as s
from revrec.metrics import CurrencyMrr, CustomerMrr, MonthMrr, MrrSummary, mrr_in_reporting_currency, mrr_report
from tenancy.api import request_tenant
from tenancy.models import Tenant

# The longest report: ten years of months.
MAX_MONTHS = 120
MONTH = "A month, YYYY-MM, between the years 1900 and 9999."
# What the schema says of a month (1900-01 to 9999-12): a request it calls valid is never a 400.
MONTH_PATTERN = "^(19|[2-9][0-9])[0-9]{2}-(0[1-9]|1[0-2])$"


@dataclass(frozen=True)
class MonthRow:
    month: str
    start: Money
    end: Money
    new: Money
    expansion: Money
    contraction: Money
    churn: Money
    reactivation: Money
    devices: int
    arpd: Money | None
    customers: list[CustomerMrr]


@dataclass
class CurrencyRows:
    currency: str
    months: list[MonthRow] = field(default_factory=list)


@dataclass(frozen=True)
class MrrReport:
    start: str
    end: str
    reporting_currency: str
    currencies: list[CurrencyRows]
    reporting: dict[str, Any]
    missing_rates: list[dict[str, str]]


def _month(name: str, raw: str) -> date:
    """``YYYY-MM`` as the first day of that month; anything else is a 400 naming the parameter."""
    parts = raw.split("-")
    if len(parts) == 2 and len(parts[0]) == 4 and len(parts[1]) == 2 and raw.isascii() and "".join(parts).isdigit():
        year, month = int(parts[0]), int(parts[1])
        if 1900 <= year <= 9999 and 1 <= month <= 12:
            return date(year, month, 1)
    raise DomainError(
        "%s is not a month: %s" % (name, MONTH), code="invalid_query", errors=[FieldError(name, "invalid", MONTH)]
    )


def month_param(request: Request, name: str) -> date | None:
    """The query parameter ``name`` as a month's first day, None when absent; a 400 when malformed."""
    raw = request.query_params.get(name)
    return None if raw is None else _month(name, raw)


def month_label(day: date) -> str:
    return "%04d-%02d" % (day.year, day.month)


def month_range(request: Request, *, tenant: Tenant, longest: int) -> tuple[date, date]:
    """The ``from`` and ``to`` months of a report (first days): ``to`` defaults to the current month
    (tenant's time zone), ``from`` to 11 months before ``to``. Malformed: 400; ``from`` after ``to``
    or more than ``longest`` months: 422, a rule the schema cannot state."""
    today = local_date(timezone.now(), tenant.timezone)
    end = month_param(request, "to") or date(today.year, today.month, 1)
    start = month_param(request, "from")
    if start is None:
        year, month = add_months(end.year, end.month, -11)
        start = date(max(year, 1900), month, 1)
    span = (end.year - start.year) * 12 + end.month - start.month + 1
    if span < 1:
        raise InvalidInput("from is after to.", errors=[FieldError("from", "after_to", "At most to.")])
    if span > longest:
        message = "At most %d months." % longest
        raise InvalidInput("The report is too long: %s" % message, errors=[FieldError("from", "too_long", message)])
    return start, end


def _by_currency(months: list[MonthMrr]) -> list[CurrencyRows]:
    """The report per currency, then per month: every month of a currency that appears at all, a
    month without customers in it written as zeros."""
    rows: dict[str, CurrencyRows] = {}
    for month in months:
        for currency in month.currencies:
            rows.setdefault(currency.currency, CurrencyRows(currency.currency))
    for month in months:
        present = {c.currency: c for c in month.currencies}
        for code, target in rows.items():
            totals = present.get(code) or _empty(code)
            target.months.append(
                MonthRow(
                    month=month_label(month.month),
                    start=totals.start,
                    end=totals.end,
                    new=totals.new,
                    expansion=totals.expansion,
                    contraction=totals.contraction,
                    churn=totals.churn,
                    reactivation=totals.reactivation,
                    devices=totals.devices,
                    arpd=totals.arpd,
                    customers=totals.customers,
                )
            )
    return list(rows.values())


def _reporting(summary: MrrSummary) -> dict[str, Any]:
    months = [{**asdict(m), "month": month_label(m.month)} for m in summary.months]
    return {"currency": summary.reporting_currency, "months": months, "retention": asdict(summary.retention)}


def _empty(currency: str) -> CurrencyMrr:
    zero = Money(0, currency)
    return CurrencyMrr(currency, zero, zero, zero, zero, zero, zero, zero, 0, None, [])


class MrrReportApi(APIView):
    @extend_schema(
        operation_id="reports_mrr",
        description="MRR at the end of each calendar month (tenant's time zone) and its movements: new, expansion, "
        "contraction, churn and reactivation, in total and per customer, so that end = start + new + expansion - "
        "contraction - churn + reactivation. MRR is the recurring service fees normalised to a month (per-device "
        "fees x the devices paying at the instant, flat fees; quarterly / 3, yearly / 12), at the prices in effect "
        "with the customer's overrides, without tax; hardware, usage and one-time fees are not MRR. `currencies`: "
        "amounts in each customer's currency, the tenant's first, not converted. `reporting`: every currency "
        "converted at each month's exchange rate (GET /exchange_rates) into the reporting currency, with ARPD (MRR "
        "÷ paying devices) and NRR per month and over the months; a month missing a rate for a currency in use is "
        "listed in `missing_rates` and its converted amounts are null, never converted at 1.",
        parameters=[
            OpenApiParameter(
                "from",
                OpenApiTypes.STR,
                pattern=MONTH_PATTERN,
                description="First month, YYYY-MM; default 11 before to.",
            ),
            OpenApiParameter(
                "to",
                OpenApiTypes.STR,
                pattern=MONTH_PATTERN,
                description="Last month, YYYY-MM; default the current month.",
            ),
        ],
        responses={200: s.MrrReportWithRatesSerializer, **problems(400, 422)},
    )
    def get(self, request: Request) -> Response:
        tenant = request_tenant(request)
        start, end = month_range(request, tenant=tenant, longest=MAX_MONTHS)
        months = mrr_report(tenant_id=tenant.pk, start=start, end=end)
        summary = mrr_in_reporting_currency(tenant=tenant, months=months)
        report = MrrReport(
            month_label(start),
            month_label(end),
            tenant.default_currency,
            _by_currency(months),
            _reporting(summary),
            [{"month": month_label(m), "currency": c} for m, c in summary.missing_rates],
        )
        return Response(s.MrrReportWithRatesSerializer(report).data)
