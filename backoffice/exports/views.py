"""Back-office "Exports": a list page's "Download CSV" (streamed at once when short, queued when
long), the user's exports with their status (HTMX polling while one is being written), and the
download of a finished one. A user sees and downloads their own exports in the current tenant only."""

import uuid
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _

from backoffice.access import EVERYONE, current_tenant, staff_view
from backoffice.csv_export import csv_response
from backoffice.exports.kinds import KINDS, ExportKind
from backoffice.exports.services import (
    ACTIVE,
    data_export_create,
    data_export_get,
    data_export_list,
    export_filename,
)
from backoffice.models import DataExport, DataExportStatus
from billing_platform.db_router import replica_reads, replica_rows
from usage.errors import UsageArchived


def _kind_or_404(request: HttpRequest, key: str) -> ExportKind:
    kind = KINDS.get(key)
    if kind is None:
        raise Http404("No such export.")
    membership = getattr(request, "membership", None)
    if membership is None or membership.role not in kind.roles:
        raise Http404("No such export.")
    return kind


@staff_view(EVERYONE)
def csv_download(request: HttpRequest, kind: str) -> HttpResponseBase:
    """The rows the list page shows with this query string, as CSV: streamed now up to
    ``DATA_EXPORT_STREAM_MAX_ROWS`` rows, else queued and announced on the Exports page."""
    export_kind = _kind_or_404(request, kind)
    tenant = current_tenant(request)
    params = export_kind.filter_of(request.GET)
    at = timezone.now()
    try:
        with replica_reads(tenant=tenant):
            count = export_kind.count(tenant, params)
    except UsageArchived as exc:
        messages.error(request, exc.detail)
        return redirect("backoffice:csv-jobs")
    if count <= settings.DATA_EXPORT_STREAM_MAX_ROWS:
        return csv_response(
            filename=export_filename(export_kind, at=at),
            header=export_kind.columns,
            rows=replica_rows(export_kind.rows(tenant, params), tenant=tenant),
            tenant=tenant,
        )
    data_export_create(tenant=tenant, user=request.user, kind=export_kind, params=params, at=at)
    messages.info(
        request,
        _("This export is long: it is being written and will be listed here, ready to download, in a moment."),
    )
    return redirect("backoffice:csv-jobs")


def _context(request: HttpRequest) -> dict[str, Any]:
    exports = list(data_export_list(tenant=current_tenant(request), user=request.user, at=timezone.now())[:50])
    return {
        "exports": [{"export": e, "label": _label(e)} for e in exports],
        "polling": any(e.status in ACTIVE for e in exports),
        "tz_name": current_tenant(request).timezone,
        "threshold": settings.DATA_EXPORT_STREAM_MAX_ROWS,
        "keep_days": settings.DATA_EXPORT_KEEP_DAYS,
    }


def _label(export: DataExport) -> str:
    kind = KINDS.get(export.kind)
    return str(kind.label) if kind else export.kind


@staff_view(EVERYONE)
def csv_jobs(request: HttpRequest) -> HttpResponse:
    return render(request, "backoffice/exports/list.html", _context(request))


@staff_view(EVERYONE)
def csv_jobs_status(request: HttpRequest) -> HttpResponse:
    """The table alone, polled by HTMX every two seconds while an export is queued or running; once
    none is, it comes back without its trigger, which stops the polling."""
    return render(request, "backoffice/exports/_rows.html", _context(request))


@staff_view(EVERYONE)
def csv_job_file(request: HttpRequest, pk: str) -> HttpResponseBase:
    """A finished export's file, to its requester in its tenant only: anyone else's is not found."""
    try:
        uuid.UUID(pk)
    except ValueError:
        raise Http404("No such export.") from None
    export = data_export_get(tenant=current_tenant(request), user=request.user, pk=pk, at=timezone.now())
    if export is None or export.status != DataExportStatus.DONE:
        raise Http404("No such export.")
    # A requester whose role no longer opens the kind's page no longer downloads what it exported.
    kind = KINDS.get(export.kind)
    membership = getattr(request, "membership", None)
    if kind is None or membership is None or membership.role not in kind.roles:
        raise Http404("No such export.")
    content = DataExport.objects.filter(pk=export.pk).values_list("content", flat=True).get()
    if content is None:
        raise Http404("No such export.")
    response = HttpResponse(bytes(content), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="%s"' % export.filename
    return response
