"""The journal's export to an ERP: targets, exports of a month (each journal entry once per target)
and their files."""

from typing import Any

from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_platform.api.idempotency import idempotent
from billing_platform.api.pagination import LIST_PARAMETERS, CursorPagination, paginated
from billing_platform.api.serializers import problems
from revrec.api import export_serializers as s
from revrec.export import (
    COLUMNS,
    export_file,
    export_target_create,
    export_target_get,
    export_target_list,
    journal_export_create,
    journal_export_get,
    journal_export_list,
)
from tenancy.api import request_actor, request_tenant


class TargetPagination(CursorPagination):
    ordering = ("-created_at", "-id")


class ExportTargetListCreateApi(APIView):
    @extend_schema(
        operation_id="revenue_export_targets_list",
        description="Export targets (ERPs), newest first.",
        parameters=LIST_PARAMETERS,
        responses={200: paginated(s.ExportTargetOutputSerializer, "ExportTargetPage"), **problems(422)},
    )
    def get(self, request: Request) -> Response:
        paginator = TargetPagination()
        page: Any = paginator.paginate_queryset(export_target_list(tenant=request_tenant(request)), request, view=self)
        return paginator.get_paginated_response(s.ExportTargetOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="revenue_export_targets_create",
        description="A system that takes the journal: each journal entry is exported to it once. A name already "
        "taken is 409 `export_target_name_taken`.",
        request=s.ExportTargetInputSerializer,
        responses={201: s.ExportTargetOutputSerializer, **problems(400, 409, 422)},
    )
    @idempotent
    def post(self, request: Request) -> Response:
        serializer = s.ExportTargetInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        target = export_target_create(
            tenant=request_tenant(request),
            name=serializer.validated_data["name"],
            format=serializer.validated_data["format"],
            actor=request_actor(request),
            at=timezone.now(),
        )
        return Response(s.ExportTargetOutputSerializer(target).data, status=status.HTTP_201_CREATED)


class JournalExportListCreateApi(APIView):
    @extend_schema(
        operation_id="revenue_export_targets_exports_list",
        description="The target's exports, newest first.",
        parameters=LIST_PARAMETERS,
        responses={200: paginated(s.JournalExportOutputSerializer, "JournalExportPage"), **problems(404, 422)},
    )
    def get(self, request: Request, pk: str) -> Response:
        target = export_target_get(tenant=request_tenant(request), pk=pk)
        paginator = CursorPagination()
        page: Any = paginator.paginate_queryset(
            journal_export_list(target=target).select_related("target"), request, view=self
        )
        return paginator.get_paginated_response(s.JournalExportOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="revenue_export_targets_exports_create",
        description="Export the month's journal entries that this target has not taken yet: each entry goes to a "
        "target once, so a second export of the same month holds only the entries posted since (possibly none). "
        "Two exports to one target at once never take the same entry.",
        request=s.JournalExportInputSerializer,
        responses={201: s.JournalExportOutputSerializer, **problems(400, 404, 422)},
    )
    @idempotent
    def post(self, request: Request, pk: str) -> Response:
        target = export_target_get(tenant=request_tenant(request), pk=pk)
        serializer = s.JournalExportInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        export = journal_export_create(
            target=target, period=serializer.validated_data["period"], actor=request_actor(request), at=timezone.now()
        )
        return Response(s.JournalExportOutputSerializer(export).data, status=status.HTTP_201_CREATED)


class JournalExportDownloadApi(APIView):
    @extend_schema(
        operation_id="revenue_export_targets_exports_download",
        description="The export's file in its target's format, one row per journal line with the columns "
        "%s. CSV: a header row, comma separated, amounts with a dot. JSON: `{export, target, period, created_at, "
        "lines: [{...}]}`, amounts as strings. Debits equal credits per entry." % ", ".join(COLUMNS),
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="The CSV file."),
            (200, "application/json"): OpenApiResponse(OpenApiTypes.OBJECT, description="The JSON file."),
            **problems(404),
        },
    )
    def get(self, request: Request, pk: str, export_id: str) -> HttpResponse:
        target = export_target_get(tenant=request_tenant(request), pk=pk)
        export = journal_export_get(target=target, pk=export_id)
        chunks, content_type, name = export_file(export=export)
        # Written whole inside the request: its reads run under the request's tenant (row-level security).
        response = HttpResponse("".join(chunks), content_type=content_type)
        response["Content-Disposition"] = 'attachment; filename="%s"' % name
        return response
