"""The e-mail that sends a finalized invoice or credit note, its Factur-X PDF attached."""

import logging

from django.conf import settings
from django.core.mail import EmailMessage
from django.template.loader import render_to_string
from django.utils import translation

from invoicing.errors import InvalidInvoiceTransition
from invoicing.models import Invoice, InvoiceKind, InvoiceStatus
from invoicing.pdf import DocumentFormatter, invoice_due_date

logger = logging.getLogger(__name__)

# A paid invoice was finalized first (and may be paid before its e-mail goes out): it is still sent.
SENDABLE = {InvoiceStatus.FINALIZED, InvoiceStatus.PAID}


def invoice_send(*, invoice: Invoice) -> bool:
    """E-mail ``invoice`` to its customer in the customer's language, with the stored Factur-X PDF
    attached as ``<number>.pdf``. Returns False, sending nothing, for an invoice voided before its
    e-mail went out; a draft, or a finalized invoice without its PDF, is a caller's bug and raises."""
    if invoice.status == InvoiceStatus.VOID:
        logger.info(
            "invoice %s was voided before it was sent: not e-mailed",
            invoice.pk,
            extra={"tenant_id": str(invoice.tenant_id), "invoice_id": str(invoice.pk)},
        )
        return False
    if invoice.status not in SENDABLE or not invoice.number:
        raise InvalidInvoiceTransition("Only a finalized invoice or credit note can be e-mailed.")
    if not invoice.pdf:
        raise InvalidInvoiceTransition("Invoice %s has no PDF yet: render it before e-mailing it." % invoice.number)
    customer = invoice.customer
    language = customer.language or invoice.language
    fmt = DocumentFormatter(language=language, currency=invoice.currency)
    due = invoice_due_date(invoice)
    credited = invoice.credited_invoice
    context = {
        "is_credit_note": invoice.kind == InvoiceKind.CREDIT_NOTE,
        "number": invoice.number,
        "seller": invoice.tenant.name,
        "customer": customer.name,
        "issue_date": fmt.day(invoice.issue_date),
        "total": fmt.money(invoice.total),
        "amount_due": fmt.money(invoice.amount_due),
        "due_date": fmt.day(due) if due and invoice.amount_due.amount > 0 else "",
        "credited_number": credited.number if credited else "",
    }
    with translation.override(language):
        subject = " ".join(render_to_string("invoicing/email/subject.txt", context).split())
        body = render_to_string("invoicing/email/body.txt", context).strip() + "\n"
    message = EmailMessage(
        subject=subject,
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[customer.email],
    )
    message.attach("%s.pdf" % invoice.number, bytes(invoice.pdf), "application/pdf")
    message.send()
    logger.info(
        "invoice %s e-mailed",
        invoice.number,
        extra={"tenant_id": str(invoice.tenant_id), "invoice_id": str(invoice.pk)},
    )
    return True
