"""The catalog of outbound event types (payments.md, "Outbound webhooks"): what an endpoint may
subscribe to. Each type is emitted by the app that owns the change, in the change's transaction
(``webhooks.outbox.event_emit``); docs/webhooks.md shows each payload."""

from django.utils.translation import gettext_lazy as _

# Subscribing to every type, present and future.
ALL_EVENTS = "*"

# type -> what it means, as the back-office shows it. Types whose capability is still to come
# (payments, dunning) are listed already: an endpoint may subscribe to them before they are sent.
EVENT_TYPES = {
    "invoice.finalized": _("An invoice was finalized: numbered, and sent to the customer."),
    "invoice.paid": _("An invoice was paid in full."),
    "invoice.payment_failed": _("An attempt to charge an invoice failed."),
    "invoice.overdue": _("An invoice is past its due date and not paid."),
    "invoice.voided": _("A finalized invoice was voided."),
    "credit_note.created": _("A credit note was issued for an invoice."),
    "payment.succeeded": _("A payment was received."),
    "payment.failed": _("A payment failed."),
    "payment.refunded": _("A payment was refunded, in full or in part."),
    "subscription.created": _("A subscription was signed."),
    "subscription.suspended": _("A subscription was suspended for non-payment: cut its devices' service."),
    "subscription.reactivated": _("A suspended subscription is active again: restore its devices' service."),
    "subscription.cancelled": _("A subscription was cancelled."),
    "order.created": _("A customer ordered devices in the portal's shop: ship them to the address given."),
    "device.billing_started": _("A device started being billed (at signature, shipment or activation, per its plan)."),
    "bill_run.completed": _("A bill run finished."),
    "revenue.period_closed": _("A revenue month was closed: its revenue and journal will not change any more."),
}


def event_type_check(event_type: str) -> None:
    """Emitting a type outside the catalog is a programming error, not bad input."""
    if event_type not in EVENT_TYPES:
        raise ValueError("Unknown webhook event type %r: add it to webhooks.events.EVENT_TYPES." % event_type)
