"""Charging an invoice through the tenant's gateway: one open attempt per invoice (pitfall #6),
unknown outcomes reconciled before any new attempt (pitfall #7)."""

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from payments.models import PaymentAttempt


def invoice_charge(*, invoice_id: UUID, trigger: str, at: datetime) -> PaymentAttempt:
    """Charge what ``invoice_id`` still owes with the customer's default payment method, now."""
    raise NotImplementedError


def invoices_charge_enqueue(invoice_ids: Sequence[UUID], *, tenant_id: UUID, trigger: str) -> None:
    """Charge these invoices from a Celery worker once the caller's transaction commits."""
    raise NotImplementedError
