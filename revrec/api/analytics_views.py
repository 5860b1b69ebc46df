"""Exchange rates (``GET/PUT /exchange_rates``) and usage statistics (``GET /reports/usage``).

Views stay thin: they read the query, call ``revrec.rates`` or ``revrec.usage_stats`` and write
the answer."""

from dataclasses import asdict
from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_platform.api.pagination import LIST_PARAMETERS, CursorPagination, paginated
from billing_platform.api.serializers import problems
from billing_platform.errors import DomainError, FieldError
from revrec.api import analytics_serializers as s
from revrec.api.views import MONTH_PATTERN, month_label, month_param, month_range
from revrec.models import ExchangeRate
from revrec.rates import RateInput, exchange_rate_list, exchange_rates_set
from revrec.usage_stats import GROUP_BY, usage_statistics
from tenancy.api import request_actor, request_tenant

CURRENCY_PATTERN = "^[A-Z]{3}$"


class RatePagination(CursorPagination):
    ordering = ("-month", "currency")


def currency_param(request: Request) -> str | None:
    raw = request.query_params.get("currency")
    if raw is None:
        return None
    if len(raw) != 3 or not raw.isascii() or not raw.isalpha() or not raw.isupper():
        message = "Three capital letters (ISO 4217)."
        raise DomainError(
            "currency is not a currency code: %s" % message,
            code="invalid_query",
            errors=[FieldError("currency", "invalid", message)],
        )
    return raw


class ExchangeRatesApi(APIView):
    @extend_schema(
        operation_id="exchange_rates_list",
        description="The tenant's monthly exchange rates into the reporting currency (the tenant's), latest month "
        "first. An amount in `currency` times `rate` is the amount reported; a month without a rate for a currency "
        "in use is reported as missing by the reports, never converted at 1.",
        parameters=[
            *LIST_PARAMETERS,
            OpenApiParameter("from", OpenApiTypes.STR, pattern=MONTH_PATTERN, description="First month, YYYY-MM."),
            OpenApiParameter("to", OpenApiTypes.STR, pattern=MONTH_PATTERN, description="Last month, YYYY-MM."),
            OpenApiParameter("currency", OpenApiTypes.STR, pattern=CURRENCY_PATTERN, description="One currency."),
        ],
        responses={200: paginated(s.ExchangeRateSerializer, "ExchangeRatePage"), **problems(400, 422)},
    )
    def get(self, request: Request) -> Response:
        qs = exchange_rate_list(
            tenant=request_tenant(request),
            start=month_param(request, "from"),
            end=month_param(request, "to"),
            currency=currency_param(request),
        )
        paginator = RatePagination()
        page: Any = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(s.ExchangeRateSerializer(page, many=True).data)

    @extend_schema(
        operation_id="exchange_rates_update",
        description="Set monthly rates: each replaces the tenant's rate of its month and currency, if any. All of "
        "them are written or none: a bad row is a 422 naming it (`rates[2].rate`). The answer lists the rates "
        "written.",
        request=s.ExchangeRatesPutSerializer,
        responses={200: s.ExchangeRatesSerializer, **problems(400, 422)},
    )
    def put(self, request: Request) -> Response:
        serializer = s.ExchangeRatesPutSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        written = exchange_rates_set(
            tenant=request_tenant(request),
            rates=[RateInput(r["month"], r["currency"], r["rate"]) for r in serializer.validated_data["rates"]],
            actor=request_actor(request),
            at=timezone.now(),
        )
        fresh = ExchangeRate.objects.filter(pk__in=[r.pk for r in written]).order_by("month", "currency")
        return Response(s.ExchangeRatesSerializer({"rates": fresh}).data)


# The longest usage report: three years of months (it reads raw events for devices).
MAX_USAGE_MONTHS = 36


class UsageReportApi(APIView):
    @extend_schema(
        operation_id="reports_usage",
        description="Usage statistics per meter and calendar month (tenant's time zone): the meter's quantity "
        "(its aggregation applied over the month, from the usage rollups), optionally per group (`group_by`: the "
        "events' `device_type` or `region` dimension, the meter's time band, or the customer); the top 10 "
        "customers and devices over the months; and anomalies, a device's day (its customer's local day) whose "
        "usage exceeds 3 x the median of its own daily usage over the 30 days before (days with usage, at least "
        "7 of them). Without `meter`, every meter of the tenant; an unknown meter gives no meter. Top devices, "
        "anomalies and `unique_count` meters read the raw events: a range that reaches a month whose raw events "
        "are archived gives 409 `usage_archived` (the months in `archived_months`).",
        parameters=[
            OpenApiParameter("meter", OpenApiTypes.STR, description="A meter's code."),
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
            OpenApiParameter("group_by", OpenApiTypes.STR, enum=list(GROUP_BY), description="Group each month by."),
        ],
        responses={200: s.UsageReportSerializer, **problems(400, 409, 422)},
    )
    def get(self, request: Request) -> Response:
        tenant = request_tenant(request)
        start, end = month_range(request, tenant=tenant, longest=MAX_USAGE_MONTHS)
        group_by = request.query_params.get("group_by")
        if group_by is not None and group_by not in GROUP_BY:
            message = "One of %s." % ", ".join(GROUP_BY)
            raise DomainError(
                "group_by is not a grouping: %s" % message,
                code="invalid_query",
                errors=[FieldError("group_by", "invalid", message)],
            )
        meters = usage_statistics(
            tenant=tenant, start=start, end=end, meter_code=request.query_params.get("meter"), group_by=group_by
        )
        report = {
            "start": month_label(start),
            "end": month_label(end),
            "group_by": group_by or "",
            "meters": [
                {**asdict(m), "months": [{**asdict(x), "month": month_label(x.month)} for x in m.months]}
                for m in meters
            ],
        }
        return Response(s.UsageReportSerializer(report).data)
