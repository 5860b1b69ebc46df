"""The commission statements API (specs/partners.md, "API"): a partner's statements by month, one
statement with its lines, its approval, its payment, its PDF and CSV. Staff keys only: partner
keys reach the partner routes (/api/v1/partner/statements, ``partners.api.partner_views``), which
answer the same way for the key's partner's statements."""

from collections.abc import Iterable
from typing import Any

from django.db.models import Prefetch
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_platform.api.fields import ChoiceText
from billing_platform.api.pagination import LIST_PARAMETERS, CursorPagination, paginated
from billing_platform.api.serializers import StrictSerializer, problems
from billing_platform.content_security import pdf_policy
from billing_platform.errors import NotFound
from billing_platform.money import round_minor
from customers.models import Partner
from partners.models import CommissionLeg, CommissionLine, CommissionStatement, StatementStatus
from partners.plans import LEGS
from partners.statements import (
    month_label,
    month_parse,
    statement_approve,
    statement_get,
    statement_list,
    statement_mark_paid,
)
from tenancy.api import request_actor, request_tenant
from tenancy.models import Tenant


class PartnerNotFound(NotFound):
    code = "partner_not_found"


def _partner(tenant: Tenant, code: str) -> Partner:
    partner = Partner.objects.filter(tenant=tenant, code=code).first()
    if partner is None:
        raise PartnerNotFound("No partner %s." % code)
    return partner


def _with_lines(qs: Any) -> Any:
    return qs.prefetch_related(
        Prefetch("lines", queryset=CommissionLine.objects.select_related("invoice", "customer").order_by("id"))
    )


def _amount(value: Any, currency: str) -> str:
    return str(round_minor(value, currency))


class StatementLineOutputSerializer(serializers.Serializer):
    invoice = serializers.CharField(help_text="the invoice's number")
    customer = serializers.CharField(help_text="the customer's external_id")
    leg = ChoiceText(choices=CommissionLeg.choices)
    net_collected = serializers.CharField(
        help_text="the leg's net amount collected in the month (negative when a credit note or refund took it back)"
    )
    rate = serializers.CharField(help_text="the percentage applied; a graduated leg's effective rate")
    amount = serializers.CharField(help_text="the commission (negative: a clawback)")


class StatementOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    partner = serializers.CharField(help_text="the partner's code")
    month = serializers.CharField(help_text="YYYY-MM, in the tenant's time zone")
    status = ChoiceText(choices=StatementStatus.choices)
    currency = serializers.CharField()
    lines = StatementLineOutputSerializer(many=True)
    total = serializers.CharField()
    built_at = serializers.DateTimeField()
    approved_at = serializers.DateTimeField(allow_null=True)
    approved_by = serializers.CharField()
    paid_at = serializers.DateTimeField(allow_null=True)
    paid_reference = serializers.CharField()


def statement_data(statement: CommissionStatement) -> dict[str, Any]:
    currency = statement.currency
    lines: Iterable[CommissionLine] = statement.lines.all()
    ordered = sorted(lines, key=lambda x: (x.invoice.number, LEGS.index(x.leg)))
    return {
        "id": str(statement.pk),
        "partner": statement.partner.code,
        "month": month_label(statement.month),
        "status": statement.status,
        "currency": currency,
        "lines": [
            {
                "invoice": x.invoice.number,
                "customer": x.customer.external_id,
                "leg": x.leg,
                "net_collected": _amount(x.net_collected, currency),
                "rate": f"{x.rate.normalize():f}",
                "amount": _amount(x.amount, currency),
            }
            for x in ordered
        ],
        "total": _amount(statement.total, currency),
        "built_at": serializers.DateTimeField().to_representation(statement.built_at),
        "approved_at": serializers.DateTimeField().to_representation(statement.approved_at)
        if statement.approved_at
        else None,
        "approved_by": statement.approved_by,
        "paid_at": serializers.DateTimeField().to_representation(statement.paid_at) if statement.paid_at else None,
        "paid_reference": statement.paid_reference,
    }


def statement_with_lines(request: Request, pk: str, partner: Partner | None = None) -> CommissionStatement:
    """The tenant's statement ``pk`` with its lines (of ``partner`` when given: another partner's is
    not found)."""
    tenant = request_tenant(request)
    found = statement_get(tenant=tenant, pk=pk, partner=partner)
    return _with_lines(statement_list(tenant=tenant)).get(pk=found.pk)


def statements_page(view: APIView, request: Request, partner: Partner) -> Response:
    """A page of the partner's statements, newest first, of ``?month=`` only when given."""
    raw = request.query_params.get("month")
    month = month_parse(raw) if raw else None
    paginator = CursorPagination()
    qs = _with_lines(statement_list(tenant=request_tenant(request), partner=partner, month=month))
    page: Any = paginator.paginate_queryset(qs, request, view=view)
    return paginator.get_paginated_response([statement_data(s) for s in page])


def statement_pdf_response(statement: CommissionStatement) -> HttpResponse:
    from partners.documents import statement_filename, statement_pdf

    response = HttpResponse(statement_pdf(statement), content_type="application/pdf")
    response["Content-Disposition"] = 'inline; filename="%s"' % statement_filename(statement, "pdf")
    return response


def statement_csv_response(statement: CommissionStatement) -> HttpResponse:
    from partners.documents import statement_csv, statement_filename

    response = HttpResponse(statement_csv(statement), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="%s"' % statement_filename(statement, "csv")
    return response


STATEMENT_PDF_RESPONSES: dict[Any, Any] = {
    (200, "application/pdf"): OpenApiResponse(
        OpenApiTypes.BINARY, description="The statement in the partner's language (a draft is marked so)"
    ),
    **problems(404),
}
STATEMENT_CSV_RESPONSES: dict[Any, Any] = {
    (200, "text/csv"): OpenApiResponse(
        OpenApiTypes.STR,
        description="One row per line: invoice, customer, leg, net_collected, rate, amount",
    ),
    **problems(404),
}


class MarkPaidInputSerializer(StrictSerializer):
    reference = serializers.CharField(max_length=200, help_text="the tenant's payment reference (a transfer's)")


class PartnerStatementListApi(APIView):
    @extend_schema(
        operation_id="partners_statements_list",
        description="The partner's commission statements, newest first: one per month and currency.",
        parameters=[*LIST_PARAMETERS, OpenApiParameter("month", str, description="YYYY-MM: that month's only")],
        responses={200: paginated(StatementOutputSerializer, "CommissionStatementPage"), **problems(404, 422)},
    )
    def get(self, request: Request, code: str) -> Response:
        return statements_page(self, request, _partner(request_tenant(request), code))


class PartnerStatementDetailApi(APIView):
    @extend_schema(
        operation_id="partner_statements_retrieve",
        responses={200: StatementOutputSerializer, **problems(404)},
    )
    def get(self, request: Request, pk: str) -> Response:
        return Response(statement_data(statement_with_lines(request, pk)))


class PartnerStatementApproveApi(APIView):
    @extend_schema(
        operation_id="partner_statements_approve",
        request=None,
        description="Approve a draft: it never changes again, and what comes later for its months lands on the "
        "next statement. 409 `statement_not_draft` when it is not a draft; 409 `earlier_statement_draft` while "
        "an earlier month of the partner in that currency is still a draft.",
        responses={200: StatementOutputSerializer, **problems(404, 409)},
    )
    def post(self, request: Request, pk: str) -> Response:
        statement = statement_with_lines(request, pk)
        statement_approve(statement=statement, actor=request_actor(request), at=timezone.now())
        return Response(statement_data(statement_with_lines(request, pk)))


class PartnerStatementMarkPaidApi(APIView):
    @extend_schema(
        operation_id="partner_statements_mark_paid",
        request=MarkPaidInputSerializer,
        description="Mark an approved statement paid, with the payment's reference. 409 `statement_not_approved` "
        "for a draft or a statement already paid.",
        responses={200: StatementOutputSerializer, **problems(400, 404, 409, 422)},
    )
    def post(self, request: Request, pk: str) -> Response:
        statement = statement_with_lines(request, pk)
        serializer = MarkPaidInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        statement_mark_paid(
            statement=statement,
            reference=serializer.validated_data["reference"],
            actor=request_actor(request),
            at=timezone.now(),
        )
        return Response(statement_data(statement_with_lines(request, pk)))


class PartnerStatementPdfApi(APIView):
    @extend_schema(operation_id="partner_statements_pdf", responses=STATEMENT_PDF_RESPONSES)
    @pdf_policy
    def get(self, request: Request, pk: str) -> HttpResponse:
        return statement_pdf_response(statement_with_lines(request, pk))


class PartnerStatementCsvApi(APIView):
    @extend_schema(operation_id="partner_statements_csv", responses=STATEMENT_CSV_RESPONSES)
    def get(self, request: Request, pk: str) -> HttpResponse:
        return statement_csv_response(statement_with_lines(request, pk))
