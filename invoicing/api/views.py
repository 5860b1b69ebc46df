from typing import Any

from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_platform.api.fields import AmountString, DecimalString, DetailField, MoneyAmountField, QuantityString
from billing_platform.api.filters import choice_filters, choice_parameter
from billing_platform.api.idempotency import idempotent
from billing_platform.api.pagination import LIST_PARAMETERS, CursorPagination, paginated
from billing_platform.api.serializers import problems
from billing_platform.content_security import pdf_policy
from billing_platform.errors import invalid
from billing_platform.validation import validate_year
from catalog.api.serializers import TaxLineSerializer
from catalog.models import Aggregation, TaxCategory
from invoicing.api import serializers as s
from invoicing.documents import DocumentKind, invoice_document
from invoicing.lines import LineType
from invoicing.models import InvoiceKind, InvoiceStatus
from invoicing.selectors import (
    bill_run_get,
    bill_run_list,
    invoice_get,
    invoice_row_get,
    invoice_rows_list,
)
from invoicing.services import (
    bill_run_create,
    credit_note_create,
    invoice_finalize,
    invoice_metadata_update,
    invoice_void,
)
from invoicing.usage_cache import current_usage_data
from subscriptions.models import SubscriptionStatus
from tenancy.api import request_actor, request_tenant


class BillRunListCreateApi(APIView):
    @extend_schema(
        operation_id="bill_runs_list",
        parameters=LIST_PARAMETERS,
        responses={200: paginated(s.BillRunOutputSerializer, "BillRunPage"), **problems(422)},
    )
    def get(self, request: Request) -> Response:
        paginator = CursorPagination()
        page: Any = paginator.paginate_queryset(bill_run_list(tenant=request_tenant(request)), request, view=self)
        return paginator.get_paginated_response(s.BillRunOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="bill_runs_create",
        request=s.BillRunInputSerializer,
        description="Bill every customer due on `billing_date`, in Celery, chunked by customer. "
        "Idempotent: a second run creates no invoice that already exists. A date that has not arrived yet, "
        "in the tenant's time zone or in one of its customers', is refused (422, `billing_date_not_arrived`).",
        responses={202: s.BillRunOutputSerializer, **problems(400, 422)},
    )
    @idempotent
    def post(self, request: Request) -> Response:
        serializer = s.BillRunInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        billing_date = serializer.validated_data["billing_date"]
        validate_year(billing_date, field="billing_date")
        run = bill_run_create(
            tenant=request_tenant(request), billing_date=billing_date, actor=request_actor(request), at=timezone.now()
        )
        run.refresh_from_db()
        return Response(s.BillRunOutputSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class BillRunDetailApi(APIView):
    @extend_schema(operation_id="bill_runs_retrieve", responses={200: s.BillRunOutputSerializer, **problems(404)})
    def get(self, request: Request, pk: str) -> Response:
        return Response(s.BillRunOutputSerializer(bill_run_get(tenant=request_tenant(request), pk=pk)).data)


class InvoiceListApi(APIView):
    @extend_schema(
        operation_id="invoices_list",
        parameters=[
            *LIST_PARAMETERS,
            OpenApiParameter("customer", str),
            choice_parameter("status", InvoiceStatus.values),
            choice_parameter("kind", InvoiceKind.values),
            OpenApiParameter("date_from", OpenApiTypes.DATE),
            OpenApiParameter("date_to", OpenApiTypes.DATE),
        ],
        responses={200: paginated(s.InvoiceOutputSerializer, "InvoicePage"), **problems(422)},
    )
    def get(self, request: Request) -> Response:
        from datetime import date

        dates = {}
        for name in ("date_from", "date_to"):
            raw = request.query_params.get(name)
            if raw is not None:  # an empty date is refused, as the schema's format says
                try:
                    dates[name] = date.fromisoformat(raw)
                except ValueError:
                    raise invalid(name, "invalid", "A date, YYYY-MM-DD.") from None
        filters = choice_filters(request, {"status": InvoiceStatus.values, "kind": InvoiceKind.values})
        # Read and written as rows (as InvoiceOutputSerializer writes them): one query whatever the
        # number of invoices, lines, taxes and attempts, and no model instance.
        rows = invoice_rows_list(
            tenant=request_tenant(request),
            columns=s.invoice_columns(),
            customer=request.query_params.get("customer"),
            status=filters["status"],
            kind=filters["kind"],
            **dates,
        )
        paginator = CursorPagination()
        page: Any = paginator.paginate_queryset(rows, request, view=self)
        return paginator.get_paginated_response(s.invoices_write(page))


class InvoiceDetailApi(APIView):
    @extend_schema(operation_id="invoices_retrieve", responses={200: s.InvoiceOutputSerializer, **problems(404)})
    def get(self, request: Request, pk: str) -> Response:
        row = invoice_row_get(tenant=request_tenant(request), pk=pk, columns=s.invoice_columns())
        return Response(s.invoices_write([row])[0])

    @extend_schema(
        operation_id="invoices_update",
        description="Changes an invoice's metadata, at any status (metadata is not part of the legal document): "
        "the keys given are set, a key given null is removed, the others are kept.",
        request=s.InvoicePatchSerializer,
        responses={200: s.InvoiceOutputSerializer, **problems(400, 404, 422)},
    )
    def patch(self, request: Request, pk: str) -> Response:
        tenant = request_tenant(request)
        invoice = invoice_get(tenant=tenant, pk=pk)  # 404 before validating the body
        serializer = s.InvoicePatchSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        invoice_metadata_update(
            tenant=tenant,
            actor=request_actor(request),
            at=timezone.now(),
            invoice_id=str(invoice.pk),
            metadata=serializer.validated_data["metadata"],
        )
        return Response(s.InvoiceOutputSerializer(invoice_get(tenant=tenant, pk=pk)).data)


class InvoiceFinalizeApi(APIView):
    @extend_schema(
        operation_id="invoices_finalize",
        request=None,
        description="Numbers the draft, renders its documents and e-mails them. A document that would not be a "
        "valid EN 16931 e-invoice is refused (422, `einvoice_incomplete`), with one entry per missing field in "
        "`errors` (`seller.vat_number`, `buyer.address_line1`...).",
        responses={200: s.InvoiceOutputSerializer, **problems(404, 409, 422)},
    )
    def post(self, request: Request, pk: str) -> Response:
        tenant = request_tenant(request)
        invoice_finalize(invoice=invoice_get(tenant=tenant, pk=pk), actor=request_actor(request), at=timezone.now())
        return Response(s.InvoiceOutputSerializer(invoice_get(tenant=tenant, pk=pk)).data)


class InvoiceVoidApi(APIView):
    @extend_schema(
        operation_id="invoices_void",
        request=s.VoidInputSerializer,
        responses={200: s.InvoiceOutputSerializer, **problems(404, 409, 422)},
    )
    def post(self, request: Request, pk: str) -> Response:
        tenant = request_tenant(request)
        invoice = invoice_get(tenant=tenant, pk=pk)
        serializer = s.VoidInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        invoice_void(
            invoice=invoice, actor=request_actor(request), at=timezone.now(), reason=serializer.validated_data["reason"]
        )
        return Response(s.InvoiceOutputSerializer(invoice_get(tenant=tenant, pk=pk)).data)


class CreditNoteCreateApi(APIView):
    @extend_schema(
        operation_id="invoices_credit_notes_create",
        request=s.CreditNoteInputSerializer,
        responses={201: s.InvoiceOutputSerializer, **problems(404, 409, 422)},
    )
    @idempotent
    def post(self, request: Request, pk: str) -> Response:
        tenant = request_tenant(request)
        invoice = invoice_get(tenant=tenant, pk=pk)
        serializer = s.CreditNoteInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        lines = serializer.validated_data.get("lines")
        note = credit_note_create(
            invoice=invoice,
            actor=request_actor(request),
            at=timezone.now(),
            lines=[dict(x) for x in lines] if lines is not None else None,
            reason=serializer.validated_data["reason"],
        )
        return Response(
            s.InvoiceOutputSerializer(invoice_get(tenant=tenant, pk=str(note.pk))).data, status=status.HTTP_201_CREATED
        )


class _DocumentApi(APIView):
    kind: DocumentKind = "pdf"

    @pdf_policy
    def get(self, request: Request, pk: str) -> HttpResponse:
        body, name = invoice_document(invoice_get(tenant=request_tenant(request), pk=pk), kind=self.kind)
        response = HttpResponse(body, content_type="application/pdf")
        response["Content-Disposition"] = 'inline; filename="%s"' % name
        return response


class InvoicePdfApi(_DocumentApi):
    kind = "pdf"

    @extend_schema(
        operation_id="invoices_pdf",
        responses={
            (200, "application/pdf"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The invoice PDF (a draft is marked as such)"
            ),
            **problems(404),
        },
    )
    def get(self, request: Request, pk: str) -> HttpResponse:
        return super().get(request, pk)


class InvoiceFacturxApi(_DocumentApi):
    kind = "facturx"

    @extend_schema(
        operation_id="invoices_facturx",
        responses={
            (200, "application/pdf"): OpenApiResponse(
                OpenApiTypes.BINARY,
                description="PDF/A-3 with the EN 16931 CII XML embedded. 409 `document_not_ready` for a draft; 409 "
                "`facturx_not_available` for a document without one (a currency with three decimals, a seller "
                "outside the EU that has not turned Factur-X on): its PDF is the document.",
            ),
            **problems(404, 409),
        },
    )
    def get(self, request: Request, pk: str) -> HttpResponse:
        return super().get(request, pk)


class CurrentUsageComponentSerializer(serializers.Serializer):
    product = serializers.CharField()
    meter = serializers.CharField()
    aggregation = serializers.ChoiceField(choices=Aggregation.choices)
    pooled = serializers.BooleanField()
    quantity = QuantityString(help_text="the meter's aggregate over the open period so far")
    event_count = serializers.IntegerField()
    allowance = QuantityString(help_text="included_per_device x devices active in the period")
    billable_quantity = QuantityString()
    amount = AmountString(help_text="amount so far, rounded once to the currency's minor unit")
    detail = DetailField(help_text="tier or matrix breakdown of the amount")


class CurrentUsageSubscriptionSerializer(serializers.Serializer):
    subscription = serializers.CharField(help_text="the subscription's external_id")
    plan = serializers.CharField()
    status = serializers.ChoiceField(choices=SubscriptionStatus.choices)
    period_start = serializers.DateTimeField()
    period_end = serializers.DateTimeField()
    active_devices = serializers.IntegerField(help_text="devices active at any moment of the period")
    components = CurrentUsageComponentSerializer(many=True)


# A ``DraftLine`` of the projected invoice (its ``description``: in English, as always).
class ProjectedLineSerializer(serializers.Serializer):
    subscription = serializers.CharField(source="subscription.external_id")
    type = serializers.ChoiceField(choices=LineType.choices)
    product = serializers.CharField(source="product_code")
    description = serializers.CharField()
    period_start = serializers.DateTimeField(source="period.start", allow_null=True)
    period_end = serializers.DateTimeField(source="period.end", allow_null=True)
    quantity = QuantityString()
    unit_amount = DecimalString(allow_null=True)
    amount = AmountString()
    tax_category = serializers.ChoiceField(choices=TaxCategory.choices)
    vat_category = serializers.CharField(help_text="EN 16931 VAT category code the tax rules give the line")
    devices = serializers.ListField(child=serializers.CharField())
    detail = DetailField()


class ProjectedInvoiceSerializer(serializers.Serializer):
    lines = ProjectedLineSerializer(many=True)
    net_total = MoneyAmountField(places="exact")
    taxes = TaxLineSerializer(many=True)
    total = MoneyAmountField(places="exact")
    warnings = serializers.ListField(child=serializers.CharField())


class CurrentUsageSerializer(serializers.Serializer):
    customer = serializers.CharField(help_text="the customer's external_id")
    currency = serializers.CharField()
    at = serializers.DateTimeField()
    subscriptions = CurrentUsageSubscriptionSerializer(many=True)
    projected = ProjectedInvoiceSerializer(help_text="the invoice the open periods close on, as of now")


class CurrentUsageApi(APIView):
    """Live usage of a customer's open periods, priced, and the projected invoice."""

    @extend_schema(
        operation_id="customers_current_usage",
        description=(
            "Per live subscription and usage component of the open period: quantity, allowance, billable "
            "quantity, amount so far and the tier/matrix detail; and the projected invoice at the period's "
            "end (usage so far, hardware instalments due, prorated and in-advance service fees, taxes)."
        ),
        responses={200: CurrentUsageSerializer, **problems(404)},
    )
    def get(self, request: Request, external_id: str) -> Response:
        return Response(current_usage_data(tenant=request_tenant(request), external_id=external_id, at=timezone.now()))
