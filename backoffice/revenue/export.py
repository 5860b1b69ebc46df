"""Back-office "ERP export": the tenant's export targets, a new export of a month to a target (the
month's journal entries that target has not taken yet), the exports with their files, and the
exports table as CSV. Finance roles read and download; owners and finance admins add targets and
export. The services are the API's (``revrec.export``)."""

import csv

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from backoffice.access import FINANCE, WRITERS, can_write, current_actor, current_tenant, staff_view
from backoffice.revenue.run_forms import ExportTargetForm, MonthForm
from billing_platform.errors import DomainError
from revrec.export import (
    export_file,
    export_target_create,
    export_target_get,
    export_target_list,
    journal_export_create,
    journal_export_get,
)
from revrec.models import ExportTarget, JournalExport
from revrec.periods import current_month, month_label, previous_month
from tenancy.models import Tenant

# Exports shown per target on the page (the CSV has them all).
RECENT_EXPORTS = 12


def _target_or_404(tenant: Tenant, pk: str) -> ExportTarget:
    try:
        return export_target_get(tenant=tenant, pk=pk)
    except DomainError:
        raise Http404("No such export target.") from None


def _page(request: HttpRequest, target_form: ExportTargetForm | None = None) -> HttpResponse:
    tenant = current_tenant(request)
    targets = list(export_target_list(tenant=tenant))
    recent: dict[object, list[JournalExport]] = {t.pk: [] for t in targets}
    for export in JournalExport.objects.filter(tenant=tenant).order_by("-created_at", "-id")[:500]:
        if len(recent.get(export.target_id, [None] * RECENT_EXPORTS)) < RECENT_EXPORTS:
            recent[export.target_id].append(export)
    last = month_label(previous_month(current_month(tenant=tenant, at=timezone.now())))
    writer = can_write(request)
    context = {
        "targets": [{"target": t, "exports": recent[t.pk]} for t in targets],
        "target_form": (target_form or ExportTargetForm()) if writer else None,
        "month_form": MonthForm(initial={"period": last}) if writer else None,
        "tz_name": tenant.timezone,
    }
    return render(request, "backoffice/revenue/export.html", context)


@staff_view(FINANCE)
def erp_export(request: HttpRequest) -> HttpResponse:
    return _page(request)


@staff_view(WRITERS)
@require_POST
def export_target_new(request: HttpRequest) -> HttpResponse:
    form = ExportTargetForm(request.POST)
    if not form.is_valid():
        return _page(request, form)
    try:
        export_target_create(
            tenant=current_tenant(request),
            name=form.cleaned_data["name"],
            format=form.cleaned_data["format"],
            actor=current_actor(request),
            at=timezone.now(),
        )
    except DomainError as exc:
        form.add_error("name", exc.detail)
        return _page(request, form)
    messages.success(request, _("Export target %(name)s added.") % {"name": form.cleaned_data["name"]})
    return redirect("backoffice:erp-export")


@staff_view(WRITERS)
@require_POST
def journal_export_new(request: HttpRequest, pk: str) -> HttpResponse:
    target = _target_or_404(current_tenant(request), pk)
    form = MonthForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Enter a month as YYYY-MM."))
        return redirect("backoffice:erp-export")
    export = journal_export_create(
        target=target, period=form.cleaned_data["period"], actor=current_actor(request), at=timezone.now()
    )
    values = {"target": target.name, "month": month_label(export.period), "entries": export.entries}
    if export.entries:
        messages.success(request, _("%(entries)s new journal entries of %(month)s exported to %(target)s.") % values)
    else:
        messages.info(request, _("No new journal entry of %(month)s for %(target)s: the export is empty.") % values)
    return redirect("backoffice:erp-export")


@staff_view(FINANCE)
def journal_export_download(request: HttpRequest, pk: str, export_id: str) -> HttpResponse:
    target = _target_or_404(current_tenant(request), pk)
    try:
        export = journal_export_get(target=target, pk=export_id)
    except DomainError:
        raise Http404("No such export.") from None
    chunks, content_type, name = export_file(export=export)
    response = HttpResponse("".join(chunks), content_type=content_type)
    response["Content-Disposition"] = 'attachment; filename="%s"' % name
    return response


@staff_view(FINANCE)
def journal_exports_csv(request: HttpRequest) -> HttpResponse:
    """Every export of the tenant, newest first."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="erp-exports.csv"'
    writer = csv.writer(response)
    writer.writerow(["export", "target", "format", "period", "entries", "lines", "requested_by", "created_at"])
    exports = JournalExport.objects.filter(tenant=current_tenant(request)).select_related("target")
    for export in exports.order_by("-created_at", "-id").iterator(chunk_size=500):
        writer.writerow(
            [
                str(export.pk),
                export.target.name,
                export.target.format,
                month_label(export.period),
                export.entries,
                export.lines,
                export.requested_by,
                export.created_at.isoformat(),
            ]
        )
    return response
