"""The revenue reports of revrec.md ("Reports"), a subscription's schedules and the journal. Views
stay thin: they read the query, call ``revrec.reports`` and serialize."""

from datetime import date
from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_platform.api.filters import choice_filters, choice_parameter
from billing_platform.api.pagination import LIST_PARAMETERS, CursorPagination, paginated
from billing_platform.api.serializers import problems
from billing_platform.errors import DomainError, FieldError, InvalidInput
from billing_platform.periods import add_months, local_date
from revrec.api import report_serializers as s
from revrec.api.views import MAX_MONTHS, MONTH_PATTERN
from revrec.api.views import _month as month_parse
from revrec.models import JournalSource
from revrec.reports import contract_schedule_get, journal_entry_list, revenue_report, revenue_stream_report
from tenancy.api import request_tenant
from tenancy.models import Tenant

SUBSCRIPTION_ID_MAX_LENGTH = 200

RANGE_PARAMETERS = [
    OpenApiParameter(
        "from", OpenApiTypes.STR, pattern=MONTH_PATTERN, description="First month, YYYY-MM; default 11 before to."
    ),
    OpenApiParameter(
        "to", OpenApiTypes.STR, pattern=MONTH_PATTERN, description="Last month, YYYY-MM; default the current month."
    ),
]


def month_range(request: Request, tenant: Tenant) -> tuple[date, date]:
    """``from`` and ``to`` as the first days of their months: by default the twelve months to the
    current one (tenant's time zone). A malformed month is a 400; two well-formed months that make
    no report (``from`` after ``to``, more than ``MAX_MONTHS``) a 422."""
    raw_from, raw_to = request.query_params.get("from"), request.query_params.get("to")
    today = local_date(timezone.now(), tenant.timezone)
    end = month_parse("to", raw_to) if raw_to is not None else date(today.year, today.month, 1)
    if raw_from is not None:
        start = month_parse("from", raw_from)
    else:
        year, month = add_months(end.year, end.month, -11)
        start = date(max(year, 1900), month, 1)
    span = (end.year - start.year) * 12 + end.month - start.month + 1
    if span < 1:
        raise InvalidInput("from is after to.", errors=[FieldError("from", "after_to", "At most to.")])
    if span > MAX_MONTHS:
        message = "At most %d months." % MAX_MONTHS
        raise InvalidInput("The report is too long: %s" % message, errors=[FieldError("from", "too_long", message)])
    return start, end


class RevenueReportApi(APIView):
    @extend_schema(
        operation_id="revenue_report",
        description="Revenue by stream (hardware, service, usage, fees) and calendar month from the recognition "
        "entries; contract balances at each month's end (per contract, billed - recognized on the contract "
        "balance account: positive is deferred revenue, negative a contract asset, summed apart); billings "
        "(net invoiced, credit notes deducted) vs revenue by month; and the waterfall as of `to`: what is "
        "allocated and not yet recognized, spread over the months ahead by the obligations' schedules, the part "
        "of obligations without dates yet as `unscheduled`. Per currency, the tenant's first, never converted.",
        parameters=RANGE_PARAMETERS,
        responses={200: s.RevenueReportSerializer, **problems(400, 422)},
    )
    def get(self, request: Request) -> Response:
        tenant = request_tenant(request)
        start, end = month_range(request, tenant)
        report = revenue_report(tenant_id=tenant.pk, start=start, end=end)
        return Response(s.RevenueReportSerializer(report).data)


class RevenueStreamReportApi(APIView):
    @extend_schema(
        operation_id="reports_revenue",
        description="Revenue by stream (hardware, service, usage, fees) and calendar month, as recognized "
        "(specs/revrec.md): the same figures as `revenue` in GET /revenue/report. Per currency, the tenant's "
        "first, never converted.",
        parameters=RANGE_PARAMETERS,
        responses={200: s.StreamReportSerializer, **problems(400, 422)},
    )
    def get(self, request: Request) -> Response:
        tenant = request_tenant(request)
        start, end = month_range(request, tenant)
        report = revenue_stream_report(tenant_id=tenant.pk, start=start, end=end)
        return Response(s.StreamReportSerializer(report).data)


class RevenueScheduleApi(APIView):
    @extend_schema(
        operation_id="revenue_schedules",
        description="A subscription's revenue contract: its transaction price and each performance obligation "
        "with its allocated amount, dates, and per month what its schedule plans and what the recognition runs "
        "posted. 404 `subscription_not_found`, or `revenue_contract_not_found` while its contract is not built.",
        parameters=[
            OpenApiParameter(
                "subscription",
                {"type": "string", "minLength": 1, "maxLength": SUBSCRIPTION_ID_MAX_LENGTH},
                required=True,
                description="The subscription's external id.",
            )
        ],
        responses={200: s.ContractScheduleSerializer, **problems(400, 404)},
    )
    def get(self, request: Request) -> Response:
        tenant = request_tenant(request)
        subscription = request.query_params.get("subscription")
        if not subscription:
            message = "The subscription's external id."
            raise DomainError(
                "subscription is required: %s" % message,
                code="invalid_query",
                errors=[FieldError("subscription", "required", message)],
            )
        schedule = contract_schedule_get(tenant=tenant, subscription=subscription)
        return Response(s.ContractScheduleSerializer(schedule).data)


class JournalPagination(CursorPagination):
    """The journal in the order it was dated."""

    ordering = ("date", "id")


class JournalEntryListApi(APIView):
    @extend_schema(
        operation_id="revenue_journal",
        description="The revenue journal's entries, each balanced (its lines' debits equal their credits), in "
        "date order: invoices (Dr receivable / Cr tax payable / Cr contract balance), recognition (Dr contract "
        "balance / Cr revenue by stream) and payments (Dr cash / Cr receivable). Without `period`, every period.",
        parameters=[
            *LIST_PARAMETERS,
            OpenApiParameter(
                "period", OpenApiTypes.STR, pattern=MONTH_PATTERN, description="The month entries post in, YYYY-MM."
            ),
            choice_parameter("source_type", JournalSource.values, "What the entries post."),
        ],
        responses={200: paginated(s.JournalEntrySerializer, "JournalEntryPage"), **problems(400, 422)},
    )
    def get(self, request: Request) -> Response:
        tenant = request_tenant(request)
        raw = request.query_params.get("period")
        period = month_parse("period", raw) if raw is not None else None
        filters = choice_filters(request, {"source_type": JournalSource.values})
        qs = journal_entry_list(tenant_id=tenant.pk, period=period, source_type=filters["source_type"])
        paginator = JournalPagination()
        page: Any = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(s.JournalEntrySerializer(page, many=True).data)
