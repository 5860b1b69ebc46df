"""Back-office invoicing pages: bill runs (launch one, follow its progress live), the invoices list
with its filters, and an invoice's detail (lines grouped by leg, taxes, credit notes) with the
finalize, void and credit-note actions and a PDF preview.

Views stay thin: they parse forms and call the invoicing services and selectors the API calls
(``bill_run_create``, ``invoice_finalize``, ``invoice_void``, ``credit_note_create``), so a rule
cannot differ between the pages and the API. A ``DomainError`` from a service becomes an error
message on the page, never a 500. What is left here is presentation: the legs of an invoice, the
usage detail stored with a line, local dates, amounts with the currency's decimals.
"""

import importlib
import importlib.util
import logging
import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import formats, timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_POST

from backoffice.access import EVERYONE, WRITERS, can_write, current_actor, current_tenant, staff_view
from backoffice.catalog_views import _money, _numbers, _plain
from backoffice.subscription_views import _days
from billing_platform.errors import DomainError
from billing_platform.periods import local_date
from catalog.models import TaxCategory
from invoicing.models import (
    BillRun,
    BillRunCustomer,
    BillRunStatus,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    InvoiceStatus,
)
from invoicing.selectors import bill_run_get, bill_run_list, invoice_get, invoice_list
from invoicing.services import (
    bill_run_create,
    credit_note_create,
    invoice_finalize,
    invoice_void,
)
from invoicing.services.credit_notes import (
    _credited_per_line,  # what is left to credit per line: the rule credit_note_create applies
)
from tenancy.models import Tenant

logger = logging.getLogger(__name__)

PAGE_SIZE = 50
# The years the API accepts for a bill run's date (invoicing.api.views.BillRunListCreateApi).
MIN_YEAR, MAX_YEAR = 1971, 2999
# A run is followed live (its progress polled every second) until it reaches another status.
IN_PROGRESS = (BillRunStatus.PENDING, BillRunStatus.RUNNING)
VOIDABLE = (InvoiceStatus.DRAFT, InvoiceStatus.FINALIZED)
CREDITABLE = (InvoiceStatus.FINALIZED, InvoiceStatus.PAID)

# The legs of an invoice, in the order the page shows them.
LEGS = (
    ("hardware", gettext_lazy("Hardware")),
    ("service", gettext_lazy("Service")),
    ("usage", gettext_lazy("Usage")),
    ("fees", gettext_lazy("Fees and credits")),
    ("adjustments", gettext_lazy("Adjustments")),
)
LINE_TYPES = {
    "hardware": gettext_lazy("Hardware"),
    "service": gettext_lazy("Service"),
    "usage": gettext_lazy("Usage"),
    "fee": gettext_lazy("Fee"),
    "credit": gettext_lazy("Credit"),
}
OUTCOMES = {
    "invoiced": gettext_lazy("Invoiced"),
    "existing": gettext_lazy("Already invoiced"),
    "nothing": gettext_lazy("Nothing to bill"),
    "failed": gettext_lazy("Failed"),
}
AMOUNT_FIELD = re.compile(r"^amount-(\d{1,18})$")


# --- presentation helpers -------------------------------------------------------------------


def _clean(value: str) -> str:
    return value.replace("\x00", "").strip()  # PostgreSQL refuses NUL characters


def _decimal(value: Any) -> Decimal | None:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        return None
    return number if number.is_finite() else None


def _quantity(value: Any) -> Decimal | None:
    """A stored quantity as printed: 1752.0000000000 -> 1752, 0.5 stays."""
    number = _decimal(value)
    return None if number is None else _plain(number, 0)


def _label(choices: Any, value: str) -> str:
    return str(dict(choices.choices).get(value, value)) if value else ""


def _query(**params: str) -> str:
    return urlencode({k: v for k, v in params.items() if v})


def _signed(line: InvoiceLine) -> Decimal:
    """A line's amount as it counts in the invoice's net total: credits are negative."""
    return -line.amount if line.type == "credit" else line.amount


def _leg(line: InvoiceLine) -> str:
    if line.adjustment:
        return "adjustments"
    if line.type in ("hardware", "service", "usage"):
        return line.type
    return "fees"


def _totals(invoice: Invoice) -> dict[str, Decimal | None]:
    c = invoice.currency
    return {
        "net": _money(invoice.net_total, c),
        "tax": _money(invoice.tax_total, c),
        "total": _money(invoice.total, c),
        "due": _money(invoice.amount_due, c),
    }


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


def _run_invoices(run: BillRun) -> Q:
    """The invoices a run created, and those it found already made for its date (a re-run)."""
    found = BillRunCustomer.objects.filter(bill_run=run, invoice__isnull=False).values("invoice_id")
    return Q(bill_run=run) | Q(pk__in=found)


# --- bill runs ------------------------------------------------------------------------------


class BillRunForm(forms.Form):
    billing_date = forms.DateField(
        label=gettext_lazy("Billing date"),
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date", "id": "run-billing-date"}, format="%Y-%m-%d"),
        help_text=gettext_lazy(
            "Every customer whose billing day falls on this date is billed, once its local midnight of the date "
            "has passed."
        ),
    )

    def clean_billing_date(self) -> date:
        value: date = self.cleaned_data["billing_date"]
        if not MIN_YEAR <= value.year <= MAX_YEAR:
            raise forms.ValidationError(
                _("Use a year between %(min)s and %(max)s.") % {"min": MIN_YEAR, "max": MAX_YEAR}
            )
        return value


def _progress(run: BillRun) -> dict[str, Any]:
    """What the live panel of a run shows; it polls while the run is pending or running."""
    processed = run.done + run.failed
    if run.total:
        percent = min(100, processed * 100 // run.total)
    else:
        percent = 0 if run.status in IN_PROGRESS else 100
    counts = dict(
        BillRunCustomer.objects.filter(bill_run=run).order_by().values_list("outcome").annotate(n=Count("pk"))
    )
    failures = (
        BillRunCustomer.objects.filter(bill_run=run, outcome="failed")
        .select_related("customer")
        .order_by("customer__name", "customer__external_id")
    )
    return {
        "run": run,
        "polling": run.status in IN_PROGRESS,
        "percent": percent,
        "processed": processed,
        "outcomes": [{"outcome": k, "label": label, "count": counts.get(k, 0)} for k, label in OUTCOMES.items()],
        "failures": failures,
        "invoice_count": Invoice.objects.filter(tenant_id=run.tenant_id).filter(_run_invoices(run)).count(),
        "tz_name": run.tenant.timezone,
    }


def _runs_page(request: HttpRequest, form: BillRunForm) -> HttpResponse:
    tenant = current_tenant(request)
    page = Paginator(bill_run_list(tenant=tenant).order_by("-created_at"), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "page": page,
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
    except DomainError as exc:
        messages.error(request, exc.detail)
        return redirect("backoffice:bill-runs")
    messages.success(request, _("Bill run for %(date)s started.") % {"date": billing_date.isoformat()})
    return redirect("backoffice:bill-run-detail", pk=run.pk)


@staff_view(EVERYONE)
def bill_run_detail(request: HttpRequest, pk: str) -> HttpResponse:
    run = _run_or_404(current_tenant(request), pk)
    return render(request, "backoffice/invoicing/bill_run_detail.html", _progress(run))


@staff_view(EVERYONE)
def bill_run_progress(request: HttpRequest, pk: str) -> HttpResponse:
    """The live panel alone, polled by HTMX every second; once the run is over it comes back without
    its trigger, which stops the polling."""
    run = _run_or_404(current_tenant(request), pk)
    return render(request, "backoffice/invoicing/_run_progress.html", _progress(run))


# --- invoices list --------------------------------------------------------------------------


class InvoiceFilterForm(forms.Form):
    q = forms.CharField(
        label=gettext_lazy("Customer"),
        required=False,
        max_length=200,
        widget=forms.TextInput(
            attrs={
                "type": "search",
                "id": "invoice-q",
                "placeholder": gettext_lazy("Name, external ID or invoice number"),
            }
        ),
    )
    status = forms.ChoiceField(
        label=gettext_lazy("Status"),
        required=False,
        choices=[("", gettext_lazy("Any status")), *InvoiceStatus.choices],
    )
    kind = forms.ChoiceField(
        label=gettext_lazy("Kind"),
        required=False,
        choices=[("", gettext_lazy("Invoices and credit notes")), *InvoiceKind.choices],
    )
    date_from = forms.DateField(
        label=gettext_lazy("Issued from"),
        required=False,
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    date_to = forms.DateField(
        label=gettext_lazy("Issued until"),
        required=False,
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        first, last = data.get("date_from"), data.get("date_to")
        if first and last and last < first:
            self.add_error("date_to", _("The last day is before the first day."))
        return data


def _filtered_invoices(tenant: Tenant, form: InvoiceFilterForm, run: BillRun | None) -> QuerySet[Invoice]:
    """The selector's filters (status, kind, dates); the page also finds parts of names and numbers.
    A filter whose value is invalid is left out (the form shows why)."""
    form.is_valid()
    data = form.cleaned_data
    qs = invoice_list(
        tenant=tenant,
        status=data.get("status") or None,
        kind=data.get("kind") or None,
        date_from=data.get("date_from"),
        date_to=data.get("date_to"),
    ).prefetch_related(None)
    search = _clean(data.get("q") or "")
    if search:
        qs = qs.filter(
            Q(customer__name__icontains=search)
            | Q(customer__external_id__icontains=search)
            | Q(number__icontains=search)
        )
    if run is not None:
        qs = qs.filter(_run_invoices(run))
    return qs


@staff_view(EVERYONE)
def invoices(request: HttpRequest) -> HttpResponse:
    """GET only: the filters are a GET form, so the page works without JavaScript; with HTMX a change
    of filter reloads the rows alone."""
    tenant = current_tenant(request)
    run_id = _clean(request.GET.get("run", ""))
    run = _run_or_404(tenant, run_id) if run_id else None
    form = InvoiceFilterForm(request.GET)
    form.is_valid()
    qs = _filtered_invoices(tenant, form, run)
    page = Paginator(qs.order_by("-issue_date", "-created_at", "-id"), PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [{"invoice": i, **_totals(i)} for i in page.object_list]
    params = {k: _clean(request.GET.get(k, "")) for k in ("q", "status", "kind", "date_from", "date_to", "run")}
    context = {
        "form": form,
        "page": page,
        "rows": rows,
        "run": run,
        "query": _query(**params),
        "filtered": any(params.values()),
        "tz_name": tenant.timezone,
    }
    htmx = getattr(request, "htmx", None)
    if htmx and not htmx.history_restore_request:
        return render(request, "backoffice/invoicing/_invoice_rows.html", context)
    return render(request, "backoffice/invoicing/invoices.html", context)


# --- invoice detail -------------------------------------------------------------------------


def _usage_detail(line: InvoiceLine, currency: str) -> dict[str, Any]:
    """The metering behind a usage line, from the detail stored with it: the quantity measured, the
    allowance (included per device x devices), the billable quantity and the tiers or groups priced."""
    d = line.detail if isinstance(line.detail, dict) else {}
    if line.adjustment:
        return {
            "meter": d.get("meter", ""),
            "metered": _quantity(d.get("metered_quantity")),
            "billed": _quantity(d.get("billed_quantity")),
            "late": _quantity(line.quantity),
            "previously_billed": _money(_decimal(d.get("previously_billed")), currency)
            if _decimal(d.get("previously_billed")) is not None
            else None,
        }
    included = _decimal(d.get("included_per_device"))
    devices = _decimal(d.get("devices"))
    allowance = included * devices if included is not None and devices is not None else None
    tiers = []
    for tier in d.get("tiers") or []:
        if isinstance(tier, dict):
            view = _numbers(tier)
            tiers.append(
                {
                    **view,
                    "units": _quantity(tier.get("units")),
                    "amount": _plain(view["amount"], 2) if isinstance(view.get("amount"), Decimal) else None,
                    "flat_amount": _plain(view["flat_amount"], 2)
                    if isinstance(view.get("flat_amount"), Decimal) and view["flat_amount"]
                    else None,
                }
            )
    per_device = [
        {
            "device_id": row.get("device_id", ""),
            "quantity": _quantity(row.get("quantity")),
            "billable": _quantity(row.get("billable_quantity")),
            "amount": _money(_decimal(row.get("amount")) or Decimal(0), currency),
        }
        for row in d.get("per_device") or []
        if isinstance(row, dict)
    ]
    groups = [
        {
            "values": ", ".join(str(v) for v in (row.get("values") or {}).values()) or "—",
            "quantity": _quantity(row.get("quantity")),
            "amount": _plain(_decimal(row.get("amount")) or Decimal(0), 2),
        }
        for row in d.get("groups") or []
        if isinstance(row, dict)
    ]
    return {
        "meter": d.get("meter", ""),
        "metered": _quantity(d.get("metered_quantity")),
        "included_per_device": _quantity(included),
        "devices": _quantity(devices),
        "allowance": _quantity(allowance),
        "billable": _quantity(line.quantity),
        "events": d.get("event_count"),
        "tiers": tiers,
        "per_device": per_device,
        "groups": groups,
        "clamped_to": d.get("clamped_to", ""),
    }


def _line_row(line: InvoiceLine, currency: str, tz: str) -> dict[str, Any]:
    d = line.detail if isinstance(line.detail, dict) else {}
    first = last = None
    if line.period_start is not None and line.period_end is not None:
        first, last = _days(line.period_start, line.period_end, tz)
    row: dict[str, Any] = {
        "line": line,
        "type_label": LINE_TYPES.get(line.type, line.type),
        "first": first,
        "last": last,
        "quantity": _quantity(line.quantity),
        "unit_amount": _plain(line.unit_amount, 2) if line.unit_amount is not None else None,
        "amount": _money(_signed(line), currency),
        "tax_category": _label(TaxCategory, line.tax_category),
        "usage": _usage_detail(line, currency) if line.type == "usage" else None,
        "instalment": (d["instalment"], d["instalments"]) if "instalment" in d and "instalments" in d else None,
        "days": (d["days"], d["days_in_period"]) if "days" in d and "days_in_period" in d else None,
    }
    return row


def _legs(invoice: Invoice, tz: str) -> list[dict[str, Any]]:
    """The lines grouped by leg (hardware, service, usage, fees and credits, adjustments), each leg
    with its subtotal; legs without a line are left out."""
    grouped: dict[str, list[InvoiceLine]] = {key: [] for key, _label in LEGS}
    for line in invoice.lines.all():
        grouped[_leg(line)].append(line)
    return [
        {
            "key": key,
            "label": label,
            "rows": [_line_row(line, invoice.currency, tz) for line in grouped[key]],
            "subtotal": _money(sum((_signed(x) for x in grouped[key]), Decimal(0)), invoice.currency),
        }
        for key, label in LEGS
        if grouped[key]
    ]


def _credit_rows(invoice: Invoice) -> list[dict[str, Any]]:
    """The lines of a creditable invoice with what is already credited and what is left."""
    credited = _credited_per_line(invoice)
    rows = []
    for line in invoice.lines.all():
        done = credited.get(line.pk, Decimal(0))
        rows.append(
            {
                "line": line,
                "amount": _money(line.amount, invoice.currency),
                "credited": _money(done, invoice.currency),
                "left": _money(line.amount - done, invoice.currency),
                "open": line.amount - done > 0,
            }
        )
    return rows


def _pdf_available(invoice: Invoice) -> bool:
    if Invoice.objects.filter(pk=invoice.pk, pdf__isnull=False).exists():
        return True
    try:
        return importlib.util.find_spec("invoicing.pdf") is not None
    except (ImportError, ValueError):
        return False


@staff_view(EVERYONE)
def invoice_detail(request: HttpRequest, pk: str) -> HttpResponse:
    invoice = _invoice_or_404(current_tenant(request), pk)
    tz = invoice.customer.timezone
    writable = can_write(request)
    is_invoice = invoice.kind == InvoiceKind.INVOICE
    credit_notes = list(invoice.credit_notes.defer("pdf").order_by("created_at", "id")) if is_invoice else []
    live_notes = [n for n in credit_notes if n.status != InvoiceStatus.VOID]
    actions = {
        "finalize": writable and invoice.status == InvoiceStatus.DRAFT,
        # A credit note is settled against its invoice: voiding it would not give the amount back.
        "void": writable and is_invoice and invoice.status in VOIDABLE and not live_notes,
        "credit": writable and is_invoice and invoice.status in CREDITABLE,
    }
    credit_rows = _credit_rows(invoice) if actions["credit"] else []
    if actions["credit"] and not any(r["open"] for r in credit_rows):
        actions["credit"] = False
    context = {
        "invoice": invoice,
        "totals": _totals(invoice),
        "legs": _legs(invoice, tz),
        "taxes": [
            {
                "tax": t,
                "category": _label(TaxCategory, t.category),
                "rate": _plain(t.rate, 0),
                "base": _money(t.base, invoice.currency),
                "amount": _money(t.amount, invoice.currency),
            }
            for t in invoice.taxes.all()
        ],
        "credit_notes": [{"note": n, **_totals(n)} for n in credit_notes],
        "credit_rows": credit_rows,
        "actions": actions,
        "any_action": any(actions.values()),
        "pdf": _pdf_available(invoice),
        "tz_name": tz,
        # EN 16931 wants the seller's VAT number or legal registration on every e-invoice.
        "seller_unidentified": not (invoice.tenant.vat_number or invoice.tenant.legal_registration_id),
    }
    return render(request, "backoffice/invoicing/invoice_detail.html", context)


def _back(invoice: Invoice) -> HttpResponse:
    return redirect("backoffice:invoice-detail", pk=invoice.pk)


@staff_view(WRITERS)
@require_POST
def invoice_finalize_view(request: HttpRequest, pk: str) -> HttpResponse:
    invoice = _invoice_or_404(current_tenant(request), pk)
    try:
        invoice = invoice_finalize(invoice=invoice, actor=current_actor(request), at=timezone.now())
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
    reason = _clean(request.POST.get("reason", ""))
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


def _credit_lines(request: HttpRequest) -> list[dict[str, Any]]:
    """The amounts typed per line (``amount-<line id>``); empty inputs are left out. A decimal
    comma is read as a point; the service checks each amount and refuses what it cannot read."""
    lines = []
    for key in request.POST:
        match = AMOUNT_FIELD.match(key)
        amount = _clean(request.POST.get(key, "")).replace(",", ".").replace(" ", "")
        if match and amount:
            lines.append({"line": int(match.group(1)), "amount": amount[:40]})
    return sorted(lines, key=lambda x: x["line"])


@staff_view(WRITERS)
@require_POST
def invoice_credit_view(request: HttpRequest, pk: str) -> HttpResponse:
    invoice = _invoice_or_404(current_tenant(request), pk)
    reason = _clean(request.POST.get("reason", ""))
    full = request.POST.get("mode") == "full"
    lines = None if full else _credit_lines(request)
    if lines == []:
        messages.error(request, _("Enter the amount to credit on at least one line, or credit the invoice in full."))
        return _back(invoice)
    if len(reason) > 300:
        messages.error(request, _("The reason is longer than 300 characters."))
        return _back(invoice)
    try:
        note = credit_note_create(
            invoice=invoice, actor=current_actor(request), at=timezone.now(), lines=lines, reason=reason
        )
    except DomainError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(
            request,
            _("Credit note %(number)s created: %(total)s %(currency)s.")
            % {
                "number": note.number,
                "total": formats.localize(_money(note.total, note.currency)),
                "currency": note.currency,
            },
        )
    return _back(invoice)


@xframe_options_sameorigin  # the detail page shows it in a frame
@staff_view(EVERYONE)
def invoice_pdf_view(request: HttpRequest, pk: str) -> HttpResponse:
    """The stored PDF of a finalized invoice, else one rendered now by ``invoicing.pdf.invoice_pdf``
    (a draft is marked as such), shown inline."""
    invoice = _invoice_or_404(current_tenant(request), pk)
    stored = Invoice.objects.filter(pk=invoice.pk).values_list("pdf", flat=True).first()
    if stored:
        body = bytes(stored)
    else:
        try:
            documents: Any = importlib.import_module("invoicing.pdf")
        except ImportError:
            raise Http404("PDF rendering is not available.") from None
        try:
            body = documents.invoice_pdf(invoice)
        except DomainError as exc:
            return HttpResponse(exc.detail, status=409, content_type="text/plain; charset=utf-8")
        except Exception:
            logger.exception("rendering the PDF of invoice %s failed", invoice.pk)
            return HttpResponse(
                _("The PDF could not be rendered."), status=503, content_type="text/plain; charset=utf-8"
            )
    name = (invoice.number or "draft-%s" % invoice.pk) + ".pdf"
    response = HttpResponse(body, content_type="application/pdf")
    response["Content-Disposition"] = 'inline; filename="%s"' % name
    return response
