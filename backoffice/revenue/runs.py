"""Back-office "Revenue runs": the months of the books (open or closed, their revenue, their latest
recognition run), a run started for a month and followed live (HTMX polling), a month closed, and the
runs as CSV. Finance roles read; owners and finance admins run and close.

Views stay thin: they call the services the API calls (``revrec.periods``), and a ``DomainError``
becomes a message on the page, never a 500."""

from collections.abc import Iterator
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from backoffice.access import FINANCE, WRITERS, can_write, current_actor, current_tenant, staff_view
from backoffice.csv_export import csv_response
from backoffice.formatting import moment
from backoffice.pages import page_of
from backoffice.revenue.run_forms import MonthForm
from billing_platform.errors import DomainError
from billing_platform.jobs import recovery_notes
from revrec.models import ACTIVE_RUN_STATUSES, RecognitionRun, RecognitionRunStatus
from revrec.periods import (
    current_month,
    month_label,
    period_close,
    period_list,
    previous_month,
    recognition_run_create,
    recognition_run_get,
    recognition_run_list,
)
from tenancy.models import Tenant


def _run_or_404(tenant: Tenant, pk: str) -> RecognitionRun:
    try:
        return recognition_run_get(tenant=tenant, pk=pk)
    except DomainError:
        raise Http404("No such recognition run.") from None


def _totals(revenue: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Revenue rows grouped per currency: ``[{"currency", "streams": [(stream, amount)]}]``."""
    out: dict[str, dict[str, Any]] = {}
    for row in revenue:
        out.setdefault(row["currency"], {"currency": row["currency"], "streams": []})["streams"].append(
            (row["stream"], row["amount"])
        )
    return list(out.values())


def _runs_page(request: HttpRequest, form: MonthForm) -> HttpResponse:
    tenant = current_tenant(request)
    writer = can_write(request)
    periods = [
        {
            "row": row,
            "revenue": _totals(row.revenue),
            "can_close": writer and row.status == "open" and row.run is not None and row.run.status == "succeeded",
        }
        for row in period_list(tenant=tenant)
    ]
    context = {
        "periods": periods,
        "page": page_of(request, recognition_run_list(tenant=tenant)),
        "form": form if writer else None,
        "tz_name": tenant.timezone,
    }
    return render(request, "backoffice/revenue/runs.html", context)


@staff_view(FINANCE)
def revenue_runs(request: HttpRequest) -> HttpResponse:
    last = previous_month(current_month(tenant=current_tenant(request), at=timezone.now()))
    return _runs_page(request, MonthForm(initial={"period": month_label(last)}))


@staff_view(WRITERS)
@require_POST
def revenue_run_new(request: HttpRequest) -> HttpResponse:
    form = MonthForm(request.POST)
    if not form.is_valid():
        return _runs_page(request, form)
    month = form.cleaned_data["period"]
    try:
        run = recognition_run_create(
            tenant=current_tenant(request), month=month, actor=current_actor(request), at=timezone.now()
        )
    except DomainError as exc:
        form.add_error("period", exc.detail)
        return _runs_page(request, form)
    messages.success(request, _("Recognition run of %(month)s started.") % {"month": month_label(month)})
    return redirect("backoffice:revenue-run-detail", pk=run.pk)


@staff_view(WRITERS)
@require_POST
def revenue_period_close_view(request: HttpRequest, period: str) -> HttpResponse:
    form = MonthForm({"period": period})
    if not form.is_valid():
        raise Http404("No such month.")
    month = form.cleaned_data["period"]
    try:
        period_close(tenant=current_tenant(request), month=month, actor=current_actor(request), at=timezone.now())
    except DomainError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(
            request, _("%(month)s is closed: nothing will post in it any more.") % {"month": month_label(month)}
        )
    return redirect("backoffice:revenue-runs")


def _panel(run: RecognitionRun, tenant: Tenant) -> dict[str, Any]:
    percent = round(100 * run.done / run.total) if run.total else (100 if run.status == "succeeded" else 0)
    return {
        "run": run,
        "period": month_label(run.month),
        "polling": run.status in ACTIVE_RUN_STATUSES,
        "percent": percent,
        "revenue": _totals(run.revenue),
        "tz_name": tenant.timezone,
        "failed": run.status == RecognitionRunStatus.FAILED,
        # What the jobs watchdog did when the run's worker stopped answering, in words.
        "recoveries": recovery_notes(run.recoveries, piece="run", fmt=lambda at: moment(at, tenant.timezone)),
    }


@staff_view(FINANCE)
def revenue_run_detail(request: HttpRequest, pk: str) -> HttpResponse:
    tenant = current_tenant(request)
    return render(request, "backoffice/revenue/run_detail.html", _panel(_run_or_404(tenant, pk), tenant))


@staff_view(FINANCE)
def revenue_run_progress(request: HttpRequest, pk: str) -> HttpResponse:
    """The live panel alone, polled by HTMX every second; once the run is over it comes back without
    its trigger, which stops the polling."""
    tenant = current_tenant(request)
    return render(request, "backoffice/revenue/_run_progress.html", _panel(_run_or_404(tenant, pk), tenant))


@staff_view(FINANCE)
def revenue_runs_csv(request: HttpRequest) -> HttpResponseBase:
    """Every run of the tenant, newest first: one row per run and per currency and stream posted."""

    def rows() -> Iterator[list[Any]]:
        for run in recognition_run_list(tenant=current_tenant(request)).iterator(chunk_size=500):
            head = [
                str(run.pk),
                month_label(run.month),
                run.status,
                run.done,
                run.total,
                run.entries,
                run.journal_entries,
            ]
            tail = [
                run.requested_by,
                run.created_at.isoformat(),
                run.started_at.isoformat() if run.started_at else "",
                run.finished_at.isoformat() if run.finished_at else "",
                run.error,
            ]
            for row in run.revenue or [{"currency": "", "stream": "", "amount": ""}]:
                yield [*head, row["currency"], row["stream"], row["amount"], *tail]

    return csv_response(
        filename="revenue-runs.csv",
        header=[
            "run",
            "period",
            "status",
            "done",
            "total",
            "entries",
            "journal_entries",
            "currency",
            "stream",
            "revenue",
            "requested_by",
            "created_at",
            "started_at",
            "finished_at",
            "error",
        ],
        rows=rows(),
        tenant=current_tenant(request),
    )
