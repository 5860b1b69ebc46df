"""Money on invoices: payments allocated, the credit balance, refunds (specs/payments.md)."""

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from djmoney.money import Money

from customers.models import Customer
from invoicing.models import Invoice
from payments.models import Payment, Refund
from tenancy.actors import Actor


def payment_record(
    *,
    customer: Customer,
    amount: Money,
    method: str,
    received_at: datetime,
    actor: Actor,
    at: datetime,
    invoice: Invoice | None = None,
    reference: str = "",
    gateway: str = "manual",
    gateway_id: str = "",
) -> Payment:
    """A succeeded payment, allocated to ``invoice`` or to the customer's open invoices oldest
    first, the rest to the balance; in the caller's transaction, with its events."""
    raise NotImplementedError


def refund_record(
    *, payment: Payment, amount: Money, reason: str, actor: Actor, at: datetime, gateway_id: str = ""
) -> Refund:
    """A refund of what ``payment`` still holds, taken back from its balance share first, then from
    its invoices (newest allocation first)."""
    raise NotImplementedError


def invoices_settle(invoice_ids: Sequence[UUID], *, at: datetime) -> list[UUID]:
    """Recompute amount_paid, amount_due and payment_status from the allocations and credit notes, in
    one statement; returns the invoices that became paid."""
    raise NotImplementedError
