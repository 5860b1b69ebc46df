from typing import Any

from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_platform.api.idempotency import idempotent
from billing_platform.api.pagination import CursorPagination, paginated
from billing_platform.api.serializers import problems
from billing_platform.errors import invalid
from invoicing.api import serializers as s
from invoicing.errors import DocumentNotReady
from invoicing.selectors import bill_run_get, bill_run_list, invoice_get, invoice_list
from invoicing.services import bill_run_create, credit_note_create, invoice_finalize, invoice_void
from tenancy.api import request_actor, request_tenant

LIST_PARAMS = [OpenApiParameter("cursor", str), OpenApiParameter("limit", int, description="1 to 500, default 50")]


class BillRunListCreateApi(APIView):
    @extend_schema(
        operation_id="bill_runs_list",
        parameters=LIST_PARAMS,
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
        "Idempotent: a second run creates no invoice that already exists.",
        responses={202: s.BillRunOutputSerializer, **problems(400, 422)},
    )
    @idempotent
    def post(self, request: Request) -> Response:
        serializer = s.BillRunInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        billing_date = serializer.validated_data["billing_date"]
        if not 1971 <= billing_date.year <= 2999:
            raise invalid("billing_date", "out_of_range", "Use a year between 1971 and 2999.")
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
            *LIST_PARAMS,
            OpenApiParameter("customer", str),
            OpenApiParameter("status", str),
            OpenApiParameter("kind", str),
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
            if raw:
                try:
                    dates[name] = date.fromisoformat(raw)
                except ValueError:
                    raise invalid(name, "invalid", "A date, YYYY-MM-DD.") from None
        qs = invoice_list(
            tenant=request_tenant(request),
            customer=request.query_params.get("customer"),
            status=request.query_params.get("status"),
            kind=request.query_params.get("kind"),
            **dates,
        )
        paginator = CursorPagination()
        page: Any = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(s.InvoiceOutputSerializer(page, many=True).data)


class InvoiceDetailApi(APIView):
    @extend_schema(operation_id="invoices_retrieve", responses={200: s.InvoiceOutputSerializer, **problems(404)})
    def get(self, request: Request, pk: str) -> Response:
        return Response(s.InvoiceOutputSerializer(invoice_get(tenant=request_tenant(request), pk=pk)).data)


class InvoiceFinalizeApi(APIView):
    @extend_schema(
        operation_id="invoices_finalize", request=None, responses={200: s.InvoiceOutputSerializer, **problems(404, 409)}
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
    kind = "pdf"

    def get(self, request: Request, pk: str) -> HttpResponse:
        invoice = invoice_get(tenant=request_tenant(request), pk=pk)
        from invoicing import pdf as documents

        if self.kind == "facturx":
            if invoice.status == "draft":
                raise DocumentNotReady("A draft has no Factur-X document: finalize it first.")
            body = bytes(invoice.pdf) if invoice.pdf else documents.invoice_facturx_pdf(invoice)
        else:
            body = bytes(invoice.pdf) if invoice.pdf else documents.invoice_pdf(invoice)
        name = (invoice.number or "draft-%s" % invoice.pk) + ".pdf"
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
                OpenApiTypes.BINARY, description="PDF/A-3 with the EN 16931 CII XML embedded"
            ),
            **problems(404, 409),
        },
    )
    def get(self, request: Request, pk: str) -> HttpResponse:
        return super().get(request, pk)
