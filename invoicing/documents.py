"""PDF and Factur-X documents of invoices, and the invoice e-mail."""

from invoicing.models import Invoice


def invoice_render_and_send(*, invoice: Invoice) -> None:
    """Render the invoice PDF (PDF/A-3 with its EN 16931 CII XML) once, store it, e-mail it."""
    from invoicing.mail import invoice_send
    from invoicing.pdf import invoice_facturx_pdf

    if not invoice.pdf:
        Invoice.objects.filter(pk=invoice.pk).update(pdf=invoice_facturx_pdf(invoice))
        invoice.refresh_from_db()
    invoice_send(invoice=invoice)
