"""Refunding a payment through the way it came: a manual payment's refund is recorded as made by
the tenant; a gateway's payment is refunded at the gateway."""

from datetime import datetime

from djmoney.money import Money

from invoicing.models import Invoice
from payments.errors import GatewayRefundUnavailable
from payments.ledger import refund_record
from payments.models import Gateway, Payment, Refund
from tenancy.actors import Actor


def payment_refund(
    *, payment: Payment, amount: Money, reason: str, actor: Actor, at: datetime, invoice: Invoice | None = None
) -> Refund:
    """Give back ``amount`` of ``payment`` (from ``invoice``'s share only, when given). A manual
    payment's refund is money the tenant sent back itself: recorded at once. A Stripe payment's is
    made at Stripe, which the Stripe gateway module does."""
    if payment.gateway == Gateway.MANUAL:
        return refund_record(payment=payment, amount=amount, reason=reason, actor=actor, at=at, invoice=invoice)
    raise GatewayRefundUnavailable(
        "Payment %s was taken by %s: it is refunded through %s." % (payment.pk, payment.gateway, payment.gateway)
    )
