"""An invoice's metadata: the tenant's own keys and values. They are not part of the legal document
(the PDF and Factur-X never show them), so they may change at any status, finalized and void
included, unlike everything else on a finalized invoice."""

from collections.abc import Mapping
from datetime import datetime

from django.db import transaction

from billing_platform.validation import metadata_merge
from invoicing.errors import InvoiceNotFound
from invoicing.models import Invoice
from tenancy.actors import Actor
from tenancy.models import Tenant
from tenancy.services import audit_record


def invoice_metadata_update(
    *, tenant: Tenant, actor: Actor, at: datetime, invoice_id: str, metadata: Mapping[str, str | None]
) -> Invoice:
    """Set the keys given, remove those given null, keep the others (as Stripe does)."""
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().filter(tenant=tenant, pk=invoice_id).first()
        if invoice is None:
            raise InvoiceNotFound("No such invoice.")
        before = dict(invoice.metadata)
        invoice.metadata = metadata_merge(before, dict(metadata))
        if invoice.metadata != before:
            invoice.save(update_fields=["metadata"])
            audit_record(
                tenant=tenant,
                actor=actor,
                action="invoice.metadata_updated",
                object_type="invoice",
                object_id=str(invoice.pk),
                at=at,
                before={"metadata": before},
                after={"metadata": invoice.metadata},
            )
    return invoice
