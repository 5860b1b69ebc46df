"""Payments' outbound webhook events (docs/webhooks.md): ``payment.succeeded``,
``payment.refunded`` and ``invoice.paid``, written by the ledger in the change's transaction
(``webhooks.outbox``). Payloads follow invoicing's: the customer's external id, invoices by id and
number, amounts as strings at the currency's minor unit next to ``currency``."""

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from billing_platform.money import round_minor
from invoicing.events import invoices_event_data
from invoicing.models import Invoice
from payments.models import Payment, Refund
from webhooks.outbox import events_emit, instant


def _amount(value: Decimal, currency: str) -> str:
    return str(round_minor(value, currency))


def payment_event_data(payment: Payment) -> dict[str, Any]:
    """A payment as ``payment.*`` events carry it, with its allocations (net of refunds) per invoice."""
    currency = payment.currency
    allocated: dict[Any, tuple[Any, str, Decimal]] = {}
    for row in payment.allocations.select_related("invoice").order_by("created_at", "id"):
        invoice_id, number, total = allocated.get(row.invoice_id, (row.invoice_id, row.invoice.number, Decimal(0)))
        allocated[row.invoice_id] = (invoice_id, number, total + row.amount.amount)
    return {
        "id": str(payment.pk),
        "customer": payment.customer.external_id,
        "amount": _amount(payment.amount.amount, currency),
        "amount_refunded": _amount(payment.amount_refunded.amount, currency),
        "currency": currency,
        "method": payment.method,
        "status": payment.status,
        "received_at": instant(payment.received_at),
        "reference": payment.reference,
        "gateway": payment.gateway,
        "gateway_id": payment.gateway_id,
        "allocations": [
            {"invoice": {"id": str(invoice_id), "number": number}, "amount": _amount(total, currency)}
            for invoice_id, number, total in allocated.values()
        ],
    }


def payment_succeeded_emit(payment: Payment, *, at: datetime) -> None:
    events_emit(tenant=payment.tenant, events=[("payment.succeeded", payment_event_data(payment))], at=at)


def payment_refunded_emit(payment: Payment, refund: Refund, *, at: datetime) -> None:
    """``payment.refunded``: the payment after the refund, and the refund."""
    data = payment_event_data(payment)
    data["refund"] = {
        "id": str(refund.pk),
        "amount": _amount(refund.amount.amount, refund.currency),
        "reason": refund.reason,
        "status": refund.status,
        "created_at": instant(refund.created_at or at),
    }
    events_emit(tenant=payment.tenant, events=[("payment.refunded", data)], at=at)


def invoices_paid_emit(invoice_ids: Sequence[Any], *, at: datetime) -> None:
    """``invoice.paid`` for each invoice that just became paid, read as settled: one statement per
    tenant."""
    if not invoice_ids:
        return
    invoices = list(Invoice.objects.filter(pk__in=invoice_ids).select_related("tenant", "customer").defer("pdf"))
    data = invoices_event_data(invoices)
    by_tenant: dict[Any, list[Invoice]] = {}
    for invoice in invoices:
        by_tenant.setdefault(invoice.tenant_id, []).append(invoice)
    for group in by_tenant.values():
        events = []
        for invoice in sorted(group, key=lambda x: (x.issue_date, x.number)):
            events.append(
                ("invoice.paid", {**data[invoice.pk], "paid_at": instant(invoice.paid_at) if invoice.paid_at else None})
            )
        events_emit(tenant=group[0].tenant, events=events, at=at)
