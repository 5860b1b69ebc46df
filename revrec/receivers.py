"""What revrec does when invoicing and payments announce a change (``invoicing.signals``,
``payments.signals``), in the change's transaction: the document's journal (``revrec.journal``).
A bill run finalizing thousands of invoices sends one signal; its journal is written in a
constant number of statements."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.dispatch import receiver

from invoicing.models import Invoice
from invoicing.signals import credit_note_finalized, invoice_voided, invoices_finalized
from payments.models import Payment, Refund
from payments.signals import payment_recorded, refund_recorded
from revrec.journal import (
    credit_note_journal_post,
    invoice_void_journal_post,
    invoices_journal_post,
    payment_journal_post,
    refund_journal_post,
)


@receiver(invoices_finalized, dispatch_uid="revrec.invoices_finalized")
def on_invoices_finalized(sender: Any, *, invoices: Sequence[Invoice], at: datetime, **kwargs: Any) -> None:
    invoices_journal_post(invoices=invoices, at=at)


@receiver(credit_note_finalized, dispatch_uid="revrec.credit_note_finalized")
def on_credit_note_finalized(sender: Any, *, note: Invoice, invoice: Invoice, at: datetime, **kwargs: Any) -> None:
    credit_note_journal_post(note=note, at=at)


@receiver(invoice_voided, dispatch_uid="revrec.invoice_voided")
def on_invoice_voided(sender: Any, *, invoice: Invoice, at: datetime, **kwargs: Any) -> None:
    invoice_void_journal_post(invoice=invoice, at=at)


@receiver(payment_recorded, dispatch_uid="revrec.payment_recorded")
def on_payment_recorded(sender: Any, *, payment: Payment, at: datetime, **kwargs: Any) -> None:
    payment_journal_post(payment=payment, at=at)


@receiver(refund_recorded, dispatch_uid="revrec.refund_recorded")
def on_refund_recorded(sender: Any, *, refund: Refund, payment: Payment, at: datetime, **kwargs: Any) -> None:
    refund_journal_post(refund=refund, at=at)
