"""Recognition runs and revenue periods: start a month's run (Celery), follow it, list the months
and close one."""

from typing import Any

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_platform.api.idempotency import idempotent
from billing_platform.api.pagination import LIST_PARAMETERS, CursorPagination, paginated
from billing_platform.api.serializers import problems
from revrec.api import run_serializers as s
from revrec.errors import PeriodNotFound
from revrec.periods import period_close, period_list, recognition_run_create, recognition_run_get, recognition_run_list
from tenancy.api import request_actor, request_tenant

PERIOD_PARAMETER = OpenApiParameter(
    "period",
    str,
    location=OpenApiParameter.PATH,
    pattern=s.MONTH_PATTERN,
    description="The calendar month, YYYY-MM.",
)


class RecognitionRunListCreateApi(APIView):
    @extend_schema(
        operation_id="revenue_runs_list",
        description="Recognition runs, newest first; `period` keeps one month's.",
        parameters=[
            *LIST_PARAMETERS,
            OpenApiParameter("period", str, pattern=s.MONTH_PATTERN, description="Only this month's runs, YYYY-MM."),
        ],
        responses={200: paginated(s.RecognitionRunOutputSerializer, "RecognitionRunPage"), **problems(400, 422)},
    )
    def get(self, request: Request) -> Response:
        raw = request.query_params.get("period")
        month = None
        if raw is not None:
            field = s.PeriodField()
            month = field.run_validation(raw)
        runs = recognition_run_list(tenant=request_tenant(request), month=month)
        paginator = CursorPagination()
        page: Any = paginator.paginate_queryset(runs, request, view=self)
        return paginator.get_paginated_response(s.RecognitionRunOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="revenue_runs_create",
        description="Queue the recognition run of a month: a Celery task goes through the contracts by chunks, "
        "posting what each obligation recognizes in the month (once per obligation and month: running a month again "
        "posts only what is still due). Answers 202 with the run; follow it with GET /revenue/runs/{id}. Refused: a "
        "month that has not begun in the tenant's time zone (422 `revenue_period_not_ended`), a closed month (409 "
        "`revenue_period_closed`), a month whose run is queued or running (409 `recognition_run_in_progress`).",
        request=s.RecognitionRunInputSerializer,
        responses={202: s.RecognitionRunOutputSerializer, **problems(400, 409, 422)},
    )
    @idempotent
    def post(self, request: Request) -> Response:
        serializer = s.RecognitionRunInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        run = recognition_run_create(
            tenant=request_tenant(request),
            month=serializer.validated_data["period"],
            actor=request_actor(request),
            at=timezone.now(),
        )
        return Response(s.RecognitionRunOutputSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class RecognitionRunDetailApi(APIView):
    @extend_schema(
        operation_id="revenue_runs_retrieve",
        description="A recognition run: its status, its progress in contracts, what it posted and why it failed.",
        responses={200: s.RecognitionRunOutputSerializer, **problems(404)},
    )
    def get(self, request: Request, pk: str) -> Response:
        run = recognition_run_get(tenant=request_tenant(request), pk=pk)
        return Response(s.RecognitionRunOutputSerializer(run).data)


class RevenuePeriodListApi(APIView):
    @extend_schema(
        operation_id="revenue_periods_list",
        description="Every month a recognition run or a journal entry touched, newest first, on one page (`next` is "
        "null): open or closed, the revenue its journal posted by currency and stream, its latest run.",
        responses={200: paginated(s.RevenuePeriodSerializer, "RevenuePeriodPage")},
    )
    def get(self, request: Request) -> Response:
        rows = period_list(tenant=request_tenant(request))
        return Response({"results": s.RevenuePeriodSerializer(rows, many=True).data, "next": None})


class RevenuePeriodCloseApi(APIView):
    @extend_schema(
        operation_id="revenue_periods_close",
        description="Close a month for good: nothing posts in it any more (corrections post in the next open month), "
        "and `revenue.period_closed` is sent. The month must have ended in the tenant's time zone (422 "
        "`revenue_period_not_ended`), its latest recognition run must have succeeded (409 "
        "`revenue_period_not_recognized`), and every earlier month with journal entries must be closed (409 "
        "`earlier_revenue_period_open`). A month no run touched is 404; a closed one 409 `revenue_period_closed`.",
        parameters=[PERIOD_PARAMETER],
        request=None,
        responses={200: s.RevenuePeriodSerializer, **problems(404, 409, 422)},
    )
    @idempotent
    def post(self, request: Request, period: str) -> Response:
        field = s.PeriodField()
        try:
            month = field.run_validation(period)
        except Exception:
            raise PeriodNotFound("No revenue period %s: a period is a month, YYYY-MM." % period[:20]) from None
        row = period_close(tenant=request_tenant(request), month=month, actor=request_actor(request), at=timezone.now())
        return Response(s.RevenuePeriodSerializer(row).data)
