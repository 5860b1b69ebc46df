"""E-mailing finalized documents again, on a writer's request (the back-office's bulk "send")."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from uuid import UUID

from django.db import transaction

from invoicing.models import Invoice, InvoiceStatus
from tenancy.actors import Actor
from tenancy.models import AuditLogEntry, Tenant
from tenancy.services import audit_entry

# What can be e-mailed (``invoicing.mail.SENDABLE``): a document with its number, paid or not.
SENDABLE = (InvoiceStatus.FINALIZED, InvoiceStatus.PAID)

__all__ = ["SENDABLE", "InvoicesSent", "invoices_send"]


@dataclass(frozen=True)
class InvoicesSent:
    """The documents queued to be e-mailed again, and how many of those asked for were not sendable
    (drafts, voided, another tenant's)."""

    queued: list[Invoice] = field(default_factory=list)
    skipped: int = 0


def invoices_send(*, tenant: Tenant, invoice_ids: Iterable[UUID], actor: Actor, at: datetime) -> InvoicesSent:
    """Queue the e-mail of each finalized or paid invoice or credit note among ``invoice_ids`` to its
    customer again, with its stored PDF (rendered first if it is not yet), once the transaction
    commits; each request is audited. Unlike the e-mail sent at finalization, which goes once, this
    one goes every time it is asked for."""
    wanted = set(invoice_ids)
    with transaction.atomic():
        invoices = list(
            Invoice.objects.filter(tenant=tenant, pk__in=wanted, status__in=SENDABLE)
            .exclude(number="")
            .select_related("tenant")
            .defer("pdf")
            .order_by("number_year", "kind", "number_sequence")
        )
        AuditLogEntry.objects.bulk_create(
            [
                audit_entry(
                    tenant=tenant,
                    actor=actor,
                    action="invoice.sent_again",
                    object_type="invoice",
                    object_id=invoice.number,
                    at=at,
                )
                for invoice in invoices
            ]
        )
        from invoicing.tasks import invoice_send_again_task

        for invoice in invoices:
            transaction.on_commit(partial(invoice_send_again_task.delay, str(invoice.pk), tenant_id=str(tenant.pk)))
    return InvoicesSent(queued=invoices, skipped=len(wanted) - len(invoices))
