"""The outbound events of card attempts (docs/webhooks.md): ``invoice.payment_failed`` and
``payment.failed``, written in the transaction that records the failure (webhooks.outbox)."""

from datetime import datetime
from typing import Any

from billing_platform.money import round_minor
from invoicing.events import invoice_event_data
from invoicing.models import InvoiceLine
from payments.models import PaymentAttempt
from webhooks.outbox import events_emit, instant


def attempt_event_data(attempt: PaymentAttempt) -> dict[str, Any]:
    """An attempt as the payment events carry it; amounts at the currency's minor unit."""
    return {
        "id": str(attempt.pk),
        "invoice": str(attempt.invoice_id),
        "number": attempt.number,
        "status": attempt.status,
        "amount": str(round_minor(attempt.amount.amount, attempt.currency)),
        "currency": attempt.currency,
        "gateway": attempt.gateway,
        "gateway_id": attempt.gateway_id or None,
        "failure_code": attempt.failure_code or None,
        "failure_message": attempt.failure_message or None,
        "next_retry_at": instant(attempt.next_retry_at) if attempt.next_retry_at else None,
        "created_at": instant(attempt.created_at),
    }


def attempt_failed_events(attempt: PaymentAttempt, *, at: datetime) -> None:
    """``invoice.payment_failed`` (the invoice, with the attempt) and ``payment.failed`` (the
    attempt, with its customer)."""
    invoice = attempt.invoice
    subscriptions = list(
        InvoiceLine.objects.filter(invoice=invoice, subscription__isnull=False)
        .values_list("subscription__external_id", flat=True)
        .distinct()
        .order_by("subscription__external_id")
    )
    attempt_data = attempt_event_data(attempt)
    invoice_data = invoice_event_data(invoice, subscriptions)
    invoice_data["attempt"] = attempt_data
    payment_data = {**attempt_data, "customer": invoice.customer.external_id, "invoice_number": invoice.number}
    events_emit(
        tenant=attempt.tenant,
        events=[("invoice.payment_failed", invoice_data), ("payment.failed", payment_data)],
        at=at,
    )
