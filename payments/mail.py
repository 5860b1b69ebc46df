"""The dunning reminder e-mail: in the customer's language, the invoice's PDF attached, a pay link."""

import logging

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.mail import EmailMessage
from django.template.loader import render_to_string
from django.utils import translation

from invoicing.models import Invoice
from invoicing.pdf import DocumentFormatter

logger = logging.getLogger(__name__)


def pay_link(pay_url: str, invoice: Invoice) -> str:
    """The tenant's payment page for ``invoice``: ``{invoice}`` in it becomes the invoice number."""
    return pay_url.replace("{invoice}", invoice.number) if pay_url else ""


def reminder_message(*, invoice: Invoice, days_past_due: int, pay_url: str) -> EmailMessage:
    """The reminder for ``invoice`` (its customer and tenant loaded), ``days_past_due`` days after its
    due date (negative: before it)."""
    customer = invoice.customer
    tenant = invoice.tenant
    language = customer.language or invoice.language
    fmt = DocumentFormatter(language=language, currency=invoice.currency)
    context = {
        "number": invoice.number,
        "seller": tenant.name,
        "customer": customer.name,
        "issue_date": fmt.day(invoice.issue_date),
        "due_date": fmt.day(invoice.due_date) if invoice.due_date else "",
        "amount_due": fmt.money(invoice.amount_due),
        "overdue": days_past_due > 0,
        "days": abs(days_past_due),
        "pay_link": pay_link(pay_url, invoice),
        "iban": tenant.iban,
        "bic": tenant.bic,
    }
    with translation.override(language):
        subject = " ".join(render_to_string("payments/email/reminder_subject.txt", context).split())
        body = render_to_string("payments/email/reminder_body.txt", context).strip() + "\n"
    message = EmailMessage(subject=subject, body=body, from_email=settings.DEFAULT_FROM_EMAIL, to=[customer.email])
    if invoice.pdf:
        message.attach("%s.pdf" % invoice.number, bytes(invoice.pdf), "application/pdf")
    return message


def reminders_send(messages: list[tuple[Invoice, EmailMessage]]) -> int:
    """Send the reminders over one connection; one that fails is logged and does not stop the others
    (its step is recorded: it is not sent twice). Returns how many went out."""
    from django.core.mail import get_connection

    sent = 0
    with get_connection() as connection:
        for invoice, message in messages:
            message.connection = connection
            try:
                message.send()
            except SoftTimeLimitExceeded:
                raise  # the task's time is up, not a refused address: the next run sends the rest
            except Exception:  # a mail server refusing one address must not stop the run
                logger.exception(
                    "reminder for invoice %s not sent",
                    invoice.number,
                    extra={"tenant_id": str(invoice.tenant_id), "invoice_id": str(invoice.pk)},
                )
                continue
            sent += 1
    return sent
