"""Back-office invoicing pages: bill runs (launch one, follow its progress live), the invoices list
with its filters, and an invoice's detail (lines grouped by leg, taxes, credit notes) with the
finalize, void and credit-note actions and a PDF preview.

Views stay thin: they parse forms and call the invoicing services and selectors the API calls
(``bill_run_create``, ``invoice_finalize``, ``invoice_void``, ``credit_note_create``,
``invoice_document``), so a rule cannot differ between the pages and the API. A ``DomainError``
from a service becomes an error message on the page, never a 500. What the pages show is computed
in ``backoffice.invoicing.presenters``.
"""

import logging
from datetime import date
from typing import Any

from django.contrib import messages
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_POST

from backoffice.access import EVERYONE, WRITERS, can_write, current_actor, current_tenant, staff_view
from backoffice.formatting import day, money, query_string
from backoffice.invoicing.forms import FILTER_NAMES, BillRunForm, CreditNoteEntry, InvoiceFilterForm
from backoffice.invoicing.presenters import (
    IN_PROGRESS,
    bill_run_panel,
    credit_rows,
    invoice_legs,
    invoice_payment_panel,
    invoice_totals,
    invoices_bulk_counts,
    tax_rows,
)
from backoffice.pages import clean_text, page_of
from billing_platform.content_security import pdf_policy
from billing_platform.errors import DomainError, FieldError, InvalidInput
from billing_platform.periods import local_date
from customers.models import Collection
from invoicing.documents import invoice_document
from invoicing.einvoice import einvoice_draft_missing, missing_field_label
from invoicing.errors import BillingDateNotArrived, EinvoiceIncomplete
from invoicing.models import BillRun, Invoice, InvoiceKind, InvoicePaymentStatus, InvoiceStatus
from invoicing.policies import invoice_actions
from invoicing.selectors import (
    bill_run_get,
    bill_run_list,
    bill_runs_totals,
    invoice_credit_notes,
    invoice_get,
)
from invoicing.services import (
    bill_run_create,
    bill_run_drafts_finalize,
    credit_note_create,
    credit_note_lines_check,
    invoice_finalize,
    invoice_void,
)
from payments.charging import invoice_charge
from tenancy.models import Tenant

logger = logging.getLogger(__name__)


def _invoice_or_404(tenant: Tenant, pk: str) -> Invoice:
    try:
        return invoice_get(tenant=tenant, pk=pk)
    except DomainError:
        raise Http404("No such invoice.") from None


def _run_or_404(tenant: Tenant, pk: str) -> BillRun:
    try:
        return bill_run_get(tenant=tenant, pk=pk)
    except DomainError:
        raise Http404("No such bill run.") from None


# --- bill runs ------------------------------------------------------------------------------


def _runs_page(request: HttpRequest, form: BillRunForm) -> HttpResponse:
    tenant = current_tenant(request)
    page = page_of(request, bill_run_list(tenant=tenant).order_by("-created_at"))
    totals = bill_runs_totals(list(page.object_list))
    context = {
        "page": page,
        "rows": [{"run": run, "totals": totals[run.pk]} for run in page.object_list],
        "form": form if can_write(request) else None,
        "tz_name": tenant.timezone,
        "in_progress": IN_PROGRESS,
    }
    return render(request, "backoffice/invoicing/bill_runs.html", context)


@staff_view(EVERYONE)
def bill_runs(request: HttpRequest) -> HttpResponse:
    today = local_date(timezone.now(), current_tenant(request).timezone)
    return _runs_page(request, BillRunForm(initial={"billing_date": today}))


@staff_view(WRITERS)
@require_POST
def bill_run_new(request: HttpRequest) -> HttpResponse:
    """Start a run: the run is created at once and its Celery task queued when the transaction commits."""
    form = BillRunForm(request.POST)
    if not form.is_valid():
        return _runs_page(request, form)
    billing_date = form.cleaned_data["billing_date"]
    try:
        run = bill_run_create(
            tenant=current_tenant(request), billing_date=billing_date, actor=current_actor(request), at=timezone.now()
        )
    except BillingDateNotArrived as exc:
        message = _("The billing date %(date)s has not arrived yet: it is %(today)s in %(zone)s.")
        today = date.fromisoformat(exc.extra["today"]) if isinstance(exc.extra.get("today"), str) else None
        values = {
            "date": day(billing_date),
            "today": day(today) if today else exc.extra["today"],
            "zone": exc.extra["time_zone"],
        }
        form.add_error("billing_date", message % values)
        return _runs_page(request, form)
    except DomainError as exc:
        messages.error(request, exc.detail)
        return redirect("backoffice:bill-runs")
    messages.success(request, _("Bill run for %(date)s started.") % {"date": day(billing_date)})
    return redirect("backoffice:bill-run-detail", pk=run.pk)


@staff_view(EVERYONE)
def bill_run_detail(request: HttpRequest, pk: str) -> HttpResponse:
    run = _run_or_404(current_tenant(request), pk)
    drafts = run.invoices.filter(kind=InvoiceKind.INVOICE, status=InvoiceStatus.DRAFT).count()
    context = {**bill_run_panel(run), "drafts": drafts, "can_finalize": can_write(request) and drafts > 0}
    return render(request, "backoffice/invoicing/bill_run_detail.html", context)


@staff_view(WRITERS)
@require_POST
def bill_run_finalize_view(request: HttpRequest, pk: str) -> HttpResponse:
    """Finalize and send every draft of the run at once; those that would not be valid e-invoices
    stay drafts and are named, with what they lack."""
    run = _run_or_404(current_tenant(request), pk)
    try:
        result = bill_run_drafts_finalize(run=run, actor=current_actor(request), at=timezone.now())
    except DomainError as exc:
        messages.error(request, exc.detail)
        return redirect("backoffice:bill-run-detail", pk=run.pk)
    if result.finalized:
        messages.success(
            request,
            ngettext(
                "%(count)d invoice finalized: its PDF is rendered and e-mailed to the customer.",
                "%(count)d invoices finalized: their PDFs are rendered and e-mailed to the customers.",
                len(result.finalized),
            )
            % {"count": len(result.finalized)},
        )
    for invoice, missing in result.incomplete:
        messages.error(
            request,
            _("%(customer)s: left as a draft, it would not be a valid e-invoice (EN 16931). Missing: %(fields)s.")
            % {"customer": invoice.customer.name, "fields": ", ".join(missing_labels(missing))},
        )
    if not result.finalized and not result.incomplete:
        messages.info(request, _("This run has no draft left to finalize."))
    return redirect("backoffice:bill-run-detail", pk=run.pk)


@staff_view(EVERYONE)
def bill_run_progress(request: HttpRequest, pk: str) -> HttpResponse:
    """The live panel alone, polled by HTMX every second; once the run is over it comes back without
    its trigger, which stops the polling."""
    run = _run_or_404(current_tenant(request), pk)
    return render(request, "backoffice/invoicing/_run_progress.html", bill_run_panel(run))


# --- invoices list --------------------------------------------------------------------------


@staff_view(EVERYONE)
def invoices(request: HttpRequest) -> HttpResponse:
    """GET only: the filters are a GET form, so the page works without JavaScript; with HTMX a change
    of filter reloads the rows alone. The page also finds parts of names and numbers; a filter whose
    value is invalid is left out (the form shows why)."""
    tenant = current_tenant(request)
    form, qs, run = invoices_filtered(tenant, request.GET)
    today = local_date(timezone.now(), tenant.timezone)
    page = page_of(request, qs.order_by("-issue_date", "-created_at", "-id"))
    rows = [{"invoice": i, **invoice_totals(i), "overdue": _overdue(i, today)} for i in page.object_list]
    params = {k: clean_text(request.GET.get(k, "")) for k in FILTER_NAMES}
    context = {
        # The bulk actions: rows to select, and how many drafts and sendable documents match the filter.
        "bulk": invoices_bulk_counts(qs) if can_write(request) and page.paginator.count else None,
        "params": [(k, v) for k, v in params.items() if v],
        "form": form,
        "page": page,
        "rows": rows,
        "run": run,
        "query": query_string(**params),
        "filtered": any(params.values()),
        "tz_name": tenant.timezone,
    }
    htmx = getattr(request, "htmx", None)
    if htmx and not htmx.history_restore_request:
        return render(request, "backoffice/invoicing/_invoice_rows.html", context)
    return render(request, "backoffice/invoicing/invoices.html", context)


def invoices_filtered(tenant: Tenant, query: QueryDict) -> tuple[InvoiceFilterForm, QuerySet[Invoice], BillRun | None]:
    """The list's filter form bound to ``query``, the invoices it selects and the run it narrows to
    (404 for a run of another tenant); shared by the list and its bulk actions."""
    run_id = clean_text(query.get("run", ""))
    run = _run_or_404(tenant, run_id) if run_id else None
    form = InvoiceFilterForm(query)
    form.is_valid()
    return form, form.invoices(tenant, run), run


def _overdue(invoice: Invoice, today: date) -> bool:
    return (
        invoice.status == InvoiceStatus.FINALIZED
        and invoice.payment_status in (InvoicePaymentStatus.UNPAID, InvoicePaymentStatus.PARTIALLY_PAID)
        and invoice.due_date is not None
        and invoice.due_date < today
    )


# --- invoice detail -------------------------------------------------------------------------


@staff_view(EVERYONE)
def invoice_detail(request: HttpRequest, pk: str) -> HttpResponse:
    return _invoice_page(request, _invoice_or_404(current_tenant(request), pk))


def _invoice_page(request: HttpRequest, invoice: Invoice, credit: CreditNoteEntry | None = None) -> HttpResponse:
    """The invoice's page; ``credit`` is a credit note sent back with its errors, shown on its lines."""
    tz = invoice.customer.timezone
    writable = can_write(request)
    is_invoice = invoice.kind == InvoiceKind.INVOICE
    credit_notes = invoice_credit_notes(invoice) if is_invoice else []
    live_notes = [n for n in credit_notes if n.status != InvoiceStatus.VOID]
    allowed = invoice_actions(invoice)
    actions = {
        "finalize": writable and "finalize" in allowed,
        # A credit note is settled against its invoice: voiding it would not give the amount back.
        "void": writable and is_invoice and "void" in allowed and not live_notes,
        "credit": writable and "credit" in allowed,
    }
    open_for_payment = (
        is_invoice
        and invoice.status == InvoiceStatus.FINALIZED
        and invoice.payment_status in (InvoicePaymentStatus.UNPAID, InvoicePaymentStatus.PARTIALLY_PAID)
        and invoice.amount_due.amount > 0
    )
    actions["record_payment"] = writable and open_for_payment
    actions["charge"] = writable and open_for_payment and invoice.customer.collection == Collection.CHARGE_AUTOMATICALLY
    rows = credit_rows(invoice) if actions["credit"] else []
    if actions["credit"] and not any(r["open"] for r in rows):
        actions["credit"] = False
    credit_errors: list[dict[str, Any]] = []
    if credit is not None:
        for row in rows:
            row["typed"] = credit.typed.get(row["line"].pk, "")
            row["error"] = credit.line_errors.get(row["line"].pk, "")
        labels = {r["line"].pk: "%s %d · %s" % (_("Line"), i + 1, r["description"]) for i, r in enumerate(rows)}
        credit_errors = credit.summary(labels)
        if not actions["credit"]:
            # No credit form to put them on (nothing left to credit): said as messages.
            for error in credit_errors:
                messages.error(request, error["message"])
    context = {
        "invoice": invoice,
        "totals": invoice_totals(invoice),
        "legs": invoice_legs(invoice, tz),
        "taxes": tax_rows(invoice),
        "credit_notes": [{"note": n, **invoice_totals(n)} for n in credit_notes],
        "credit_rows": rows,
        "credit": credit,
        "credit_errors": credit_errors,
        "actions": actions,
        "any_action": any(actions.values()),
        "tz_name": tz,
        "payment": invoice_payment_panel(invoice) if is_invoice and invoice.status != InvoiceStatus.DRAFT else None,
        "overdue": _overdue(invoice, local_date(timezone.now(), tz)),
        # What a draft lacks to be finalized as a valid EN 16931 e-invoice (the check finalizing runs).
        "einvoice_missing": missing_labels(einvoice_draft_missing(invoice)) if invoice.status == "draft" else [],
    }
    return render(request, "backoffice/invoicing/invoice_detail.html", context)


def _back(invoice: Invoice) -> HttpResponse:
    return redirect("backoffice:invoice-detail", pk=invoice.pk)


def missing_labels(errors: list[FieldError]) -> list[str]:
    return [missing_field_label(e.field) for e in errors]


def _not_an_einvoice(request: HttpRequest, exc: EinvoiceIncomplete) -> None:
    messages.error(
        request,
        _("Not finalized: it would not be a valid e-invoice (EN 16931). Missing: %(fields)s.")
        % {"fields": ", ".join(missing_labels(exc.errors))},
    )


@staff_view(WRITERS)
@require_POST
def invoice_finalize_view(request: HttpRequest, pk: str) -> HttpResponse:
    invoice = _invoice_or_404(current_tenant(request), pk)
    try:
        invoice = invoice_finalize(invoice=invoice, actor=current_actor(request), at=timezone.now())
    except EinvoiceIncomplete as exc:
        _not_an_einvoice(request, exc)
    except DomainError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(
            request,
            _("Invoice %(number)s finalized: its PDF is rendered and e-mailed to %(email)s.")
            % {"number": invoice.number, "email": invoice.customer.email},
        )
    return _back(invoice)


@staff_view(WRITERS)
@require_POST
def invoice_void_view(request: HttpRequest, pk: str) -> HttpResponse:
    invoice = _invoice_or_404(current_tenant(request), pk)
    reason = clean_text(request.POST.get("reason", ""))
    if not reason:
        messages.error(request, _("Give the reason for voiding the invoice."))
        return _back(invoice)
    if len(reason) > 300:
        messages.error(request, _("The reason is longer than 300 characters."))
        return _back(invoice)
    try:
        invoice = invoice_void(invoice=invoice, actor=current_actor(request), at=timezone.now(), reason=reason)
    except DomainError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, _("Invoice %(number)s voided.") % {"number": invoice.number or _("draft")})
    return _back(invoice)


@staff_view(WRITERS)
@require_POST
def invoice_credit_view(request: HttpRequest, pk: str) -> HttpResponse:
    """A credit note; refused, the page comes back with every error at once, each on its line (or
    on the reason), and the amounts typed kept."""
    invoice = _invoice_or_404(current_tenant(request), pk)
    credit = CreditNoteEntry(request.POST)
    credit.check()
    actor, now = current_actor(request), timezone.now()
    if credit.errors:
        return _invoice_page(request, invoice, credit)
    if credit.reason_error:
        # The lines are still checked in the same pass, by the service's check, which writes nothing.
        try:
            credit_note_lines_check(invoice=invoice, lines=credit.lines)
        except InvalidInput as exc:
            credit.apply_service_errors(list(exc.errors), exc.detail)
        except DomainError as exc:
            messages.error(request, exc.detail)
        return _invoice_page(request, invoice, credit)
    try:
        note = credit_note_create(invoice=invoice, actor=actor, at=now, lines=credit.lines, reason=credit.reason)
    except EinvoiceIncomplete as exc:
        _not_an_einvoice(request, exc)
    except InvalidInput as exc:
        credit.apply_service_errors(list(exc.errors), exc.detail)
        return _invoice_page(request, invoice, credit)
    except DomainError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(
            request,
            _("Credit note %(number)s created: %(total)s.") % {"number": note.number, "total": money(note.total)},
        )
    return _back(invoice)


@staff_view(WRITERS)
@require_POST
def invoice_charge_view(request: HttpRequest, pk: str) -> HttpResponse:
    """Charge what the invoice still owes with the customer's payment method now (the gateway's
    attempt, as a dunning retry would make one)."""
    invoice = _invoice_or_404(current_tenant(request), pk)
    if invoice.customer.collection != Collection.CHARGE_AUTOMATICALLY:
        messages.error(request, _("This customer pays by invoice: there is no payment method to charge."))
        return _back(invoice)
    try:
        attempt = invoice_charge(invoice_id=invoice.pk, trigger="backoffice", at=timezone.now())
    except DomainError as exc:
        messages.error(request, exc.detail)
    else:
        if attempt.status == "failed":
            messages.error(
                request,
                _("Charge attempt %(number)s failed: %(reason)s")
                % {"number": attempt.number, "reason": attempt.failure_message or attempt.failure_code or "—"},
            )
        else:
            messages.success(
                request,
                _("Charge attempt %(number)s: %(status)s.")
                % {"number": attempt.number, "status": attempt.get_status_display()},
            )
    return _back(invoice)


@xframe_options_sameorigin  # the detail page shows it in a frame
@pdf_policy
@staff_view(EVERYONE)
def invoice_pdf_view(request: HttpRequest, pk: str) -> HttpResponse:
    """The invoice's PDF from ``invoice_document``, as the API serves it (a draft's is rendered now
    and marked as such), shown inline."""
    invoice = _invoice_or_404(current_tenant(request), pk)
    try:
        body, name = invoice_document(invoice, kind="pdf")
    except DomainError as exc:
        return HttpResponse(exc.detail, status=409, content_type="text/plain; charset=utf-8")
    except Exception:
        logger.exception("rendering the PDF of invoice %s failed", invoice.pk)
        return HttpResponse(_("The PDF could not be rendered."), status=503, content_type="text/plain; charset=utf-8")
    response = HttpResponse(body, content_type="application/pdf")
    response["Content-Disposition"] = 'inline; filename="%s"' % name
    return response
