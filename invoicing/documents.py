"""PDF and Factur-X documents of invoices, and the invoice e-mail."""

from typing import Literal

from django.utils import timezone

from invoicing.einvoice import facturx_check
from invoicing.errors import DocumentNotReady
from invoicing.models import Invoice, InvoiceStatus

# What an invoice can be downloaded as: its PDF (a draft's is marked as such), or its Factur-X
# PDF/A-3 with the EN 16931 CII XML embedded, which only a finalized invoice has.
DocumentKind = Literal["pdf", "facturx"]


def invoice_document(invoice: Invoice, *, kind: DocumentKind) -> tuple[bytes, str]:
    """The PDF of an invoice and its file name: the one stored at finalization, else one rendered
    now, as the document was finalized (a credit note issued since does not change it).
    ``DocumentNotReady`` (409) for the Factur-X document of a draft; ``FacturxNotAvailable`` (409)
    for that of a document without one (a currency with three decimals, a seller outside the EU
    that did not turn it on), whose PDF is the document."""
    # The renderers load WeasyPrint (most of a second): only the document paths pay for it.
    from invoicing.pdf import invoice_finalized_pdf, invoice_pdf

    # A draft, or a draft voided before it was ever finalized: no number, printed as a draft.
    never_finalized = invoice.status == InvoiceStatus.DRAFT or not invoice.number
    if kind == "facturx" and never_finalized:
        raise DocumentNotReady("A draft has no Factur-X document: finalize it first.")
    if kind == "facturx":
        facturx_check(invoice)
    if invoice.pdf:
        body = bytes(invoice.pdf)
    elif never_finalized:
        body = invoice_pdf(invoice)
    else:
        body = invoice_finalized_pdf(invoice)
    return body, (invoice.number or "draft-%s" % invoice.pk) + ".pdf"


def invoice_render_and_send(*, invoice: Invoice) -> bool:
    """Render the invoice PDF (PDF/A-3 with its EN 16931 CII XML, or without for a document that has
    none) once, store it, e-mail it once.

    The e-mail is claimed (``sent_at`` set where it is still empty) before it is sent and released
    if sending fails, so a retried task, or two tasks for the same invoice, never e-mail it twice.
    Returns whether this call sent it."""
    from invoicing.mail import invoice_send
    from invoicing.pdf import invoice_finalized_pdf

    if not invoice.pdf:
        Invoice.objects.filter(pk=invoice.pk).update(pdf=invoice_finalized_pdf(invoice))
        invoice.refresh_from_db()
    claimed_at = timezone.now()
    if not Invoice.objects.filter(pk=invoice.pk, sent_at__isnull=True).update(sent_at=claimed_at):
        return False  # already sent
    try:
        sent = invoice_send(invoice=invoice)
    except Exception:
        Invoice.objects.filter(pk=invoice.pk, sent_at=claimed_at).update(sent_at=None)
        raise
    if not sent:  # voided before its e-mail went out
        Invoice.objects.filter(pk=invoice.pk, sent_at=claimed_at).update(sent_at=None)
    return sent


def invoice_send_again(*, invoice: Invoice) -> bool:
    """E-mail a finalized document again on request: its stored PDF (rendered and stored first if
    the finalization's rendering has not run yet), whether or not it was sent before. Returns False
    for a document voided meanwhile."""
    from invoicing.mail import invoice_send
    from invoicing.pdf import invoice_finalized_pdf

    if not invoice.pdf:
        Invoice.objects.filter(pk=invoice.pk, pdf__isnull=True).update(pdf=invoice_finalized_pdf(invoice))
        invoice.refresh_from_db()
    sent = invoice_send(invoice=invoice)
    if sent:
        Invoice.objects.filter(pk=invoice.pk).update(sent_at=timezone.now())
    return sent
