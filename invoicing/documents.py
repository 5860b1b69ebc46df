"""PDF and Factur-X documents of invoices, and the invoice e-mail."""

from django.utils import timezone

from invoicing.models import Invoice


def invoice_render_and_send(*, invoice: Invoice) -> bool:
    """Render the invoice PDF (PDF/A-3 with its EN 16931 CII XML) once, store it, e-mail it once.

    The e-mail is claimed (``sent_at`` set where it is still empty) before it is sent and released
    if sending fails, so a retried task, or two tasks for the same invoice, never e-mail it twice.
    Returns whether this call sent it."""
    from invoicing.mail import invoice_send
    from invoicing.pdf import invoice_facturx_pdf

    if not invoice.pdf:
        Invoice.objects.filter(pk=invoice.pk).update(pdf=invoice_facturx_pdf(invoice))
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
