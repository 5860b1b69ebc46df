"""Invoicing's outbound webhook events (docs/webhooks.md): ``invoice.finalized``,
``invoice.voided``, ``credit_note.created`` and ``bill_run.completed``, written by the services
that make those changes, in their transaction (``webhooks.outbox``).

Payloads name things as the integrator knows them: the invoice number, the customer's and the
subscriptions' external ids, amounts as strings at the currency's minor unit next to ``currency``.
"""

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from djmoney.money import Money

from billing_platform.money import round_minor
from invoicing.models import BillRun, Invoice, InvoiceKind, InvoiceLine
from webhooks.outbox import events_emit, instant


def _amount(value: Money) -> str:
    """``"181.09"``; JPY ``"4"``."""
    return str(round_minor(value.amount, value.currency.code))


def _subscriptions_of(invoices: Sequence[Invoice]) -> dict[Any, list[str]]:
    """The external ids of the subscriptions each invoice bills, in one query for all of them."""
    found: dict[Any, list[str]] = defaultdict(list)
    rows = (
        InvoiceLine.objects.filter(invoice__in=[i.pk for i in invoices], subscription__isnull=False)
        .values_list("invoice_id", "subscription__external_id")
        .distinct()
        .order_by("invoice_id", "subscription__external_id")
    )
    for invoice_id, external_id in rows:
        found[invoice_id].append(external_id)
    return found


def invoice_event_data(invoice: Invoice, subscriptions: Sequence[str]) -> dict[str, Any]:
    """An invoice as ``invoice.*`` events carry it."""
    return {
        "id": str(invoice.pk),
        "number": invoice.number,
        "status": invoice.status,
        "customer": invoice.customer.external_id,
        "subscriptions": list(subscriptions),
        "issue_date": invoice.issue_date.isoformat(),
        "currency": invoice.currency,
        "net_total": _amount(invoice.net_total),
        "tax_total": _amount(invoice.tax_total),
        "total": _amount(invoice.total),
        "amount_due": _amount(invoice.amount_due),
        "amount_paid": _amount(invoice.amount_paid),
        "payment_status": invoice.payment_status,
        "due_date": invoice.due_date.isoformat() if invoice.due_date else None,
        "bill_run": str(invoice.bill_run_id) if invoice.bill_run_id else None,
        "finalized_at": instant(invoice.finalized_at) if invoice.finalized_at else None,
    }


def invoices_event_data(invoices: Sequence[Invoice]) -> dict[Any, dict[str, Any]]:
    """Each invoice as ``invoice.*`` events carry it, by id: for the layers above that emit invoice
    events of their own (``invoice.paid``), with the subscriptions read in one query for all."""
    subscriptions = _subscriptions_of(invoices)
    return {invoice.pk: invoice_event_data(invoice, subscriptions[invoice.pk]) for invoice in invoices}


def credit_note_event_data(note: Invoice, subscriptions: Sequence[str]) -> dict[str, Any]:
    """A credit note as ``credit_note.created`` carries it, with the invoice it credits."""
    credited = note.credited_invoice
    return {
        "id": str(note.pk),
        "number": note.number,
        "customer": note.customer.external_id,
        "subscriptions": list(subscriptions),
        "credited_invoice": {"id": str(credited.pk), "number": credited.number} if credited else None,
        "issue_date": note.issue_date.isoformat(),
        "currency": note.currency,
        "net_total": _amount(note.net_total),
        "tax_total": _amount(note.tax_total),
        "total": _amount(note.total),
        "reason": note.reason,
        "finalized_at": instant(note.finalized_at) if note.finalized_at else None,
    }


def invoices_finalized_emit(invoices: Sequence[Invoice], *, at: datetime) -> None:
    """``invoice.finalized`` for each invoice and ``credit_note.created`` for each credit note just
    finalized, in the caller's transaction: one statement per tenant for the whole batch."""
    if not invoices:
        return
    subscriptions = _subscriptions_of(invoices)
    by_tenant: dict[Any, list[tuple[str, Mapping[str, Any]]]] = defaultdict(list)
    tenants = {}
    for invoice in invoices:
        tenants[invoice.tenant_id] = invoice.tenant
        if invoice.kind == InvoiceKind.CREDIT_NOTE:
            event = ("credit_note.created", credit_note_event_data(invoice, subscriptions[invoice.pk]))
        else:
            event = ("invoice.finalized", invoice_event_data(invoice, subscriptions[invoice.pk]))
        by_tenant[invoice.tenant_id].append(event)
    for tenant_id, events in by_tenant.items():
        events_emit(tenant=tenants[tenant_id], events=events, at=at)


def invoice_voided_emit(invoice: Invoice, *, at: datetime) -> None:
    data = invoice_event_data(invoice, _subscriptions_of([invoice])[invoice.pk])
    data.update(voided_at=instant(invoice.voided_at or at), reason=invoice.reason)
    events_emit(tenant=invoice.tenant, events=[("invoice.voided", data)], at=at)


def bill_run_completed_emit(run: BillRun, *, at: datetime) -> None:
    """``bill_run.completed``: the run's date, outcome and counts."""
    data = {
        "id": str(run.pk),
        "billing_date": run.billing_date.isoformat(),
        "status": run.status,
        "customers": run.total,
        "done": run.done,
        "failed": run.failed,
        "invoices_created": run.created,
        "started_at": instant(run.started_at) if run.started_at else None,
        "finished_at": instant(run.finished_at) if run.finished_at else None,
    }
    events_emit(tenant=run.tenant, events=[("bill_run.completed", data)], at=at)
