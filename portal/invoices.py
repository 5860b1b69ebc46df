"""The portal's invoices: the list (status, total, amount due, due date), an invoice with its lines,
taxes and credit notes, and its PDF and Factur-X documents, as the API serves them
(``invoicing.documents.invoice_document``). A draft is the vendor's work in progress: the portal
never shows one, and its address answers 404 like another customer's invoice."""

import logging
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

from django.core.paginator import Paginator
from django.db import connection
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _

from billing_platform.content_security import pdf_policy
from billing_platform.errors import DomainError
from billing_platform.formatting import period_days
from billing_platform.periods import local_date
from invoicing.documents import DocumentKind, invoice_document
from invoicing.einvoice import facturx_refusal
from invoicing.models import Invoice, InvoiceKind, InvoiceLine, InvoicePaymentStatus, InvoiceStatus
from invoicing.selectors import invoice_credit_notes, invoice_list
from portal.access import PortalContext, current_portal, portal_view

logger = logging.getLogger(__name__)

PAGE_SIZE = 25
# Finalized and still owed: what the customer has to pay.
OPEN = (InvoicePaymentStatus.UNPAID, InvoicePaymentStatus.PARTIALLY_PAID)


def customer_documents(portal: PortalContext) -> QuerySet[Invoice]:
    """The customer's invoices and credit notes as the customer may see them: every one that was
    finalized (paid and void ones included), never a draft nor a draft voided before it had a number."""
    return (
        invoice_list(tenant=portal.tenant)
        .filter(customer=portal.customer)
        .exclude(status=InvoiceStatus.DRAFT)
        .exclude(number="")
    )


def customer_open_invoices(portal: PortalContext) -> QuerySet[Invoice]:
    """The invoices still owed, the first due first."""
    return (
        customer_documents(portal)
        .prefetch_related(None)
        .filter(kind=InvoiceKind.INVOICE, status=InvoiceStatus.FINALIZED, payment_status__in=OPEN, amount_due__gt=0)
        .order_by("due_date", "issue_date", "pk")
    )


@dataclass(frozen=True, slots=True)
class NextDue:
    number: str
    due_date: date | None


# The first row of ``customer_open_invoices``, its number and due date, as one hand-written statement:
# the overview reads it on every visit.
# portal/tests/test_overview_figures.py checks it against the queryset.
_NEXT_DUE_SQL = f"""
SELECT i.number, i.due_date FROM invoicing_invoice i
WHERE i.tenant_id = %(tenant)s AND i.customer_id = %(customer)s AND i.number <> ''
  AND i.kind = '{InvoiceKind.INVOICE.value}' AND i.status = '{InvoiceStatus.FINALIZED.value}'
  AND i.payment_status = ANY(%(open)s) AND i.amount_due > 0
ORDER BY i.due_date, i.issue_date, i.id
LIMIT 1
"""


def customer_next_due(portal: PortalContext) -> NextDue | None:
    """The open invoice due first, if any."""
    params: dict[str, Any] = {
        "tenant": portal.tenant.pk,
        "customer": portal.customer.pk,
        "open": [str(s) for s in OPEN],
    }
    with connection.cursor() as cursor:
        cursor.execute(_NEXT_DUE_SQL, params)
        row = cursor.fetchone()
    return NextDue(number=row[0], due_date=row[1]) if row else None


def _document_or_404(request: HttpRequest, pk: UUID) -> Invoice:
    # Another customer's invoice, a draft and an unknown id are all "not found".
    invoice = customer_documents(current_portal(request)).filter(pk=pk).first()
    if invoice is None:
        raise Http404("No such invoice.")
    return invoice


def facturx_available(invoice: Invoice) -> bool:
    """The API's rule (``invoice_document``): a finalized document with a Factur-X XML."""
    return bool(invoice.number) and invoice.status != InvoiceStatus.DRAFT and not facturx_refusal(invoice)


def _line_row(line: InvoiceLine, tz: str) -> dict[str, Any]:
    """A line with the days of its period (both included: the last is the day before its end)."""
    first, last = (
        period_days(line.period_start, line.period_end, tz) if line.period_start and line.period_end else (None, None)
    )
    return {"line": line, "first": first, "last": last}


@portal_view()
def invoices(request: HttpRequest) -> HttpResponse:
    portal = current_portal(request)
    rows = customer_documents(portal).prefetch_related(None).order_by("-issue_date", "-created_at", "-pk")
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "today": local_date(timezone.now(), portal.customer.timezone),
        "open_statuses": OPEN,
    }
    return render(request, "portal/invoices/list.html", context)


@portal_view()
def invoice(request: HttpRequest, pk: UUID) -> HttpResponse:
    document = _document_or_404(request, pk)
    portal = current_portal(request)
    notes = [n for n in invoice_credit_notes(document) if n.status != InvoiceStatus.DRAFT and n.number]
    is_open = (
        document.kind == InvoiceKind.INVOICE
        and document.status == InvoiceStatus.FINALIZED
        and document.payment_status in OPEN
        and document.amount_due.amount > 0
    )
    context = {
        "invoice": document,
        "lines": [_line_row(line, portal.customer.timezone) for line in document.lines.all()],
        "taxes": list(document.taxes.all()),
        "credit_notes": notes,
        "facturx": facturx_available(document),
        "is_open": is_open,
        "can_pay": is_open and portal.can_pay,
        "today": local_date(timezone.now(), portal.customer.timezone),
    }
    return render(request, "portal/invoices/detail.html", context)


def _download(request: HttpRequest, pk: UUID, kind: DocumentKind) -> HttpResponse:
    document = _document_or_404(request, pk)
    if kind == "facturx" and not facturx_available(document):
        raise Http404("This document has no Factur-X version: its PDF is the document.")
    try:
        body, name = invoice_document(document, kind=kind)
    except DomainError as exc:
        return HttpResponse(exc.detail, status=409, content_type="text/plain; charset=utf-8")
    except Exception:
        logger.exception("rendering the PDF of invoice %s failed", document.pk)
        return HttpResponse(
            _("The PDF could not be produced. Try again in a few minutes."),
            status=503,
            content_type="text/plain; charset=utf-8",
        )
    response = HttpResponse(body, content_type="application/pdf")
    if kind == "facturx":
        name = name.removesuffix(".pdf") + "-facturx.pdf"
    response["Content-Disposition"] = 'attachment; filename="%s"' % name
    return response


@pdf_policy
@portal_view()
def invoice_pdf(request: HttpRequest, pk: UUID) -> HttpResponse:
    return _download(request, pk, "pdf")


@pdf_policy
@portal_view()
def invoice_facturx(request: HttpRequest, pk: UUID) -> HttpResponse:
    return _download(request, pk, "facturx")
